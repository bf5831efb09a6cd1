import t from 'tap'
import { formatMs } from '../../src/watch/post-mortem.js'

t.test('formatMs: a lifetime as a person reads it', async t => {
  t.equal(formatMs(180.4), '180 ms')
  t.equal(formatMs(-3), '0 ms', 'a clock read before the start: 0, never negative')
  t.equal(formatMs(2449), '2.4 s')
  t.equal(formatMs(180_000), '3 min')
  t.equal(formatMs(5_400_000), '1.5 h')
})
