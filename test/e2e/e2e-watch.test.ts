import { spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { startAgent } from '../helpers/agent.js'
import { connect, type Received } from '../helpers/client.js'
import { makeTestCgroup } from '../helpers/memory-cgroup.js'
import { LEAKY_DAEMON, PYTHON } from '../helpers/python.js'
import type { ExitPayload, ProcessPayload } from '../../src/protocol/events.js'

const LIMIT = 256 * 1024 * 1024

t.test('an idle Python process yields process, and no incident', async t => {
  const cgroup = makeTestCgroup(LIMIT)
  t.teardown(() => cgroup.remove())
  const agent = await startAgent()
  t.teardown(() => agent.stop())
  const client = await connect(agent.port)
  t.teardown(() => client.close())
  const [bin, ...args] = cgroup.wrap([PYTHON, LEAKY_DAEMON, '--entries', '0'])
  const child = spawn(bin!, args, { stdio: 'ignore' })
  const pid = child.pid!
  const seen = (await client.waitFor(e => e.type === 'process' && e.pid === pid)) as ProcessPayload & Received
  t.same(seen.cmdline.slice(-3), [LEAKY_DAEMON, '--entries', '0'])
  t.equal(seen.python.via, 'exe')
  t.ok(seen.rlimits.NOFILE, 'the full rlimit table, NOFILE included')
  t.ok(seen.rlimits.AS && seen.rlimits.STACK, 'every row, not only NOFILE')
  t.equal(seen.memory.limit.bytes, LIMIT, "the container's limit")
  t.equal(seen.memory.limit.source, `cgroup-v${cgroup.version}`)
  t.equal(seen.memory.limit.via, 'proc-root')
  t.match(seen.memory.limit.path, cgroup.dir, 'the limit names the file it came from')
  await sleep(3000) // idle for a while: nothing to report
  t.notOk(
    client.events.some(e => e.type === 'incident' && e.pid === pid),
    'no incident for an idle process',
  )
  child.kill('SIGTERM')
  const exit = (await client.waitFor(e => e.type === 'exit' && e.pid === pid)) as ExitPayload & Received
  t.equal(exit.oomKilled, false, 'an ordinary exit is not an OOM kill')
  t.notOk(exit.lastIncidentId)
})

t.test('processes that are not Python are never watched', async t => {
  const agent = await startAgent()
  t.teardown(() => agent.stop())
  const client = await connect(agent.port)
  t.teardown(() => client.close())
  const notPython = [
    spawn('sleep', ['30'], { stdio: 'ignore' }),
    // "python" in the command line does not make a shell Python.
    spawn('sh', ['-c', 'sleep 30; echo python3 leaky_daemon.py'], { stdio: 'ignore' }),
  ]
  const python = spawn(PYTHON, [LEAKY_DAEMON, '--entries', '0'], { stdio: 'ignore' })
  t.teardown(() => [...notPython, python].forEach(child => child.kill('SIGKILL')))
  await client.waitFor(e => e.type === 'process' && e.pid === python.pid)
  await sleep(1500) // three more scans
  for (const child of notPython) {
    t.notOk(
      client.events.some(e => 'pid' in e && e.pid === child.pid),
      `no event for ${child.spawnargs.join(' ')}`,
    )
  }
  const late = await connect(agent.port)
  t.teardown(() => late.close())
  const hello = await late.waitFor(e => e.type === 'hello')
  const watched = hello.watching.map(p => p.pid)
  t.ok(watched.includes(python.pid!), 'hello lists the Python process')
  t.notOk(
    notPython.some(child => watched.includes(child.pid!)),
    'and none of the others',
  )
  t.notOk(watched.includes(process.pid), 'nor the agent itself')
  t.equal(hello.agent.pid, process.pid, "hello reports the agent's own pid")
  t.ok((hello.agent.rssBytes ?? 0) > 10 << 20, 'and its own RSS, as pidusage reads it')
})

t.test('without a cgroup limit, OOMWATCH_MEMORY_LIMIT is the limit, and says so', async t => {
  const agent = await startAgent({ OOMWATCH_MEMORY_LIMIT: '512Mi' })
  t.teardown(() => agent.stop())
  const client = await connect(agent.port)
  t.teardown(() => client.close())
  const python = spawn(PYTHON, [LEAKY_DAEMON, '--entries', '0'], { stdio: 'ignore' })
  t.teardown(() => python.kill('SIGKILL'))
  const seen = (await client.waitFor(e => e.type === 'process' && e.pid === python.pid)) as ProcessPayload & Received
  t.same(seen.memory.limit, { bytes: 512 * 1024 * 1024, source: 'env', path: 'OOMWATCH_MEMORY_LIMIT' })
})
