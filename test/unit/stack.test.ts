import t from 'tap'
import { pickCulprit } from '../../src/capture/stack.js'
import type { PyThread } from '../../src/protocol/values.js'

// The culprit frame, chosen from py-spy's threads.
t.test('pickCulprit', async t => {
  const thread = (id: number, fn: string | undefined, flags: Partial<PyThread> = {}): PyThread => ({
    id,
    active: false,
    ownsGil: false,
    frames: fn
      ? [
          { function: fn, file: `/app/${fn}.py`, line: id },
          { function: '<module>', file: '/app/main.py', line: 1 },
        ]
      : [],
    ...flags,
  })
  t.match(
    pickCulprit([thread(1, 'active_one', { active: true, name: 'a' }), thread(2, 'gil_one', { ownsGil: true, name: 'g' })]),
    { function: 'gil_one', file: '/app/gil_one.py', line: 2, threadId: 2, threadName: 'g', why: /holding the GIL/ },
    'the GIL holder first',
  )
  t.match(
    pickCulprit([thread(1, 'idle'), thread(2, 'active_one', { active: true })]),
    { function: 'active_one', threadId: 2, why: /active thread/ },
    'else the active thread',
  )
  t.match(
    pickCulprit([thread(1, undefined, { ownsGil: true, active: true }), thread(2, 'runner', { active: true })]),
    { function: 'runner', threadId: 2 },
    'a GIL holder without Python frames does not count',
  )
  const first = pickCulprit([thread(1, undefined), thread(2, 'sleeper'), thread(3, 'other')])
  t.match(first, { function: 'sleeper', threadId: 2, why: /no thread was running/ }, 'else the first thread with frames')
  t.notOk(first && 'threadName' in first, 'no name, no threadName')
  t.equal(pickCulprit([]), undefined, 'no threads')
  t.equal(pickCulprit([thread(1, undefined, { ownsGil: true })]), undefined, 'no frames anywhere')
})
