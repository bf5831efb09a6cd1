// Does memory.pressure (PSI) help the detector? Measured in the cgroup v2 guest
// (scripts/v2-guest/v2-guest.sh), since this machine is cgroup v1.
// Usage: npm run bench:psi -- [--runs 3] [--rates 5M,20M,80M] [--high-rates 20M,80M] [--limit 128Mi]
//        [--high-fraction 0.75] [--hold 20] [--reader 15] [--reads 20000] [--from FILE.jsonl]
//
// In one guest (bench/lib/psi-guest.mjs): the cost of a read (pread on a kept descriptor, as the
// agent reads) of memory.current, memory.pressure, /proc/pressure/memory, memory.events and
// memory.stat; then, `runs` times, the seed-shaped leak at each rate into memory.max alone until
// the OOM kill, a healthy reader (a file larger than the limit, read again and again) under
// memory.max alone, the leak at each high rate with memory.high below memory.max (held there
// for --hold seconds), and the reader under the same memory.high. Each run is sampled every
// 20 ms (memory.current, memory.pressure's some/full totals, memory.events). On the host,
// bench/lib/psi-analyze.mjs applies the agent's own usage rule (dist/detect) to the samples.
// The guest's raw lines go to bench/results/psi-<time>.jsonl; --from re-analyses such a file.
// Prints markdown on stdout, progress on stderr.
import { spawn } from 'node:child_process'
import { createWriteStream, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { parseLimit, parseRate } from './lib/cells.mjs'
import { DAEMON, PYTHON, ROOT, fmt, median, option } from './lib/common.mjs'
import { STALL_THRESHOLDS_US, SUSTAINED_MS, WINDOW_MS, analyse } from './lib/psi-analyze.mjs'

const args = process.argv.slice(2)
const list = (name, fallback) => option(args, name, fallback).split(',').filter(Boolean).map(parseRate)
const RESULTS = join(ROOT, 'bench/results')
const MiB = 1 << 20

async function runGuest() {
  const limit = parseLimit(option(args, 'limit', '128Mi'))
  const bigFile = join(RESULTS, 'psi-reader.bin')
  // Larger than the limit, so the reader keeps the page cache at the limit the whole time.
  const bigBytes = Math.ceil((limit * 1.25) / MiB) * MiB
  mkdirSync(RESULTS, { recursive: true })
  if (!existsSync(bigFile) || statSync(bigFile).size !== bigBytes) await run('head', ['-c', String(bigBytes), '/dev/urandom'], bigFile)
  const config = {
    python: PYTHON,
    daemon: DAEMON,
    bigFile,
    runs: Number(option(args, 'runs', '3')),
    rates: list('rates', '5M,20M,80M'),
    highRates: list('high-rates', '20M,80M'),
    limit,
    highFraction: Number(option(args, 'high-fraction', '0.75')),
    holdSeconds: Number(option(args, 'hold', '20')),
    readerSeconds: Number(option(args, 'reader', '15')),
    reads: Number(option(args, 'reads', '20000')),
  }
  const out = join(RESULTS, `psi-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`)
  process.stderr.write(`psi: booting the v2 guest (waits if another holds it); raw lines to ${out}\n`)
  const guest = join(ROOT, 'scripts/v2-guest/v2-guest.sh')
  await run(guest, ['--timeout', '1800', '--', process.execPath, join(ROOT, 'bench/lib/psi-guest.mjs'), JSON.stringify(config)], out)
  return out
}

/** Runs `file` with its stdout into `path`; rejects on a non-zero exit. */
function run(file, argv, path) {
  return new Promise((resolve, reject) => {
    const sink = createWriteStream(path)
    const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'inherit'] })
    child.stdout.pipe(sink)
    child.on('error', reject)
    child.on('close', code => sink.end(() => (code === 0 ? resolve() : reject(new Error(`${file} exited ${code}`)))))
  })
}

const file = option(args, 'from', undefined) ?? (await runGuest())
const records = readFileSync(file, 'utf8').trim().split('\n').map(JSON.parse)
const guest = records.find(r => r.kind === 'guest')
const runs = records.filter(r => r.kind === 'run').map(analyse)
if (!records.some(r => r.kind === 'done')) process.stderr.write(`psi: ${file} has no 'done' line: the guest stopped early\n`)

const mb = bytes => `${Math.round(bytes / 1e6)} MB/s`
/** median (min–max) of the defined values, or — */
const spread = (values, digits = 0) => {
  const v = values.filter(Number.isFinite)
  if (v.length === 0) return '—'
  const m = fmt(median(v), digits)
  return v.length === 1 ? m : `${m} (${fmt(Math.min(...v), digits)}–${fmt(Math.max(...v), digits)})`
}
const before = (r, t) => (t === undefined || r.oom === undefined ? undefined : r.oom - t)

const lines = []
const say = line => lines.push(line)
/** A table: its header, then one row per array of cells. */
function table(header, rows) {
  say(`| ${header.join(' | ')} |`)
  say(`| ${header.map(() => '---').join(' | ')} |`)
  for (const cells of rows) say(`| ${cells.join(' | ')} |`)
}
say(`Guest: Linux ${guest.kernel}, ${guest.cpus} vCPU (QEMU TCG), Node ${guest.node}; raw: \`${file.replace(ROOT, '')}\``)
say('')
say('### Read cost (pread at offset 0 on a kept descriptor, in the guest)')
say('')
const costs = records.filter(r => r.kind === 'readcost')
const base = costs.find(c => c.file === 'memory.current')
table(
  ['file', 'µs per read, median of 20 rounds', 'fastest round', '× memory.current (median)'],
  costs.map(c => [c.file, fmt(c.usPerRead, 1), fmt(c.usPerReadMin, 1), fmt(c.usPerRead / base.usPerRead, 2)]),
)
say(`(${costs[0]?.reads} reads of each, in 20 rounds that rotate the order, after a warm-up round.)`)

