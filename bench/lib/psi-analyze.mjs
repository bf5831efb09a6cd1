// Pure analysis of one sampled run of bench/lib/psi-guest.mjs: when the agent's usage rule
// would have fired (the built detector itself, dist/detect/, fed at the agent's own tick
// cadence), when PSI first showed stall, when the limit was reached and the OOM kill came, and
// how the signals behave while usage is held at memory.high or memory.max.
import { Series } from '../../dist/detect/series.js'
import { assess, nextIntervalMs } from '../../dist/detect/trigger.js'

/** The agent's defaults (src/config/settings/detect.ts). */
export const AGENT = { intervalMs: 100, fastIntervalMs: 20, fraction: 0.9, seconds: 3, windowMs: 2000 }
/** PSI "shows stall" when its some-total rises by at least this many µs over WINDOW_MS. */
export const STALL_THRESHOLDS_US = [1, 1000, 10000]
export const WINDOW_MS = 100

const T = 0
const CURRENT = 1
const SOME = 2
const FULL = 3
const HIGH = 4
const MAX = 5
const OOM_KILL = 6
/** memory.stat's anon: what a leak grows, and a page cache does not. */
export const ANON = 7

/**
 * The first time the usage rule fires: samples are taken at the 20 ms tick, the agent reads
 * at 100 ms while steady and 20 ms while rising, so only the sample at or after each of its
 * due times is fed, from `from` (the interpreter's "ready": its start-up is a rise the agent
 * judges by its start-up rules, src/detect/newborn.ts, not by this one). `col` ANON feeds
 * memory.stat's anon instead of memory.current. Returns { t, reason, usage } or undefined.
 */
export function usageTrigger(samples, limit, { from = 0, col = CURRENT, options = AGENT } = {}) {
  const series = new Series()
  let due = from
  for (const s of samples) {
    if (s[T] < due || s[col] === 0) continue
    series.push({ t: s[T], bytes: s[col] })
    const verdict = assess(series, limit, { fraction: options.fraction, seconds: options.seconds, windowMs: options.windowMs })
    if (verdict.state === 'runaway') return { t: s[T], reason: verdict.reason, usage: s[col] }
    due = s[T] + nextIntervalMs(verdict, options.intervalMs, options.fastIntervalMs, options.fraction)
  }
  return undefined
}

/** The first sample whose stall counter (column `col`) rose by >= `us` over the last `windowMs`. */
export function stallOnset(samples, us, col = SOME, windowMs = WINDOW_MS) {
  let back = 0
  for (let i = 0; i < samples.length; i++) {
    while (samples[back + 1] && samples[i][T] - samples[back + 1][T] >= windowMs) back++
    if (samples[i][col] - samples[back][col] >= us) return samples[i][T]
  }
  return undefined
}

const firstWhere = (samples, test) => samples.find(test)?.[T]

/**
 * The signals over the stretch where usage sits at `level` (within 2 MiB or 2% below it) up to
 * the end or the OOM kill: stall per second of wall time (ms/s, i.e. tenths of a percent), the
 * counters' rates, and how fast usage still grows there.
 */
export function held(samples, level) {
  const near = Math.min(2 << 20, level * 0.02)
  const from = samples.findIndex(s => s[CURRENT] >= level - near)
  if (from < 0) return undefined
  // The end: the OOM kill, or the exit of a run we stopped (usage falls to nothing at once).
  const killed = samples.findIndex(s => s[OOM_KILL] > 0)
  const gone = samples.findIndex((s, i) => i > from && s[CURRENT] < level * 0.9)
  const ends = [killed, gone, samples.length].filter(i => i >= 0)
  const to = Math.min(...ends) - 1
  if (to <= from) return undefined
  const a = samples[from]
  const b = samples[to]
  const seconds = (b[T] - a[T]) / 1000
  return {
    seconds,
    someMsPerS: (b[SOME] - a[SOME]) / 1000 / seconds,
    fullMsPerS: (b[FULL] - a[FULL]) / 1000 / seconds,
    highPerS: (b[HIGH] - a[HIGH]) / seconds,
    maxPerS: (b[MAX] - a[MAX]) / seconds,
    growthMBps: (b[CURRENT] - a[CURRENT]) / 1e6 / seconds,
    // The worst 1 s of the stretch: a steady mean can hide a burst.
    worstSomeMsPerS: seconds1(samples.slice(from, to + 1)).worst,
    // How long after reaching the level a 1 s window first stalls SUSTAINED_MS or more.
    sustainedAfterMs: seconds1(samples.slice(from, to + 1)).over,
  }
}

/** Stall (ms of some) that a 1 s window must reach to count as held: 2 x the healthy reader's worst measured second. */
export const SUSTAINED_MS = 300

/** The 1 s windows of a stretch: the most stall in one, and when one first reached SUSTAINED_MS. */
function seconds1(samples) {
  let worst = 0
  let over
  let back = 0
  for (let i = 0; i < samples.length; i++) {
    while (samples[i][T] - samples[back][T] > 1000) back++
    if (samples[i][T] - samples[back][T] < 900) continue
    const stall = (samples[i][SOME] - samples[back][SOME]) / 1000
    worst = Math.max(worst, stall)
    if (over === undefined && stall >= SUSTAINED_MS) over = samples[i][T] - samples[0][T]
  }
  return { worst, over }
}

/** Everything the summary needs of one run record (`kind: 'run'`). */
export function analyse(run) {
  const s = run.samples
  const level = run.high ?? run.max
  const oom = firstWhere(s, x => x[OOM_KILL] > 0)
  const climbEnd = s.findIndex(x => x[CURRENT] >= level * 0.9)
  const growing = s.slice(0, climbEnd < 0 ? s.length : climbEnd).filter(x => x[T] >= (run.readyAt ?? 0))
  const rate = growing.length > 2 ? rateOver(growing.slice(Math.floor(growing.length / 2))) : undefined
  return {
    name: run.name,
    readyAt: run.readyAt,
    scenario: run.scenario,
    rate: run.rate,
    high: run.high,
    max: run.max,
    measuredMBps: rate,
    trigger: usageTrigger(s, run.max, { from: run.readyAt }),
    anonTrigger: s[0].length > ANON ? usageTrigger(s, run.max, { from: run.readyAt, col: ANON }) : undefined,
    stall: Object.fromEntries(STALL_THRESHOLDS_US.map(us => [us, stallOnset(s, us)])),
    fullStall1ms: stallOnset(s, 1000, FULL),
    atHigh: run.high ? firstWhere(s, x => x[CURRENT] >= run.high - Math.min(2 << 20, run.high * 0.02)) : undefined,
    atMax: firstWhere(s, x => x[CURRENT] >= run.max - Math.min(2 << 20, run.max * 0.02)),
    firstHighEvent: firstWhere(s, x => x[HIGH] > 0),
    firstMaxEvent: firstWhere(s, x => x[MAX] > 0),
    oom,
    end: s.at(-1)[T],
    held: held(s, level),
  }
}

/** MB/s over the later half of the climb (the interpreter's start is not the leak's rate). */
function rateOver(samples) {
  const a = samples[0]
  const b = samples.at(-1)
  return b[T] > a[T] ? (b[CURRENT] - a[CURRENT]) / 1e6 / ((b[T] - a[T]) / 1000) : undefined
}
