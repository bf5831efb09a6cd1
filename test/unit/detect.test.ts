import t from 'tap'
import { CaptureGate } from '../../src/detect/cooldown.js'
import { measureGrowth, secondsToLimit } from '../../src/detect/growth.js'
import { findRisks } from '../../src/detect/rlimit-rules.js'
import { Series } from '../../src/detect/series.js'
import { assess, nextIntervalMs, noiseFloor, type TriggerOptions, type Verdict } from '../../src/detect/trigger.js'
import type { Sample } from '../../src/types.js'
import type { RlimitTable } from '../../src/protocol/values.js'

const MiB = 1 << 20
const MB = 1e6
const LIMIT = 256 * MiB
/** The documented defaults. */
const OPTIONS: TriggerOptions = { fraction: 0.9, seconds: 3, windowMs: 2000 }

/** The detector reads a Series; the tests write their series as arrays of samples. */
const growthOf = (samples: readonly Sample[], windowMs: number, tolerance: number) => measureGrowth(Series.of(samples), windowMs, tolerance)
const judge = (samples: readonly Sample[], limit: number, options: TriggerOptions) => assess(Series.of(samples), limit, options)

// ---- synthetic series: t in ms, bytes as integers ----

/** `count` samples every `everyMs`, the bytes at time t (seconds) given by `at`. */
function series(count: number, everyMs: number, at: (seconds: number, index: number) => number): Sample[] {
  return Array.from({ length: count }, (_, i) => ({ t: i * everyMs, bytes: Math.round(at((i * everyMs) / 1000, i)) }))
}

/** A linear leak from `start` at `rate` bytes/s, sampled every `everyMs` until it passes `until`. */
function linearLeak(start: number, rate: number, everyMs: number, until = LIMIT): Sample[] {
  const step = (rate * everyMs) / 1000
  return series(Math.ceil((until - start) / step) + 1, everyMs, s => start + rate * s)
}

