// A container held at its memory.high: the pure rule, then the step on the fake tree (the
// real kernel's throttling is test/e2e/memory-high.test.ts's, in the v2 guest).
import t from 'tap'
import { HIGH_STALL_MS, HighStall, nearHigh, type HighReading } from '../../src/detect/high-stall.js'
import { FakeBirths, FakeTree, MiB, only, run, stepOver } from '../helpers/fake-sensors.js'

const HIGH = 192 * MiB

/** Readings every 100 ms from t=0: at the mark, the throttling count rising by `eventsPerRead`, PSI by `stallPerRead` µs. */
function heldAt(ms: number, eventsPerRead: number, stallPerRead?: number): HighReading[] {
  const readings: HighReading[] = []
  for (let t = 0, i = 0; t <= ms; t += 100, i++) {
    readings.push({
      t,
      usage: HIGH + 64 * 1024,
      high: HIGH,
      events: i * eventsPerRead,
      ...(stallPerRead !== undefined && { stallUs: i * stallPerRead }),
    })
  }
  return readings
}

const feed = (readings: HighReading[]) => {
  const stall = new HighStall()
  return readings.map(r => stall.observe(r))
}

t.test('near the mark: within 1% of it (at least 1 MiB), or past it', async t => {
  t.ok(nearHigh(HIGH, HIGH))
  t.ok(nearHigh(HIGH - MiB, HIGH), '1 MiB under a 192 MiB mark (1% is 1.9 MiB)')
  t.notOk(nearHigh(HIGH - 2 * MiB, HIGH))
  t.ok(nearHigh(HIGH + 10 * MiB, HIGH), 'past it')
})

t.test('held at the mark, throttled without a pause, stalled half the time, for a second: a stall, with its figures', async t => {
  const results = feed(heldAt(1500, 3, 50_000))
  t.equal(results.slice(0, HIGH_STALL_MS / 100).filter(Boolean).length, 0, 'nothing within the first second: reclaim doing its job')
  const last = results.at(-1)
  t.same(
    last,
    { highBytes: HIGH, stalledMs: 1500, throttleEvents: 45, stallFraction: 0.5 },
    'then the mark, how long, how many events, the stall share',
  )
})

t.test('without PSI there is no telling a stall from a busy page cache: nothing', async t => {
  t.equal(feed(heldAt(3000, 3)).filter(Boolean).length, 0)
})

t.test('no new throttling for half a second: no longer held', async t => {
  const readings = heldAt(2000, 1, 50_000).map(r => (r.t >= 1000 ? { ...r, events: 10 } : r))
  const results = feed(readings)
  t.ok(results[readings.findIndex(r => r.t === 1400)], 'the count stopped at 1 s: still held within half a second')
  t.equal(results[readings.findIndex(r => r.t === 1600)], undefined, 'released after it')
  t.equal(results.at(-1), undefined, 'released')
})

t.test("the stall share tells a leak held at the mark from a page cache filling to it (BENCHMARKS.md's figures)", async t => {
  t.equal(feed(heldAt(3000, 15, 15_000)).filter(Boolean).length, 0, 'stalled 15% of the time, 150 events/s: a busy reader, fine')
  const stalled = feed(heldAt(2000, 20, 42_000)).at(-1)
  t.equal(stalled?.stallFraction, 0.42, 'stalled 42% of the time: a leak held there')
  // A hold that starts light and grows heavy: the share is of the last second, not diluted by the start.
  const readings = heldAt(6000, 20).map((r, i) => ({ ...r, stallUs: i <= 40 ? i * 5_000 : 40 * 5_000 + (i - 40) * 60_000 }))
  const results = feed(readings)
  t.equal(results[readings.findIndex(r => r.t === 4000)], undefined, 'light for 4 s: not yet')
  t.equal(results.at(-1)?.stallFraction, 0.6, 'heavy since: told, at the share of the last second')
})

t.test('below the mark: nothing, and the count starts over', async t => {
  const readings = heldAt(3000, 2, 50_000).map(r => (r.t === 1500 ? { ...r, usage: HIGH - 50 * MiB } : r))
  const results = feed(readings)
  t.equal(
    results.find((_, i) => readings[i]!.t === 2400),
    undefined,
    'within a second of the dip: not yet',
  )
  t.ok(results.at(-1), 'a second after it: held again')
})

t.test('the step: a container throttled at its mark is a memory-high runaway, its grower captured', async t => {
  const tree = new FakeTree()
  const births = new FakeBirths()
  const step = stepOver(tree, births)
  const cgroup = tree.cgroup('h', 150 * MiB, 1024 * MiB)
  cgroup.high = HIGH
  cgroup.highEvents = 0
  cgroup.stallUs = 0
  tree.spawn(30, { cgroup: 'h', ageMs: 60_000, rssBytes: 140 * MiB })
  tree.spawn(31, { cgroup: 'h', ageMs: 60_000, args: ['/app/idle.py'] })
  births.pending = true
  step.tick(tree.now)
  // It climbs to the mark, then creeps past it, throttled: 64 KiB a tick, PSI 50%.
  const { decisions } = run(step, tree, 20, 4000, () => {
    const atMark = cgroup.usage >= HIGH
    cgroup.usage += atMark ? 64 * 1024 : 2 * MiB
    tree.process(30).rssBytes += atMark ? 64 * 1024 : 2 * MiB
    if (atMark) {
      cgroup.highEvents! += 1
      cgroup.stallUs! += 10_000
    }
  })
  const captures = only(decisions, 'capture')
  t.equal(captures.length, 1, 'one capture')
  const capture = captures[0]!
  t.equal(capture.verdict.reason, 'memory-high')
  t.equal(capture.watched.info.pid, 30, 'of the member that grew')
  t.equal(capture.verdict.high?.highBytes, HIGH)
  t.ok((capture.verdict.high?.stalledMs ?? 0) >= HIGH_STALL_MS, 'held a second at least')
  t.equal(capture.verdict.high?.stallFraction, 0.5)
  t.ok(capture.verdict.usage < capture.verdict.limit * 0.9, 'far from its limit: no limit trigger would have fired')
})
