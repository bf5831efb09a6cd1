// A/B measurements of candidate agent fixes, for the cost benchmark's "why" (not one of
// the three benchmarks). The same idle Python processes, then each variant in turn, the
// order interleaved over rounds; CPU over `duration` seconds after a warm-up, and VmHWM.
// Usage: node bench/lib/agent-variants.mjs [--count 200] [--rounds 3] [--duration 40] [--warmup 5]
//          name=[node flags,comma-separated]@[path/to/dist/cli.js] ...
// e.g.   node bench/lib/agent-variants.mjs base=@ lite=--lite-mode@ patched=@/tmp/patched/dist/cli.js
// An empty flag list or path means none / this checkout's dist/cli.js; the flags are exactly
// those given (not the shebang's, unlike the benchmarks). Runs in its own PID
// namespace unless --no-isolate.
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { CLK_TCK, MiB, fmt, isolate, machine, makeCgroup, median, option, spawnIdlePythons, startAgentProcess, usageOf } from './common.mjs'

const { isolated, args } = isolate()
const count = Number(option(args, 'count', '200'))
const rounds = Number(option(args, 'rounds', '3'))
const duration = Number(option(args, 'duration', '40'))
const warmup = Number(option(args, 'warmup', '5'))
const variants = args
  .filter(arg => /^[^-][^=]*=/.test(arg))
  .map(arg => {
    const [name, spec] = [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
    const [flags, cli] = [spec.slice(0, spec.lastIndexOf('@')), spec.slice(spec.lastIndexOf('@') + 1)]
    return { name, nodeArgs: flags.split(',').filter(Boolean), ...(cli && { cli }) }
  })
console.error(`machine: ${machine()}${isolated ? '; in its own PID namespace' : ''}`)

const cgroup = makeCgroup(`oomwatch-variants-${process.pid}`, 4 * 1024 * MiB)
const idle = await spawnIdlePythons(count, cgroup)
const results = new Map(variants.map(v => [v.name, []]))
for (let round = 0; round < rounds; round++) {
  const order = variants.map((_, i) => variants[(i + round) % variants.length])
  for (const variant of order) {
    const agent = await startAgentProcess({ ...variant, shippedFlags: false })
    await sleep(warmup * 1000)
    const before = usageOf(agent.pid)
    const t0 = performance.now()
    await sleep(duration * 1000)
    const after = usageOf(agent.pid)
    const status = readFileSync(`/proc/${agent.pid}/status`, 'utf8')
    const kb = key => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0) / 1024
    await agent.stop()
    const row = {
      cpuPercent: ((after.ticks - before.ticks) / CLK_TCK / ((performance.now() - t0) / 1000)) * 100,
      hwmMiB: after.hwmBytes / MiB,
      rssMiB: after.rssBytes / MiB,
      anonMiB: kb('RssAnon'),
      fileMiB: kb('RssFile'),
    }
    results.get(variant.name).push(row)
    console.error(
      `round ${round + 1} ${variant.name}: ${fmt(row.cpuPercent, 2)}% CPU, VmHWM ${fmt(row.hwmMiB)} MiB (anon ${fmt(row.anonMiB)}, file ${fmt(row.fileMiB)} at end)`,
    )
  }
}
await idle.stop()
await cgroup.remove()

const base = results.get(variants[0].name)
console.log(`${count} idle Python processes, ${rounds} rounds, CPU over ${duration} s after ${warmup} s; medians.\n`)
console.log(
  `| variant | node flags | cli | CPU (% of a core) | CPU ÷ ${variants[0].name} | peak RSS VmHWM (MiB) | RSS at end (MiB) | anon / file at end (MiB) |`,
)
console.log(`|---|---|---|---|---|---|---|---|`)
for (const v of variants) {
  const rows = results.get(v.name)
  const m = key => median(rows.map(r => r[key]))
  console.log(
    `| ${v.name} | ${v.nodeArgs.join(' ') || '—'} | ${v.cli ?? 'dist/cli.js'} | ${fmt(m('cpuPercent'), 2)} | ${fmt(m('cpuPercent') / median(base.map(r => r.cpuPercent)), 2)} | ${fmt(m('hwmMiB'))} | ${fmt(m('rssMiB'))} | ${fmt(m('anonMiB'))} / ${fmt(m('fileMiB'))} |`,
  )
}
