import t from 'tap'
import { runOnce } from '../src/capture/pyspy-run.js'
t.test('x', async t => {
const t0 = performance.now()
let pid = 0
const r = await runOnce('/tmp/exp/fake', [], 300, p => { pid = p })
console.log(r, performance.now() - t0, pid)
})
