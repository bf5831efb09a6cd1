// The agent's resident memory over minutes, not just the cost benchmark's 60 s: its
// per-process series (256 samples, one a second while idle) and the live page's history
// (5 minutes) fill up over the first 5 minutes, so the steady state shows only then.
// Usage: node bench/lib/rss-over-time.mjs [--count 200] [--minutes 7] [--every 30]
//        [--agent-node-args '<flags>'] [--agent-cli path/to/dist/cli.js]
// Runs in its own PID namespace unless --no-isolate. Prints one line per sample.
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { MiB, fmt, isolate, machine, makeCgroup, option, spawnIdlePythons, startAgentProcess } from './common.mjs'

const { isolated, args } = isolate()
const count = Number(option(args, 'count', '200'))
const minutes = Number(option(args, 'minutes', '7'))
const every = Number(option(args, 'every', '30'))
const nodeArgs = option(args, 'agent-node-args', '').split(' ').filter(Boolean)
const cli = option(args, 'agent-cli', undefined)
console.error(`machine: ${machine()}${isolated ? '; in its own PID namespace' : ''}`)

const cgroup = makeCgroup(`oomwatch-rss-${process.pid}`, 4096 * MiB)
const idle = await spawnIdlePythons(count, cgroup)
const agent = await startAgentProcess({ nodeArgs, ...(cli && { cli }) })
const t0 = performance.now()
console.log(`${count} idle Python processes; agent RSS (MiB) every ${every} s\n`)
console.log('| time (s) | VmHWM | VmRSS | anonymous | file-backed |')
console.log('|---|---|---|---|---|')
while (performance.now() - t0 < minutes * 60_000) {
  await sleep(every * 1000)
  const status = readFileSync(`/proc/${agent.pid}/status`, 'utf8')
  const mib = key => fmt(Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0) / 1024)
  console.log(
    `| ${Math.round((performance.now() - t0) / 1000)} | ${mib('VmHWM')} | ${mib('VmRSS')} | ${mib('RssAnon')} | ${mib('RssFile')} |`,
  )
}
await agent.stop()
await idle.stop()
await cgroup.remove()
