// A container held at its memory.high (cgroup v2): the kernel throttles the runaway there, far
// from its limit, and no OOM kill comes; oomwatch tells the stall as a `memory-high` incident
// with the stack. cgroup v1 has no memory.high: this runs in the v2 guest (v2-kernel.test.ts).
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { startAgent } from '../helpers/agent.js'
import { connect, type Received } from '../helpers/client.js'
import { makeTestCgroup } from '../helpers/memory-cgroup.js'
import { LEAKY_DAEMON, PYTHON } from '../helpers/python.js'
import type { IncidentPayload } from '../../src/protocol/events.js'

const LIMIT = 512 * 1024 * 1024
const HIGH = 96 * 1024 * 1024

/** cgroup v1 here: its memory controller has a hierarchy line of its own in /proc/self/cgroup. */
const V1 = readFileSync('/proc/self/cgroup', 'utf8')
  .split('\n')
  .some(line => line.split(':')[1]?.split(',').includes('memory'))
const ONLY_V2 = V1 && 'cgroup v1 has no memory.high: this test runs in the v2 guest (test/e2e/v2-kernel.test.ts)'

t.test('held at memory.high: a memory-high incident with the stack, long before any kill', { skip: ONLY_V2 }, async t => {
  const cgroup = makeTestCgroup(LIMIT)
  t.teardown(() => cgroup.remove())
  writeFileSync(join(cgroup.dir, 'memory.high'), String(HIGH))
  const label = `memory-high-${process.pid}`
  const agent = await startAgent({ OOMWATCH_MATCH: label, OOMWATCH_FLAMEGRAPH: 'false' })
  t.teardown(() => agent.stop())
  const client = await connect(agent.port)
  t.teardown(() => client.close())
  // The seed's table, paced at ~20 MB/s: past 96 MiB it is throttled; the 512 MiB limit is far.
  const [bin, ...args] = cgroup.wrap([
    PYTHON,
    LEAKY_DAEMON,
    '--entries',
    '20000000',
    '--rate',
    '20000000',
    '--delay',
    '1',
    '--label',
    label,
  ])
  const daemon = spawn(bin!, args, { stdio: 'ignore' })
  t.teardown(() => void daemon.kill('SIGKILL'))

  const incident = await client.waitFor<IncidentPayload & Received>(
    (e): e is IncidentPayload & Received => e.type === 'incident' && e.pid === daemon.pid,
    180_000,
  )
  t.equal(incident.reason, 'memory-high', 'the reason: held at the mark, not a limit near')
  t.equal(incident.culprit?.function, 'fd_table_from_limit', 'with the frame that grew')
  t.equal(incident.memory.high?.highBytes, HIGH, 'the mark')
  t.ok((incident.memory.high?.stalledMs ?? 0) >= 1000, 'held a second at least')
  t.ok((incident.memory.high?.throttleEvents ?? 0) > 0, 'throttled, as memory.events counts it')
  t.ok(incident.memory.usageBytes < LIMIT * 0.9, 'far from the limit')
  t.match(incident.summary, /is held at memory\.high: .* throttled for/)
  t.equal(cgroup.oomKills(), 0, 'and no OOM kill')
})