const ms = t => (t === undefined ? '—' : String(Math.round(t)))
const reasons = rs => [...new Set(rs.map(r => r.trigger?.reason ?? 'never'))].join(', ')
const killed = rs => rs.filter(r => r.oom !== undefined).length
const leaks = high => runs.filter(r => r.scenario === 'leak' && Boolean(r.high) === high)
const ratesOf = rs => [...new Set(rs.map(r => r.rate))]
const first = STALL_THRESHOLDS_US[0]
const lead = r => (r.trigger && r.stall[first] !== undefined ? r.trigger.t - r.stall[first] : undefined)
const label = us => (us >= 1000 ? `${us / 1000} ms` : `${us} µs`)

say('')
say('### Leaks into memory.max alone: ms before the OOM kill, median (min–max)')
say('')
table(
  [
    'rate asked (measured MB/s)',
    'runs, OOM-killed',
    'usage rule fires (reason)',
    `PSI some: first stall ≥ ${STALL_THRESHOLDS_US.map(label).join(' / ≥ ')} per ${WINDOW_MS} ms`,
    'usage within 2% of max',
    'first memory.events max',
    'PSI lead over the usage rule (ms)',
  ],
  ratesOf(leaks(false)).map(rate => {
    const rs = leaks(false).filter(r => r.rate === rate)
    const col = pick => spread(rs.map(pick))
    return [
      `${mb(rate)} (${spread(
        rs.map(r => r.measuredMBps),
        1,
      )})`,
      `${rs.length}, ${killed(rs)}`,
      `${col(r => before(r, r.trigger?.t))} (${reasons(rs)})`,
      STALL_THRESHOLDS_US.map(us => col(r => before(r, r.stall[us]))).join(' / '),
      col(r => before(r, r.atMax)),
      col(r => before(r, r.firstMaxEvent)),
      col(lead),
    ]
  }),
)
say('')
say(`PSI lead: the usage rule's time minus PSI's first stall (≥ ${label(first)}); negative: PSI came later.`)

say('')
say('### Held at a limit: the leak at memory.high, and a healthy reader, median (min–max) over runs')
say('')
const highMiB = Math.round((runs.find(r => r.high)?.high ?? 0) / MiB)
const cases = [
  ...ratesOf(leaks(true)).map(rate => [`leak ${mb(rate)}, memory.high ${highMiB} MiB`, leaks(true).filter(r => r.rate === rate)]),
  ['reader, memory.high', runs.filter(r => r.scenario === 'reader' && r.high)],
  ['reader, memory.max alone', runs.filter(r => r.scenario === 'reader' && !r.high)],
  ...ratesOf(leaks(false)).map(rate => [
    `leak ${mb(rate)}, memory.max alone (at max until the kill)`,
    leaks(false).filter(r => r.rate === rate),
  ]),
]
table(
  [
    'case',
    'runs (OOM-killed)',
    'held (s)',
    'usage growth while held (MB/s)',
    'PSI some (ms of stall per s)',
    'worst 1 s (ms)',
    `first 1 s ≥ ${SUSTAINED_MS} ms, after reaching the level (ms)`,
    'PSI full (ms/s)',
    'memory.events high /s',
    'max /s',
    'usage rule fired',
    'at (ms from start)',
    'the rule on memory.stat anon fired',
  ],
  cases
    .filter(([, rs]) => rs.length > 0)
    .map(([name, rs]) => {
      const h = key =>
        spread(
          rs.map(r => r.held?.[key]),
          1,
        )
      const keys = ['seconds', 'growthMBps', 'someMsPerS', 'worstSomeMsPerS', 'sustainedAfterMs', 'fullMsPerS', 'highPerS', 'maxPerS']
      const never = rs.filter(r => r.held && r.held.sustainedAfterMs === undefined).length
      return [
        name,
        `${rs.length} (${killed(rs)})`,
        ...keys.map(key => (key === 'sustainedAfterMs' && never ? `${h(key)}; never in ${never}` : h(key))),
        `${rs.filter(r => r.trigger).length} of ${rs.length} (${reasons(rs)})`,
        spread(rs.map(r => r.trigger?.t)),
        `${rs.filter(r => r.anonTrigger).length} of ${rs.length}`,
      ]
    }),
)

say('')
say('<details><summary>Every run (ms from the start)</summary>')
say('')
table(
  [
    'run',
    'MB/s',
    'ready',
    'usage rule',
    'stall ≥1 µs / 1 ms / 10 ms',
    'at high',
    'at max',
    '1st high event',
    '1st max event',
    'OOM kill',
    'end',
  ],
  runs.map(r => [
    r.name,
    fmt(r.measuredMBps, 1),
    ms(r.readyAt),
    `${ms(r.trigger?.t)} ${r.trigger?.reason ?? ''}`,
    STALL_THRESHOLDS_US.map(us => ms(r.stall[us])).join(' / '),
    ...[r.atHigh, r.atMax, r.firstHighEvent, r.firstMaxEvent, r.oom, r.end].map(ms),
  ]),
)
say('')
say('</details>')
process.stdout.write(`${lines.join('\n')}\n`)
