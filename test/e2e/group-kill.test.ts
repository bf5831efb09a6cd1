// A pre-fork master and three workers, one of which runs away, in a memory cgroup with the
// kubelet's setting on cgroup v2, memory.oom.group=1: the kernel kills all four, and oomwatch
// tells it as one story. On cgroup v1 (this machine) there is no group kill: the kernel kills
// the runaway alone and nothing else changes. The v2 half runs in the guest of
// scripts/v2-guest/ (test/e2e/v2-kernel.test.ts), with the real kernel and the real agent.
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { startAgent } from '../helpers/agent.js'
import { connect, type Received } from '../helpers/client.js'
import { makeTestCgroup } from '../helpers/memory-cgroup.js'
import { PYTHON } from '../helpers/python.js'
import type { ExitPayload, GroupKillPayload, IncidentPayload } from '../../src/protocol/events.js'

const PREFORK = fileURLToPath(new URL('../fixtures/python/prefork.py', import.meta.url))
const LIMIT = 160 * 1024 * 1024
const KILL_WAIT_MS = 120_000

t.test('a container killed as a whole: one group-kill naming the runaway, its exits linked to it', async t => {
  const cgroup = makeTestCgroup(LIMIT)
  t.teardown(() => cgroup.remove())
  if (cgroup.version === 2) writeFileSync(join(cgroup.dir, 'memory.oom.group'), '1')
  const label = `group-kill-${process.pid}`
  const agent = await startAgent({ OOMWATCH_MATCH: label, OOMWATCH_FLAMEGRAPH: 'false' })
  t.teardown(() => agent.stop())
  const client = await connect(agent.port)
  t.teardown(() => client.close())
  // ~20 MB/s after 2 s: a runaway the agent catches well before the 160 MiB limit.
  const [bin, ...args] = cgroup.wrap([
    PYTHON,
    PREFORK,
    '--workers',
    '3',
    '--leaker',
    '1',
    '--rate',
    '20000000',
    '--delay',
    '2',
    '--label',
    label,
  ])
  const master = spawn(bin!, args, { stdio: ['ignore', 'pipe', 'ignore'] })
  t.teardown(() => void master.kill('SIGKILL'))
  let out = ''
  master.stdout.on('data', chunk => (out += chunk))
  const pidsSeen = () => [...out.matchAll(/pid=(\d+)/g)].map(m => Number(m[1]))
  for (let i = 0; i < 100 && pidsSeen().length < 4; i++) await new Promise(r => setTimeout(r, 100))
  const pids = pidsSeen()
  t.equal(pids.length, 4, 'a master and three workers')
  const leaker = Number(/worker 1 pid=(\d+)/.exec(out)?.[1])

  const incident = await client.waitFor<IncidentPayload & Received>(
    (e): e is IncidentPayload & Received => e.type === 'incident' && e.pid === leaker,
    KILL_WAIT_MS,
  )
  t.match(incident.culprit?.function, 'fd_table_from_limit', 'the stack arrives before the kill, naming the frame')
  if (cgroup.version === 1) {
    const exit = await client.waitFor<ExitPayload & Received>(
      (e): e is ExitPayload & Received => e.type === 'exit' && e.pid === leaker,
      KILL_WAIT_MS,
    )
    t.equal(exit.oomKilled, true, 'v1: the runaway is OOM-killed')
    await new Promise(r => setTimeout(r, 1500))
    t.notOk(
      client.events.some(e => e.type === 'group-kill'),
      'v1 has no group kill: none is told',
    )
    t.same(
      client.events.filter(e => e.type === 'exit').map(e => (e as ExitPayload).pid),
      [leaker],
      'and the others live on',
    )
    return
  }
  const account = await client.waitFor<GroupKillPayload & Received>(
    (e): e is GroupKillPayload & Received => e.type === 'group-kill',
    KILL_WAIT_MS,
  )
  t.equal(account.runaway.pid, leaker, 'it names the runaway')
  t.equal(account.runaway.incidentId, incident.id, 'and its incident')
  t.equal(account.runaway.culprit?.function, 'fd_table_from_limit', 'and the frame that grew')
  t.same([...account.killed].sort(), [...pids].sort(), 'every process of the container was killed with it')
  for (const pid of pids) {
    const exit = await client.waitFor<ExitPayload & Received>(
      (e): e is ExitPayload & Received => e.type === 'exit' && e.pid === pid,
      20_000,
    )
    t.equal(exit.oomKilled, true, `${pid}: OOM-killed`)
    if (pid === leaker) {
      t.notOk(exit.killedWith, 'the runaway tells its own post-mortem')
      continue
    }
    t.equal(exit.killedWith?.pid, leaker, `${pid}: linked to the runaway`)
    t.equal(exit.killedWith?.incidentId, incident.id)
    t.notMatch(exit.postMortem?.summary, /no stack was caught/, `${pid}: never told "no stack was caught"`)
  }
  const groupKills = Number(/^oom_group_kill (\d+)$/m.exec(readFileSync(join(cgroup.dir, 'memory.events'), 'utf8'))?.[1])
  if (Number.isFinite(groupKills)) t.equal(account.groupKills, groupKills, 'oom_group_kill as memory.events counts it')
})
