// Trigger-to-client latency of the stack, against `py-spy dump` alone on the same
// process in the same run. Usage: npm run bench:latency -- [runs=10]
// (or: npm run build && node bench/latency.mjs [runs=10])
//
// Each run starts the seed-shaped daemon leaking ~40 MB/s into a 256 MiB memory cgroup.
// The agent runs as a sidecar does, in its own process (`node <shebang flags> dist/cli.js --port 0`,
// default settings), for the whole benchmark; the WebSocket client is in this process.
// - py-spy alone: while the leak is under way and before the agent triggers (cgroup usage
//   past 30% of the limit), the same process is dumped by `py-spy dump --json` alone,
//   timed from spawn to exit as a person or script would run it. (After the incident the
//   agent records a flame graph of the process with `py-spy record` for 5 s, which a
//   dump at that time would share the CPU with; that second dump is shown for reference.)
// - trigger-to-client: the agent's own trigger-to-stack time (capture.triggerToStackMs)
//   plus the hop from the start of the incident's emission to its receipt by the client,
//   both on CLOCK_MONOTONIC: the agent is started with bench/lib/emit-clock.mjs preloaded,
//   which prints the emission time of each incident on its stderr.
// Runs in its own PID namespace unless --no-isolate (see lib/common.mjs).
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { WebSocket } from 'ws'
import {
  DAEMON,
  PYSPY,
  PYTHON,
  ROOT,
  fmt,
  isolate,
  machine,
  makeCgroup,
  median,
  option,
  positional,
  startAgentProcess,
} from './lib/common.mjs'

const { isolated, args } = isolate()
const runs = Number(positional(args, 10))
// For re-measuring a candidate fix: node flags for the agent, or another build's cli.js.
const agentNodeArgs = option(args, 'agent-node-args', '').split(' ').filter(Boolean)
const agentCli = option(args, 'agent-cli', undefined)
const LIMIT = 256 << 20
const ALONE_AT = 0.3 // fraction of the limit at which py-spy runs alone, before the trigger (~56% at this rate)
const TARGET_RATIO = 1.2
console.error(`machine: ${machine()}${isolated ? '; in its own PID namespace' : ''}`)

const agent = await startAgentProcess({
  nodeArgs: ['--import', join(ROOT, 'bench/lib/emit-clock.mjs'), ...agentNodeArgs],
  ...(agentCli && { cli: agentCli }),
  stderr: 'pipe',
})
const emittedAt = new Map()
createInterface({ input: agent.stderr }).on('line', line => {
  const [tag, id, ns] = line.split(' ')
  if (tag === 'OOMWATCH_EMIT') emittedAt.set(id, BigInt(ns))
  else process.stderr.write(`agent: ${line}\n`)
})
const incidents = []
const ws = new WebSocket(`ws://127.0.0.1:${agent.port}/`)
ws.on('message', data => {
  const receivedAt = process.hrtime.bigint()
  const event = JSON.parse(String(data))
  if (event.type === 'incident') incidents.push({ event, receivedAt })
})
await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))

const dump = pid => {
  const started = performance.now()
  const result = spawnSync(PYSPY, ['dump', '--json', '--pid', String(pid)], { encoding: 'utf8' })
  return { ms: performance.now() - started, ok: result.status === 0 }
}

const rows = []
for (let run = 1; run <= runs; run++) {
  const cgroup = makeCgroup(`oomwatch-latency-${process.pid}-${run}`, LIMIT)
  const usageFile = join(cgroup.dir, cgroup.version === 1 ? 'memory.usage_in_bytes' : 'memory.current')
  const [bin, ...argv] = cgroup.wrap([PYTHON, DAEMON, '--entries', '10000000', '--rate', '40000000', '--delay', '0.5'])
  const child = spawn(bin, argv, { stdio: 'ignore' })
  let exitedWith
  const exited = new Promise(resolve => child.on('exit', (code, signal) => resolve((exitedWith = signal ?? `exit ${code}`))))
  const received = () => incidents.find(({ event }) => event.pid === child.pid)
  let alone
  // Poll the cgroup's usage: py-spy alone once it passes ALONE_AT, then wait for the incident.
  while (!received() && exitedWith === undefined) {
    if (!alone && Number(readFileSync(usageFile, 'utf8')) >= ALONE_AT * LIMIT) alone = dump(child.pid)
    await sleep(5)
  }
  const got = received()
  await sleep(20) // the emission line on the agent's stderr may trail the frame
  if (got) {
    const { event, receivedAt } = got
    const after = dump(child.pid)
    const hopMs = Number(receivedAt - emittedAt.get(event.id)) / 1e6
    rows.push({
      run,
      toClient: event.capture.triggerToStackMs + hopMs,
      hopMs,
      stackMs: event.capture.triggerToStackMs,
      pyspyInAgent: event.capture.pyspyMs,
      alone,
      after,
      captureError: event.capture.error?.code,
    })
    console.error(
      `run ${run}: trigger→client ${fmt(event.capture.triggerToStackMs + hopMs)} ms (hop ${fmt(hopMs, 2)}), py-spy alone ${fmt(alone?.ms)} ms before the trigger, ${fmt(after.ms)} ms after`,
    )
  } else {
    rows.push({ run, missing: `no incident: the process ended first (${exitedWith})` })
    console.error(`run ${run}: no incident, the process ended first (${exitedWith})`)
  }
  await exited
  await cgroup.remove()
}
ws.close()
await agent.stop()

const ok = rows.filter(row => !row.missing && row.alone?.ok)
console.log(
  `| run | trigger→client (ms) | of which trigger→stack | of which emission→client | py-spy in agent (ms) | py-spy dump alone, before the trigger (ms) | ratio | py-spy dump alone, after the incident (ms) |`,
)
console.log(`|---|---|---|---|---|---|---|---|`)
for (const row of rows) {
  if (row.missing) {
    console.log(`| ${row.run} | ${row.missing} | | | | | | |`)
    continue
  }
  const alone = row.alone ? `${fmt(row.alone.ms)}${row.alone.ok ? '' : ' (failed)'}` : '— (not reached)'
  console.log(
    `| ${row.run} | ${fmt(row.toClient)}${row.captureError ? ` (${row.captureError})` : ''} | ${fmt(row.stackMs)} | ${fmt(row.hopMs, 2)} | ${fmt(row.pyspyInAgent)} | ${alone} | ${row.alone ? (row.toClient / row.alone.ms).toFixed(2) : '—'} | ${fmt(row.after.ms)}${row.after.ok ? '' : ' (failed)'} |`,
  )
}
const m = key => median(ok.map(key))
const ratio = m(r => r.toClient) / m(r => r.alone.ms)
console.log(
  `| median (${ok.length} runs) | ${fmt(m(r => r.toClient))} | ${fmt(m(r => r.stackMs))} | ${fmt(
    m(r => r.hopMs),
    2,
  )} | ${fmt(m(r => r.pyspyInAgent))} | ${fmt(m(r => r.alone.ms))} | ${ratio.toFixed(2)} | ${fmt(m(r => r.after.ms))} |`,
)
const afterRatio = m(r => r.toClient) / m(r => r.after.ms)
console.log(
  `\nMedian trigger→client over median py-spy alone: ${ratio.toFixed(2)} (median of per-run ratios ${median(ok.map(r => r.toClient / r.alone.ms)).toFixed(2)}) ${ratio <= TARGET_RATIO ? '≤' : '>'} ${TARGET_RATIO}: ${ratio <= TARGET_RATIO ? 'met' : 'MISSED'}. Against the dump after the incident: ${afterRatio.toFixed(2)}.`,
)
