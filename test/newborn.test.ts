import t from 'tap'
import { IMMINENT_SECONDS, judgeStarting, STARTUP_MAX_BYTES_PER_SEC, STARTUP_MS } from '../src/detect/newborn.js'
import { Series } from '../src/detect/series.js'
import { assess, type TriggerOptions, type Verdict } from '../src/detect/trigger.js'
import type { Sample } from '../src/types.js'

const MiB = 1 << 20
const MB = 1e6
const LIMIT = 256 * MiB
const OPTIONS: TriggerOptions = { fraction: 0.9, seconds: 3, windowMs: 2000 }

/** A process's RSS every 20 ms (the fast tick) from its birth, `rate` bytes/s from `startBytes`. */
function fromBirth(startBytes: number, rate: number, ticks: number): Sample[] {
  return Array.from({ length: ticks }, (_, i) => ({ t: i * 20, bytes: Math.round(startBytes + (rate * i * 20) / 1000) }))
}

/** The verdict after each tick, as the watcher judges a process that is `t` ms old at sample t (its RSS is its container's usage). */
function tickByTick(samples: readonly Sample[], limit = LIMIT): Verdict[] {
  return samples.map((sample, i) => {
    const seen = Series.of(samples.slice(0, i + 1))
    return judgeStarting(assess(seen, limit, OPTIONS), sample.t, seen, OPTIONS.windowMs)
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
const heavyStartup = Array.from({ length: 260 }, (_, i) => ({ t: i * 20, bytes: Math.round(13 * MiB + 50 * MiB * Math.min(1, (i * 20) / 200)) }))

for (const limitMiB of [256, 128]) {
  t.test(`a heavy start-up (13 to 63 MiB at 250 MiB/s, then flat) is no incident at ${limitMiB} MiB`, async t => {
    const list = tickByTick(heavyStartup, limitMiB * MiB)
    t.equal(list.filter(v => v.reason).length, 0, 'never a trigger, in start-up nor after it')
    const unheld = heavyStartup.map((_, i) => assess(Series.of(heavyStartup.slice(0, i + 1)), limitMiB * MiB, OPTIONS))
    t.ok(unheld.some(v => v.reason === 'time-to-limit'), 'the same rise, judged without the start-up rules, would have fired')
  })
}

t.test('start-up imports (~100 MB/s for a second) are no incident', async t => {
  // 10 MiB to ~110 MiB over the first second, then flat: what an application's imports do.
  const samples = Array.from({ length: 150 }, (_, i) => ({ t: i * 20, bytes: Math.round(10 * MiB + 100 * MB * Math.min(1, (i * 20) / 1000)) }))
  const list = tickByTick(samples)
  t.equal(list.filter(v => v.reason).length, 0, 'never a trigger')
  t.ok(list.some(v => v.state === 'rising'), 'though it was watched as rising')
})

t.test('judgeStarting', async t => {
  const runaway = (secondsToLimit: number, reason: Verdict['reason'] = 'time-to-limit'): Verdict => ({
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
  const held = judgeStarting(runaway(2), 500, slow, 2000)
  t.equal(held.state, 'rising', 'a starting process growing like a start-up, with 2 s to go, is held back')
  t.notOk('reason' in held, 'without a reason')
  t.equal(held.usage, 50 * MiB, 'its figures kept')
  t.same(judgeStarting(runaway(2), STARTUP_MS + 1999, slow, 2000), held, 'while the window still reaches into the start-up')
  t.same(judgeStarting(runaway(2), STARTUP_MS + 2000, slow, 2000), runaway(2), 'past start-up and window: unchanged')
  t.same(judgeStarting(runaway(2), 0, fast, 2000), runaway(2), 'growing faster than any start-up: fires at any age')
  t.same(judgeStarting(runaway(IMMINENT_SECONDS), 0, slow, 2000), runaway(IMMINENT_SECONDS), 'an imminent limit: fires at any age')
  t.same(judgeStarting(runaway(2, 'limit-fraction'), 0, slow, 2000), runaway(2, 'limit-fraction'), 'near the limit and rising: fires at any age')
  const steady: Verdict = { state: 'steady', usage: 1, limit: LIMIT, fraction: 0, bytesPerSec: 0, secondsToLimit: Infinity }
  t.same(judgeStarting(steady, 0, slow, 2000), steady, 'no trigger: unchanged')
})
