import t from 'tap'
import { hasSettled, IMMINENT_SECONDS, judgeStarting, SETTLE_MS, STARTUP_MAX_BYTES_PER_SEC, STARTUP_MS } from '../../src/detect/newborn.js'
import { Series } from '../../src/detect/series.js'
import { assess, type Triggered, type TriggerOptions, type Verdict } from '../../src/detect/trigger.js'
import type { Sample } from '../../src/types.js'

const MiB = 1 << 20
const MB = 1e6
const LIMIT = 256 * MiB
const OPTIONS: TriggerOptions = { fraction: 0.9, seconds: 3, windowMs: 2000 }

/** A process's RSS every 20 ms (the fast tick) from its birth, `rate` bytes/s from `startBytes`. */
function fromBirth(startBytes: number, rate: number, ticks: number): Sample[] {
  return Array.from({ length: ticks }, (_, i) => ({ t: i * 20, bytes: Math.round(startBytes + (rate * i * 20) / 1000) }))
}

/** A process `ageMs` into its start-up, whose own RSS is `own`, under the default detector. */
const starting = (ageMs: number, own: Series, settledBytes?: number) => ({
  ageMs,
  own,
  settledBytes,
  windowMs: OPTIONS.windowMs,
  triggerFraction: OPTIONS.fraction,
})

/** The verdict after each tick, as the watcher judges a process that is `t` ms old at sample t (its RSS is its container's usage). */
function tickByTick(samples: readonly Sample[], limit = LIMIT): Verdict[] {
  let settledBytes: number | undefined
  return samples.map((sample, i) => {
    const seen = Series.of(samples.slice(0, i + 1))
    // As the watcher does: the first pause while starting is remembered.
    if (settledBytes === undefined && sample.t < STARTUP_MS && hasSettled(seen)) settledBytes = sample.bytes
    return judgeStarting(assess(seen, limit, OPTIONS), starting(sample.t, seen, settledBytes))
  })
}

t.test('a first-instant leak at CPython speed is a runaway from its third sample', async t => {
  // 10 MiB at birth, 1.4 GB/s: the seed's daemon filling a 256 MiB container.
  const list = tickByTick(fromBirth(10 * MiB, 1.4e9, 8))
  const first = list.findIndex(v => v.reason !== undefined)
  t.equal(first, 2, 'two rising intervals, then the trigger (40 ms after the first sample)')
  t.equal(list[first]!.reason, 'time-to-limit')
})

t.test('10 MiB to 150 MiB in 100 ms is a runaway at 1 GiB too, before the kill', async t => {
  const limit = 1024 * MiB
  const rate = 1.4e9
  const list = tickByTick(fromBirth(10 * MiB, rate, 60), limit)
  const first = list.findIndex(v => v.reason !== undefined)
  t.ok(first > 0, 'it triggers')
  const left = (limit - list[first]!.usage) / rate
  t.ok(left > 0.5, `with ${Math.round(left * 1000)} ms left to the limit: time for a capture`)
  t.ok(list[first]!.secondsToLimit > IMMINENT_SECONDS, 'fired for its speed, not for an imminent limit')
})

t.test('a first-instant leak at 200 MB/s into 128 MiB fires while the limit is still ahead', async t => {
  const limit = 128 * MiB
  const rate = 200 * MB
  const list = tickByTick(fromBirth(10 * MiB, rate, 60), limit)
  const first = list.findIndex(v => v.reason !== undefined)
  t.ok(first > 0, 'it triggers, though no faster than a start-up')
  const left = (limit - list[first]!.usage) / rate
  t.ok(left >= IMMINENT_SECONDS - 0.03, `when the limit is imminent (${Math.round(left * 1000)} ms left)`)
})

/** The heavy start-up measured (13 -> 63 MiB in ~250 ms, ~250 MiB/s), then flat for 5 s. */
const heavyStartup = Array.from({ length: 260 }, (_, i) => ({
  t: i * 20,
  bytes: Math.round(13 * MiB + 50 * MiB * Math.min(1, (i * 20) / 200)),
}))

for (const limitMiB of [256, 128]) {
  t.test(`a heavy start-up (13 to 63 MiB at 250 MiB/s, then flat) is no incident at ${limitMiB} MiB`, async t => {
    const list = tickByTick(heavyStartup, limitMiB * MiB)
    t.equal(list.filter(v => v.reason).length, 0, 'never a trigger, in start-up nor after it')
    const unheld = heavyStartup.map((_, i) => assess(Series.of(heavyStartup.slice(0, i + 1)), limitMiB * MiB, OPTIONS))
    t.ok(
      unheld.some(v => v.reason === 'time-to-limit'),
      'the same rise, judged without the start-up rules, would have fired',
    )
  })
}

t.test('a 200 MB/s leak after a second of quiet life is judged as a leak, not held as start-up', async t => {
  // 13 -> 20 MiB in 60 ms (the interpreter), flat until 1 s, then 200 MB/s until the limit.
  const samples = Array.from({ length: 120 }, (_, i) => {
    const ms = i * 20
    const bytes = ms < 60 ? 13 * MiB + (7 * MiB * ms) / 60 : ms < 1000 ? 20 * MiB : 20 * MiB + (200 * MB * (ms - 1000)) / 1000
    return { t: ms, bytes: Math.min(LIMIT, Math.round(bytes)) }
  })
  const list = tickByTick(samples)
  const first = list.findIndex(v => v.reason !== undefined)
  t.ok(first > 0, 'it triggers')
  t.equal(list[first]!.reason, 'time-to-limit')
  t.ok(
    list[first]!.fraction < 0.5,
    `early: at ${Math.round(list[first]!.fraction * 100)}% of the limit, not held to the trigger fraction (90%)`,
  )
})

