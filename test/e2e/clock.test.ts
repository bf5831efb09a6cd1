import { spawn } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { runCli } from '../helpers/cli.js'
import { connect, type Received } from '../helpers/client.js'
import { makeTestCgroup } from '../helpers/memory-cgroup.js'
import { LEAKY_DAEMON, PYTHON } from '../helpers/python.js'
import type { IncidentPayload, ProcessPayload } from '../../src/protocol/events.js'

// The wall clock jumps back a day in the middle of a leak (libfaketime, driven through a
// file, leaves the monotonic clock alone, as NTP or an operator would): growth rates and
// the time to the limit come from the monotonic clock, so the capture is unaffected; only
// the events' `ts` show the jump.
const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1'

t.test('a wall-clock jump in the middle of a leak changes nothing but ts', async t => {
  if (!existsSync(LIBFAKETIME)) throw new Error(`${LIBFAKETIME} is missing: apt-get install libfaketime (.ci/run does)`)
  const clock = join(t.testdir(), 'faketime')
  writeFileSync(clock, '+0')
  const label = `clock-${process.pid}`
  const run = runCli([], {
    OOMWATCH_PORT: '0',
    OOMWATCH_MATCH: label,
    LD_PRELOAD: LIBFAKETIME,
    FAKETIME_TIMESTAMP_FILE: clock,
    FAKETIME_NO_CACHE: '1',
    FAKETIME_DONT_FAKE_MONOTONIC: '1',
  })
  t.teardown(() => run.child.kill('SIGKILL'))
  const { port } = (await run.line(line => typeof line.port === 'number')) as { port: number }
  const client = await connect(port)
  t.teardown(() => client.close())
  const cgroup = makeTestCgroup(256 * 1024 * 1024)
  t.teardown(() => cgroup.remove())
  const [bin, ...args] = cgroup.wrap([
    PYTHON,
    LEAKY_DAEMON,
    '--entries',
    '10000000',
    '--rate',
    '40000000',
    '--delay',
    '1',
    '--label',
    label,
  ])
  const leak = spawn(bin!, args, { stdio: 'ignore' })
  t.teardown(() => leak.kill('SIGKILL'))
  const seen = (await client.waitFor(e => e.type === 'process' && e.pid === leak.pid)) as ProcessPayload & Received
  writeFileSync(clock, '-1d') // while the daemon is still in its first second, before the leak
  const incident = (await client.waitFor(e => e.type === 'incident' && e.pid === leak.pid)) as IncidentPayload & Received
  t.equal(incident.culprit?.function, 'fd_table_from_limit', 'the stack was caught')
  const rate = incident.memory.growthBytesPerSec / 1e6
  t.ok(rate > 20 && rate < 80, `the growth rate is the leak's ~40 MB/s (${rate.toFixed(1)})`)
  t.ok(
    incident.memory.secondsToLimit !== null && incident.memory.secondsToLimit > 0 && incident.memory.secondsToLimit <= 3,
    'the time to the limit is sane',
  )
  t.ok(incident.seq > seen.seq, 'seq still increases')
  const jump = Date.parse(seen.ts) - Date.parse(incident.ts)
  t.ok(jump > 23 * 3600_000, `and ts went back a day (${Math.round(jump / 3600_000)} h)`)
})
