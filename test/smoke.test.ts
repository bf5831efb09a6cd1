import t from 'tap'
import type { Rlimit } from '../src/types.js'
t.test('ts works', async t => {
  const r: Rlimit = { soft: 1, hard: 'unlimited', units: 'files' }
  t.equal(r.hard, 'unlimited')
})
