// The agent's cost while it watches idle Python processes, against the same polling
// written with systeminformation.processes() and against a bare loop that only reads the
// same /proc files (the floor).
// Usage: npm run bench:cost -- [--duration 60] [--counts 0,50,200] [--warmup 5] [--watchers agent,si,floor] [--profile DIR]
//        [--agent-node-args '--max-semi-space-size=1'] [--agent-cli /path/to/other/dist/cli.js]
// (--agent-node-args are added to the flags of the cli's shebang line, which it always runs with)
//
// For each count, that many idle Python processes (the seed's daemon, --entries 0) sit in
// one memory cgroup (4 GiB limit) below ours. Then each watcher runs alone, as its own
// process, at the agent's default cadence (cgroup usage every 100 ms, /proc scan every
// 500 ms, per-process stat every 1 s):
// - agent: `node <shebang flags> dist/cli.js --port 0`, defaults otherwise (as the image runs it);
// - si:    bench/lib/watch-si.mjs;
// - floor: bench/lib/watch-floor.mjs.
// After a warm-up (start, first scan, every process discovered), CPU is
// utime+stime (+ reaped children: the `ps` that si spawns) from /proc/<pid>/stat over
// `duration` seconds, as % of one core; peak RSS is VmHWM at the end (startup included).
// The watchers' order rotates from one count to the next. --profile DIR runs the agent
// with --cpu-prof into DIR. Runs in its own PID namespace unless --no-isolate.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { CLK_TCK, MiB, ROOT, fmt, isolate, machine, makeCgroup, option, shippedNodeFlags, spawnIdlePythons, startAgentProcess, usageOf } from './lib/common.mjs'

const { isolated, args } = isolate()
const duration = Number(option(args, 'duration', '60'))
const warmup = Number(option(args, 'warmup', '5'))
const counts = option(args, 'counts', '0,50,200').split(',').map(Number)
const watchers = option(args, 'watchers', 'agent,si,floor').split(',')
const profileDir = option(args, 'profile', undefined)
// For experiments on a candidate fix: node flags for the agent, or another build's cli.js.
const agentNodeArgs = option(args, 'agent-node-args', '').split(' ').filter(Boolean)
const agentCli = option(args, 'agent-cli', undefined)
const TARGET = { cpuPercent: 1, rssMiB: 60, floorRatio: 2 }

console.error(`machine: ${machine()}${isolated ? '; in its own PID namespace' : ''}`)

const start = {
  agent: () => startAgentProcess({ nodeArgs: [...agentNodeArgs, ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])], ...(agentCli && { cli: agentCli }) }),
  si: () => startScript('bench/lib/watch-si.mjs'),
  floor: () => startScript('bench/lib/watch-floor.mjs'),
}

/** A comparison watcher: resolves once it printed `ready` (its first scan is done). */
async function startScript(path) {
  const child = spawn(process.execPath, [join(ROOT, path)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise(resolve => child.once('exit', resolve))
  await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve)
    child.once('exit', code => reject(new Error(`${path} exited (${code}) before ready`)))
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
  const cgroup = makeCgroup(`oomwatch-cost-${process.pid}-${count}`, 4 * 1024 * MiB)
  const idle = await spawnIdlePythons(count, cgroup)
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
    results.push({ count, name, cpuPercent, childPercent, startupCpuS: before.ticks / CLK_TCK, hwmMiB: after.hwmBytes / MiB, rssMiB: after.rssBytes / MiB })
    console.error(`${count} processes, ${name}: ${fmt(cpuPercent, 2)}% of a core (children ${fmt(childPercent, 2)}%), peak RSS ${fmt(after.hwmBytes / MiB)} MiB, startup CPU ${fmt(before.ticks / CLK_TCK, 2)} s`)
  }
  await idle.stop()
  await cgroup.remove()
}

const get = (count, name) => results.find(r => r.count === count && r.name === name)
const label = { agent: 'oomwatch agent', si: 'systeminformation.processes() loop', floor: 'bare /proc loop (floor)' }
console.log(`Duration ${duration} s after a ${warmup} s warm-up, default cadence; CPU is % of one core (utime+stime, reaped children included). Agent: node ${[...shippedNodeFlags(agentCli), ...agentNodeArgs].join(' ')} ${agentCli ?? 'dist/cli.js'} --port 0.\n`)
console.log(`| Python processes | watcher | CPU (% of a core) | of which children | peak RSS (MiB) | RSS at end (MiB) | CPU ÷ floor | CPU ÷ si | startup CPU (s) |`)
console.log(`|---|---|---|---|---|---|---|---|---|`)
for (const count of counts) {
  for (const name of watchers) {
    const r = get(count, name)
    if (!r) continue
    const floor = get(count, 'floor')
    const si = get(count, 'si')
    console.log(`| ${count} | ${label[name]} | ${fmt(r.cpuPercent, 2)} | ${fmt(r.childPercent, 2)} | ${fmt(r.hwmMiB)} | ${fmt(r.rssMiB)} | ${floor ? fmt(r.cpuPercent / floor.cpuPercent, 2) : '—'} | ${si ? fmt(r.cpuPercent / si.cpuPercent, 2) : '—'} | ${fmt(r.startupCpuS, 2)} |`)
  }
}
const top = Math.max(...counts)
const agent = get(top, 'agent')
const floor = get(top, 'floor')
if (agent) {
  const checks = [
    `CPU ${fmt(agent.cpuPercent, 2)}% of a core ${agent.cpuPercent < TARGET.cpuPercent ? '<' : '≥'} ${TARGET.cpuPercent}%: ${agent.cpuPercent < TARGET.cpuPercent ? 'met' : 'MISSED'}`,
    `peak RSS ${fmt(agent.hwmMiB)} MiB ${agent.hwmMiB < TARGET.rssMiB ? '<' : '≥'} ${TARGET.rssMiB} MiB: ${agent.hwmMiB < TARGET.rssMiB ? 'met' : 'MISSED'}`,
    ...(floor ? [`CPU ${fmt(agent.cpuPercent / floor.cpuPercent, 2)}× the floor's ${agent.cpuPercent / floor.cpuPercent <= TARGET.floorRatio ? '≤' : '>'} ${TARGET.floorRatio}×: ${agent.cpuPercent / floor.cpuPercent <= TARGET.floorRatio ? 'met' : 'MISSED'}`] : []),
  ]
  console.log(`\nTargets at ${top} processes: ${checks.join('; ')}.`)
}