t.test('start-up imports (~100 MB/s for a second) are no incident', async t => {
  // 10 MiB to ~110 MiB over the first second, then flat: what an application's imports do.
  const samples = Array.from({ length: 150 }, (_, i) => ({
    t: i * 20,
    bytes: Math.round(10 * MiB + 100 * MB * Math.min(1, (i * 20) / 1000)),
  }))
  const list = tickByTick(samples)
  t.equal(list.filter(v => v.reason).length, 0, 'never a trigger')
  t.ok(
    list.some(v => v.state === 'rising'),
    'though it was watched as rising',
  )
})

t.test('hasSettled: a pause of SETTLE_MS with less than 1 MiB of growth', async t => {
  const at = (points: [number, number][]) => Series.of(points.map(([ms, mib]) => ({ t: ms, bytes: mib * MiB })))
  t.equal(hasSettled(at([[0, 10]])), false, 'one sample: nothing to tell')
  t.equal(
    hasSettled(
      at([
        [0, 10],
        [100, 10],
        [200, 10],
      ]),
    ),
    false,
    'flat, but for less than SETTLE_MS',
  )
  t.equal(
    hasSettled(
      at([
        [0, 10],
        [100, 10],
        [200, 10],
        [SETTLE_MS, 10.5],
      ]),
    ),
    true,
    'flat (0.5 MiB) for SETTLE_MS',
  )
  t.equal(
    hasSettled(
      at([
        [0, 10],
        [100, 10],
        [200, 10],
        [SETTLE_MS, 12],
      ]),
    ),
    false,
    'still growing',
  )
  t.equal(
    hasSettled(
      at([
        [0, 0],
        [1000, 10],
        [1000 + SETTLE_MS, 10],
      ]),
    ),
    true,
    'a pause read at two samples far apart',
  )
})

t.test('judgeStarting', async t => {
  const runaway = (secondsToLimit: number, reason: Triggered['reason'] = 'time-to-limit'): Verdict => ({
    state: 'runaway',
    reason,
    usage: 50 * MiB,
    limit: LIMIT,
    fraction: 50 / 256,
    bytesPerSec: 100 * MB,
    secondsToLimit,
  })
  const slow = Series.of([0, 20, 40, 60].map(t => ({ t, bytes: 40 * MiB + t * 100 * 1000 })))
  const fast = Series.of([0, 20, 40, 60].map(t => ({ t, bytes: 40 * MiB + (t * STARTUP_MAX_BYTES_PER_SEC) / 1000 })))
  const held = judgeStarting(runaway(2), starting(500, slow))
  t.equal(held.state, 'rising', 'a starting process growing like a start-up, with 2 s to go, is held back')
  t.notOk('reason' in held, 'without a reason')
  t.equal(held.usage, 50 * MiB, 'its figures kept')
  const plateau = slow.bytes(slow.length - 1)
  t.same(
    judgeStarting(runaway(2), starting(STARTUP_MS + 1999, slow, plateau)),
    held,
    'paused and flat since: held while the window still reaches into the start-up',
  )
  t.same(judgeStarting(runaway(2), starting(STARTUP_MS + 2000, slow, plateau)), runaway(2), 'past start-up and window: unchanged')
  t.same(judgeStarting(runaway(2), starting(0, fast)), runaway(2), 'growing faster than any start-up: fires at any age')
  t.same(judgeStarting(runaway(IMMINENT_SECONDS), starting(0, slow)), runaway(IMMINENT_SECONDS), 'an imminent limit: fires at any age')
  t.same(
    judgeStarting(runaway(2, 'limit-fraction'), starting(0, slow)),
    runaway(2, 'limit-fraction'),
    'near the limit and rising: fires at any age',
  )
  const grew = Series.of([{ t: 0, bytes: 40 * MiB + 3 * MiB }])
  t.same(
    judgeStarting(runaway(2), starting(500, grew, 40 * MiB)),
    runaway(2),
    'paused, then grew by the noise floor (2.56 MiB): a leak after the start-up',
  )
  t.same(judgeStarting(runaway(2), starting(500, grew, 41 * MiB)), held, 'paused, then grew by less: the plateau after a start-up, held')
  t.same(judgeStarting(runaway(2), starting(STARTUP_MS, slow)), runaway(2), 'never paused in STARTUP_MS: no start-up grows that long')
  const nearLimit = { ...runaway(2), usage: 0.9 * LIMIT, fraction: 0.9 }
  t.same(
    judgeStarting(nearLimit, starting(0, slow)),
    nearLimit,
    'at the trigger fraction, though assess named time-to-limit first: fires at any age',
  )
  const steady: Verdict = { state: 'steady', usage: 1, limit: LIMIT, fraction: 0, bytesPerSec: 0, secondsToLimit: Infinity }
  t.same(judgeStarting(steady, starting(0, slow)), steady, 'no trigger: unchanged')
})
