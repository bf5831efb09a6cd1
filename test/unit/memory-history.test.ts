import t from 'tap'
import { EventHub } from '../../src/hub.js'
import { MemoryHistory, memoryFrame, SAMPLE_MS } from '../../src/page/memory-history.js'

const reading = (pid: number, rssBytes: number) => ({ pid, rssBytes, limitBytes: 1000 })
const pointsOf = (history: MemoryHistory, pid: number) => history.history().processes.find(p => p.pid === pid)?.points

t.test('a frame carries one point per process; the history keeps them, oldest first', async t => {
  const history = new MemoryHistory(10_000)
  t.same(memoryFrame([reading(1, 100), reading(2, 200)], 1_000), {
    type: 'memory',
    processes: [
      { pid: 1, limitBytes: 1000, points: [[1_000, 100]] },
      { pid: 2, limitBytes: 1000, points: [[1_000, 200]] },
    ],
  })
  history.record([reading(1, 100), reading(2, 200)], 1_000)
  history.record([reading(1, 150), reading(2, 250)], 2_000)
  t.same(pointsOf(history, 1), [
    [1_000, 100],
    [2_000, 150],
  ])
  t.same(pointsOf(history, 2), [
    [1_000, 200],
    [2_000, 250],
  ])
})

t.test('points older than the kept time go; a process gone from a sample is forgotten', async t => {
  const history = new MemoryHistory(10_000)
  history.record([reading(1, 100), reading(2, 200)], 1_000)
  history.record([reading(1, 150)], 2_000)
  t.equal(pointsOf(history, 2), undefined)
  history.record([reading(1, 175)], 12_000)
  t.same(
    pointsOf(history, 1),
    [
      [2_000, 150],
      [12_000, 175],
    ],
    'exactly 10 s old is kept',
  )
  history.record([reading(1, 180)], 12_001)
  t.same(pointsOf(history, 1), [
    [12_000, 175],
    [12_001, 180],
  ])
})

t.test('at most keep/SAMPLE_MS + 1 points per process, whatever the sampling rate, in order across the wrap', async t => {
  const keepMs = 5 * SAMPLE_MS
  const history = new MemoryHistory(keepMs)
  for (let i = 0; i < 40; i++) history.record([reading(1, i)], 10_000 + i * 100) // ten a second
  const points = pointsOf(history, 1)!
  t.equal(points.length, keepMs / SAMPLE_MS + 1)
  t.same(
    points.map(([, bytes]) => bytes),
    [34, 35, 36, 37, 38, 39],
  )
  t.ok(
    points.every(([time], i) => i === 0 || time > points[i - 1]![0]),
    'oldest first',
  )
})

t.test('the limit follows the latest sample', async t => {
  const history = new MemoryHistory(10_000)
  history.record([reading(1, 100)], 1_000)
  history.record([{ pid: 1, rssBytes: 100, limitBytes: 2000 }], 2_000)
  t.equal(history.history().processes[0]?.limitBytes, 2000)
})

t.test('as a sink of the hub: it keeps the memory frames published, and ignores the events', async t => {
  const hub = new EventHub()
  const history = new MemoryHistory(10_000)
  hub.subscribeAll(history.sink)
  hub.publish(memoryFrame([reading(1, 100), reading(2, 200)], 1_000))
  hub.emit({ type: 'exit', pid: 2, cmdline: ['python3'], oomKilled: false })
  hub.publish(memoryFrame([reading(1, 150)], 2_000))
  t.same(pointsOf(history, 1), [
    [1_000, 100],
    [2_000, 150],
  ])
  t.equal(pointsOf(history, 2), undefined, 'gone from the latest frame: forgotten')
  history.add({
    type: 'memory',
    processes: [
      {
        pid: 1,
        limitBytes: 1000,
        points: [
          [3_000, 1],
          [4_000, 2],
        ],
      },
    ],
  })
  t.same(
    pointsOf(history, 1),
    [
      [1_000, 100],
      [2_000, 150],
      [3_000, 1],
      [4_000, 2],
    ],
    'a frame of several points keeps them all',
  )
})