/** Deterministic uniform numbers in [0, 1) (mulberry32), so a jittered series is the same every run. */
function random(seed: number): () => number {
  let state = seed
  return () => {
    state = (state + 0x6d2b79f5) | 0
    let x = Math.imul(state ^ (state >>> 15), 1 | state)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** The verdict at every prefix of the series, as the agent sees it tick by tick. */
function verdicts(samples: readonly Sample[], limit = LIMIT, options = OPTIONS): Verdict[] {
  return samples.map((_, i) => judge(samples.slice(0, i + 1), limit, options))
}

function firstRunaway(list: readonly Verdict[]): number {
  return list.findIndex(v => v.state === 'runaway')
}

t.test('noiseFloor: 1% of the limit, at least 1 MiB', async t => {
  t.equal(noiseFloor(LIMIT), Math.floor(LIMIT / 100))
  t.equal(noiseFloor(50 * MiB), MiB, 'a small limit still has a 1 MiB floor')
  t.equal(noiseFloor(0), MiB)
})

t.test('secondsToLimit', async t => {
  t.equal(secondsToLimit(100, 200, 50), 2)
  t.equal(secondsToLimit(200, 200, 50), 0, 'at the limit')
  t.equal(secondsToLimit(300, 200, 0), 0, 'past the limit, even when not growing')
  t.equal(secondsToLimit(100, 200, 0), Infinity, 'not growing')
  t.equal(secondsToLimit(100, 200, -5), Infinity, 'falling')
})

t.test('measureGrowth', async t => {
  t.test('empty series', async t => {
    t.strictSame(growthOf([], 2000, MiB), { bytesPerSec: 0, risen: 0, runLength: 0 })
  })
  t.test('one sample: no rate', async t => {
    t.strictSame(growthOf([{ t: 0, bytes: 5 * MiB }], 2000, MiB), { bytesPerSec: 0, risen: 0, runLength: 1 })
  })
  t.test('two samples at the same instant: no rate, no division by zero', async t => {
    const g = growthOf(
      [
        { t: 5, bytes: 0 },
        { t: 5, bytes: 10 * MiB },
      ],
      2000,
      MiB,
    )
    t.equal(g.bytesPerSec, 0)
    t.equal(g.risen, 10 * MiB)
  })
  t.test('a linear rise: exact rate, rise and run', async t => {
    const samples = series(11, 100, s => 10 * MB + 40 * MB * s)
    t.strictSame(growthOf(samples, 2000, MiB), { bytesPerSec: 40 * MB, risen: 40 * MB, runLength: 11 })
  })
  t.test('a drop beyond the tolerance restarts the rise', async t => {
    const samples = [0, 10, 20, 30, 5, 6, 7].map((mib, i) => ({ t: i * 100, bytes: mib * MiB }))
    const g = growthOf(samples, 2000, MiB)
    t.equal(g.runLength, 3, 'the rise is 5, 6, 7')
    t.equal(g.risen, 2 * MiB)
    t.equal(g.bytesPerSec, 10 * MiB, '2 MiB over 0.2 s')
  })
  t.test('a dip within the tolerance does not', async t => {
    const samples = [0, 10, 20, 19.5, 21].map((mib, i) => ({ t: i * 100, bytes: mib * MiB }))
    t.equal(growthOf(samples, 2000, MiB).runLength, 5)
    t.equal(growthOf(samples, 2000, 0).runLength, 2, 'with no tolerance the same dip ends the rise')
  })
  t.test('the newest sample ends a fall: run of 1, no rate', async t => {
    const samples = [
      { t: 0, bytes: 50 * MiB },
      { t: 100, bytes: 10 * MiB },
    ]
    t.strictSame(growthOf(samples, 2000, MiB), { bytesPerSec: 0, risen: 0, runLength: 1 })
  })
  t.test('a slow decline within the tolerance: rate clamped at 0', async t => {
    const samples = [
      { t: 0, bytes: 50 * MiB },
      { t: 100, bytes: 50 * MiB - 1000 },
      { t: 200, bytes: 50 * MiB - 2000 },
    ]
    const g = growthOf(samples, 2000, MiB)
    t.equal(g.bytesPerSec, 0)
    t.equal(g.risen, -2000)
  })
  t.test('the rate is over the window only', async t => {
    // 10 MB/s for 10 s, then 50 MB/s for 3 s
    const samples = series(131, 100, s => (s <= 10 ? 10 * MB * s : 100 * MB + 50 * MB * (s - 10)))
    t.equal(Math.round(growthOf(samples, 2000, MiB).bytesPerSec), 50 * MB, 'the last 2 s')
    const whole = growthOf(samples, Infinity, MiB).bytesPerSec
    t.equal(Math.round(whole), Math.round((250 * MB) / 13), 'an unbounded window averages the whole rise')
  })
})

t.test('assess: slow leak, 40 MB/s sampled every 100 ms into 256 MiB', async t => {
  const rate = 40 * MB
  const everyMs = 100
  const step = (rate * everyMs) / 1000
  const samples = linearLeak(20 * MiB, rate, everyMs)
  const list = verdicts(samples)
  t.equal(list[0]!.state, 'steady', 'one sample is no trend')
  t.equal(list[1]!.state, 'rising', 'one rising interval: rising, not yet a runaway')
  const at = firstRunaway(list)
  t.ok(at >= 2, 'no trigger before the rise spans 3 samples')
  t.ok(
    list.slice(1, at).every(v => v.state === 'rising'),
    'rising all the way to the trigger',
  )
  const trigger = list[at]!
  t.equal(trigger.reason, 'time-to-limit')
  // It triggers at the first sample whose predicted time to the limit is <= 3 s.
  const lowest = LIMIT - OPTIONS.seconds * rate
  t.ok(trigger.usage >= lowest && trigger.usage < lowest + step, `usage ${trigger.usage} in [${lowest}, ${lowest + step})`)
  t.equal(trigger.bytesPerSec, rate)
  t.ok(trigger.secondsToLimit <= 3 && trigger.secondsToLimit > 3 - everyMs / 1000)
  t.ok(trigger.fraction < OPTIONS.fraction, 'well before the 90% mark')
  t.ok(
    list.slice(at).every(v => v.state === 'runaway' && v.reason === 'time-to-limit'),
    'and stays a runaway',
  )
})

t.test('assess: fast leak, 1 GB/s, triggers at the third rising sample', async t => {
  for (const everyMs of [20, 100]) {
    const list = verdicts(linearLeak(20 * MiB, 1000 * MB, everyMs))
    t.strictSame(
      list.slice(0, 3).map(v => v.state),
      ['steady', 'rising', 'runaway'],
      `every ${everyMs} ms`,
    )
    t.equal(list[2]!.reason, 'time-to-limit')
    t.ok(list[2]!.usage < LIMIT, 'before the limit')
  }
})

t.test('assess: sawtooth, 20 -> 100 MB at 30 MB/s then freed, for 20 s: never a runaway', async t => {
  const samples = series(201, 100, s => 20 * MB + ((30 * MB * s) % (80 * MB)))
  const list = verdicts(samples)
  t.equal(firstRunaway(list), -1)
  t.ok(
    list.some(v => v.state === 'rising'),
    'its rises are seen',
  )
  const peak = Math.max(...samples.map(s => s.bytes))
  t.ok(peak > 95 * MB, 'the teeth reach ~100 MB')
  // Right after a free, the rise starts over.
  const afterFree = samples.findIndex((s, i) => i > 0 && s.bytes < samples[i - 1]!.bytes)
  t.equal(growthOf(samples.slice(0, afterFree + 1), 2000, noiseFloor(LIMIT)).runLength, 1)
})

t.test('assess: steady at 95% of the limit with ±0.5 MiB jitter for 30 s: never a runaway', async t => {
  const next = random(42)
  const samples = series(301, 100, () => 0.95 * LIMIT + (next() - 0.5) * MiB)
  const list = verdicts(samples)
  t.ok(
    list.every(v => v.state === 'steady'),
    'steady at every tick',
  )
  t.ok(list.every(v => v.fraction > 0.94 && v.fraction < 0.96))
  t.equal(nextIntervalMs(list.at(-1), 1000, 20, 0.9), 20, 'but watched closely')
})

t.test('assess: a step long past, then a plateau, is steady', async t => {
  const samples = series(40, 100, s => (s < 0.5 ? 10 * MB : 200 * MB))
  const v = judge(samples, LIMIT, OPTIONS)
  t.equal(v.state, 'steady', 'risen beyond noise, but no growth within the window')
  t.equal(v.bytesPerSec, 0)
  t.equal(v.secondsToLimit, Infinity)
})

t.test('assess: empty series', async t => {
  const v = judge([], LIMIT, OPTIONS)
  t.equal(v.state, 'steady')
  t.equal(v.usage, 0)
  t.equal(v.fraction, 0)
})

t.test('assess: slow leak past 90% triggers limit-fraction', async t => {
  const rate = 5 * MB
  const everyMs = 200
  const step = (rate * everyMs) / 1000
  const list = verdicts(linearLeak(0.8 * LIMIT, rate, everyMs))
  const at = firstRunaway(list)
  const trigger = list[at]!
  t.equal(trigger.reason, 'limit-fraction')
  const lowest = OPTIONS.fraction * LIMIT
  t.ok(trigger.usage >= lowest && trigger.usage < lowest + step, `usage ${trigger.usage} in [${lowest}, ${lowest + step})`)
  t.ok(trigger.secondsToLimit > OPTIONS.seconds, 'too slow for time-to-limit')
  t.ok(list.slice(0, at).every(v => v.state !== 'runaway'))
  // Closer still, time-to-limit takes over.
  const later = list.findIndex(v => v.reason === 'time-to-limit')
  t.ok(later > at)
  t.ok(list[later]!.usage >= LIMIT - OPTIONS.seconds * rate)
})

t.test('assess: a leak with small GC dips still triggers', async t => {
  const rate = 40 * MB
  const step = rate / 10
  // every fifth sample is 1 MiB below the one before it (a GC pass), then the leak resumes
  const samples = series(Math.ceil((LIMIT - 20 * MiB) / step), 100, (s, i) => 20 * MiB + rate * s - (i % 5 === 4 ? step + MiB : 0))
  t.ok(
    samples.some((s, i) => i > 0 && s.bytes < samples[i - 1]!.bytes),
    'the series does dip',
  )
  const list = verdicts(samples)
  const at = firstRunaway(list)
  t.ok(at > 0, 'triggers')
  t.equal(list[at]!.reason, 'time-to-limit')
  t.ok(list[at]!.usage < LIMIT)
  t.equal(growthOf(samples.slice(0, at + 1), 2000, noiseFloor(LIMIT)).runLength, at + 1, 'the dips did not end the rise')
})

t.test('assess: an accelerating leak is judged by its present speed', async t => {
  const a = 10 * MB // bytes/s²
  const samples = series(80, 100, s => 20 * MiB + (a * s * s) / 2)
  const list = verdicts(samples)
  const at = firstRunaway(list)
  t.ok(at > 0, 'triggers')
  const trigger = list[at]!
  t.equal(trigger.reason, 'time-to-limit')
  const seconds = samples[at]!.t / 1000
  // The slope over the last 2 s of t -> a t²/2 is a (t - 1).
  t.ok(Math.abs(trigger.bytesPerSec - a * (seconds - 1)) < 1000, `rate ${trigger.bytesPerSec} is the windowed slope`)
  const average = (trigger.usage - 20 * MiB) / seconds
  t.ok(trigger.bytesPerSec > average, 'faster than the average since the start')
  t.ok(secondsToLimit(trigger.usage, LIMIT, average) > OPTIONS.seconds, 'an average rate would not have triggered yet')
})

t.test('nextIntervalMs', async t => {
  const at = (fraction: number, state: Verdict['state'] = 'steady'): Verdict => ({
    ...(state === 'runaway' ? { state, reason: 'time-to-limit' as const } : { state }),
    usage: fraction * LIMIT,
    limit: LIMIT,
    fraction,
    bytesPerSec: 0,
    secondsToLimit: Infinity,
  })
  t.equal(nextIntervalMs(undefined, 1000, 20, 0.9), 1000, 'no verdict yet')
  t.equal(nextIntervalMs(at(0.1), 1000, 20, 0.9), 1000, 'steady and low')
  t.equal(nextIntervalMs(at(0.5), 1000, 20, 0.9), 1000, 'at half')
  t.equal(nextIntervalMs(at(0.1, 'rising'), 1000, 20, 0.9), 20, 'rising, however low')
  t.equal(nextIntervalMs(at(0.1, 'runaway'), 1000, 20, 0.9), 20)
  t.equal(nextIntervalMs(at(0.7), 1000, 20, 0.9), 510, 'half way between half and the trigger')
  t.equal(nextIntervalMs(at(0.9), 1000, 20, 0.9), 20, 'at the trigger fraction')
  t.equal(nextIntervalMs(at(0.99), 1000, 20, 0.9), 20, 'past it')
  const eased = [0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85].map(f => nextIntervalMs(at(f), 1000, 20, 0.9))
  t.ok(
    eased.every((ms, i) => ms < 1000 && ms > 20 && (i === 0 || ms < eased[i - 1]!)),
    `eases down: ${eased.join(' ')}`,
  )
  t.equal(nextIntervalMs(at(0.505), 1000, 20, 0.5), 510, 'a trigger fraction at half eases over 1%')
  // and from real verdicts
  t.equal(
    nextIntervalMs(
      judge(
        series(10, 100, () => 10 * MiB),
        LIMIT,
        OPTIONS,
      ),
      1000,
      20,
      0.9,
    ),
    1000,
  )
  t.equal(nextIntervalMs(judge(linearLeak(20 * MiB, 40 * MB, 100).slice(0, 2), LIMIT, OPTIONS), 1000, 20, 0.9), 20)
})

t.test('Series keeps at most its capacity, newest last, across the wrap of its ring', async t => {
  const small = new Series(3)
  t.equal(small.lastBytes(), undefined)
  t.equal(small.length, 0)
  for (let i = 0; i < 5; i++) small.push({ t: i, bytes: i * 10 })
  t.equal(small.length, 3)
  t.strictSame(
    small.toArray(),
    [
      { t: 2, bytes: 20 },
      { t: 3, bytes: 30 },
      { t: 4, bytes: 40 },
    ],
    'the oldest were dropped',
  )
  t.equal(small.t(0), 2)
  t.equal(small.bytes(2), 40)
  t.equal(small.lastBytes(), 40)
  const big = new Series()
  t.equal(big.capacity, 256)
  for (let i = 0; i < 300; i++) big.push({ t: i, bytes: 0 })
  t.equal(big.length, 256)
  t.equal(big.t(0), 44)
  t.equal(Series.of(series(300, 1, () => 0)).length, 300, 'of: room for every sample given')
  small.dropBefore(4)
  t.strictSame(small.toArray(), [{ t: 4, bytes: 40 }], 'dropBefore: the samples older than t go')
  small.dropBefore(10)
  t.equal(small.length, 0)
  small.push({ t: 11, bytes: 1 })
  t.strictSame(small.toArray(), [{ t: 11, bytes: 1 }], 'and the ring goes on after it emptied')
})

t.test('CaptureGate', async t => {
  const gate = new CaptureGate(1000)
  t.equal(gate.cooldownMs, 1000)
  t.equal(gate.busy, false)
  t.equal(gate.tryEnter('time-to-limit', 0), true)
  t.equal(gate.busy, true)
  t.equal(gate.tryEnter('limit-fraction', 10), false, 'busy: one capture at a time')
  gate.leave()
  t.equal(gate.busy, false)
  t.equal(gate.tryEnter('time-to-limit', 500), false, 'same reason, cooling down')
  t.equal(gate.busy, false, 'a refusal does not claim the gate')
  t.equal(gate.tryEnter('limit-fraction', 500), true, 'a different reason passes')
  gate.leave()
  t.equal(gate.tryEnter('time-to-limit', 999), false)
  t.equal(gate.tryEnter('time-to-limit', 1000), true, 'cooled down')
  gate.leave()
  t.equal(gate.tryEnter('time-to-limit', 1600), false, 'the cooldown restarted at 1000, not at the refusals')
  t.equal(gate.tryEnter('time-to-limit', 2000), true)
})

t.test('findRisks', async t => {
  const options = { nofileRisk: 1048576 }
  const table = (rows: RlimitTable): RlimitTable => ({ CPU: { soft: 'unlimited', hard: 'unlimited', units: 'seconds' }, ...rows })

  t.test('NOFILE hard 1073741816 (containerd LimitNOFILE=infinity)', async t => {
    const risks = findRisks(table({ NOFILE: { soft: 1024, hard: 1073741816, units: 'files' } }), options)
    t.equal(risks.length, 1)
    const [risk] = risks
    t.match(risk, { rule: 'nofile-hard-huge', rlimit: 'NOFILE', value: 1073741816, threshold: 1048576 })
    t.match(risk!.message, /NOFILE hard limit 1073741816 /)
    t.match(risk!.message, 'set(range(0, hard_limit))')
    t.match(risk!.message, /about 61440 MiB/, 'with the estimate')
  })
  t.test('exactly the threshold is no risk', async t => {
    t.strictSame(findRisks(table({ NOFILE: { soft: 1048576, hard: 1048576, units: 'files' } }), options), [])
  })
  t.test('soft and hard both huge: two risks', async t => {
    const risks = findRisks(table({ NOFILE: { soft: 1073741816, hard: 1073741816, units: 'files' } }), options)
    t.strictSame(
      risks.map(r => r.rule),
      ['nofile-hard-huge', 'nofile-soft-huge'],
    )
    t.match(risks[1]!.message, 'set(range(0, soft_limit))')
  })
  t.test('unlimited', async t => {
    const risks = findRisks(table({ NOFILE: { soft: 1024, hard: 'unlimited', units: 'files' } }), options)
    t.equal(risks.length, 1)
    t.equal(risks[0]!.value, 'unlimited')
    t.match(risks[0]!.message, /NOFILE hard limit unlimited /)
    t.notMatch(risks[0]!.message, /MiB/, 'no estimate for an unlimited value')
  })
  t.test('AS limited', async t => {
    const risks = findRisks(table({ AS: { soft: 4294967296, hard: 'unlimited', units: 'bytes' } }), options)
    t.strictSame(
      risks.map(r => r.rule),
      ['as-limited'],
    )
    t.match(risks[0], { rlimit: 'AS', value: 4294967296 })
    t.match(risks[0]!.message, /4294967296 bytes.*MemoryError/)
  })
  t.test('AS unlimited and a small NOFILE: none', async t => {
    const rows = table({ AS: { soft: 'unlimited', hard: 'unlimited', units: 'bytes' }, NOFILE: { soft: 1024, hard: 4096, units: 'files' } })
    t.strictSame(findRisks(rows, options), [])
  })
  t.test('no NOFILE row: none', async t => {
    t.strictSame(findRisks(table({}), options), [])
  })
})
