// Trigger-to-client latency of the stack, against `py-spy dump` alone on the same
// process in the same run. Usage: npm run build && node bench/latency.mjs [runs=10]
//
// Each run starts the seed-shaped daemon leaking ~40 MB/s into a 256 MiB memory cgroup
// with the agent (in this process, default settings) and a WebSocket client. When the
// incident arrives, the same still-living process is dumped by py-spy alone, timed from
// spawn to exit as a person or script would run it. trigger-to-client = the agent's
// trigger-to-stack time + the hop from the event's emission to the client's receipt
// (one monotonic clock: agent and client share this process).
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { WebSocket } from 'ws'
import { Agent } from '../dist/agent.js'
import { loadConfig } from '../dist/config.js'
import { createLogger } from '../dist/log.js'

const runs = Number(process.argv[2] ?? 10)
const root = new URL('..', import.meta.url).pathname
const python = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).stdout.trim()
const daemon = join(root, 'test/fixtures/python/leaky_daemon.py')

const own = readFileSync('/proc/self/cgroup', 'utf8').split('\n').map(line => line.split(':'))
const v1 = own.find(([, controllers]) => controllers?.split(',').includes('memory'))
const base = v1 ? join('/sys/fs/cgroup/memory', v1[2]) : join('/sys/fs/cgroup', own.find(([id]) => id === '0')[2])

const config = loadConfig([], { OOMWATCH_PORT: '0' })
const agent = await Agent.start(config, createLogger('warn', new Writable({ write: (_c, _e, done) => done() })))
const emittedAt = new Map()
agent.hub.subscribe(event => event.type === 'incident' && emittedAt.set(event.id, performance.now()))
const ws = new WebSocket(`ws://127.0.0.1:${agent.port}/`)
await new Promise(resolve => ws.once('open', resolve))
const incidents = []
ws.on('message', data => {
  const event = JSON.parse(String(data))
  if (event.type === 'incident') incidents.push({ ...event, receivedAt: performance.now() })
})

const rows = []
for (let run = 1; run <= runs; run++) {
  const dir = join(base, `oomwatch-bench-${process.pid}-${run}`)
  mkdirSync(dir)
  writeFileSync(join(dir, v1 ? 'memory.limit_in_bytes' : 'memory.max'), String(256 << 20))
  const child = spawn('sh', ['-c', `echo $$ > ${dir}/cgroup.procs && exec "$@"`, 'sh', python, daemon, '--entries', '10000000', '--rate', '40000000', '--delay', '0.5'], { stdio: 'ignore' })
  const exited = new Promise(resolve => child.on('exit', resolve))
  let incident
  while (!(incident = incidents.find(event => event.pid === child.pid))) await sleep(5)
  const started = performance.now()
  const alone = spawnSync(agent.pyspy.path, ['dump', '--json', '--pid', String(child.pid)], { encoding: 'utf8' })
  const pyspyAlone = performance.now() - started
  const toClient = incident.capture.triggerToStackMs + (incident.receivedAt - emittedAt.get(incident.id))
  rows.push({ run, toClient, pyspyInAgent: incident.capture.pyspyMs, pyspyAlone, aloneOk: alone.status === 0 })
  await exited
  for (let tries = 0; tries < 50; tries++) {
    try {
      rmdirSync(dir)
      break
    } catch {
      await sleep(100)
    }
  }
}
ws.close()
await agent.stop()

const median = values => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}
const fmt = ms => ms.toFixed(1)
console.log(`| run | trigger→client (ms) | py-spy in agent (ms) | py-spy dump alone (ms) | ratio |`)
console.log(`|---|---|---|---|---|`)
for (const row of rows) console.log(`| ${row.run} | ${fmt(row.toClient)} | ${fmt(row.pyspyInAgent)} | ${fmt(row.pyspyAlone)}${row.aloneOk ? '' : ' (failed)'} | ${(row.toClient / row.pyspyAlone).toFixed(2)} |`)
const m = { toClient: median(rows.map(r => r.toClient)), alone: median(rows.map(r => r.pyspyAlone)) }
console.log(`| median | ${fmt(m.toClient)} | ${fmt(median(rows.map(r => r.pyspyInAgent)))} | ${fmt(m.alone)} | ${(m.toClient / m.alone).toFixed(2)} |`)
