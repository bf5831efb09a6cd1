import { spawn } from 'node:child_process'
import t from 'tap'
import { startAgent } from '../helpers/agent.js'
import { connect, type Received } from '../helpers/client.js'
import { makeTestCgroup } from '../helpers/memory-cgroup.js'
import { LEAKY_DAEMON, PYTHON } from '../helpers/python.js'
import type { OomKillPayload } from '../../src/protocol/events.js'

const LIMIT = 128 * 1024 * 1024

t.test('the kernel kills a process oomwatch does not watch, in a watched container: an oom-kill event, never silence', async t => {
  const cgroup = makeTestCgroup(LIMIT)
  t.teardown(() => cgroup.remove())
  // Only this test's labelled process is watched: the victim below is one the agent does not watch.
  const label = `unwatched-kill-${process.pid}`
  const agent = await startAgent({ OOMWATCH_MATCH: label })
  t.teardown(() => agent.stop())
  const client = await connect(agent.port)
  t.teardown(() => client.close())
  const [healthyBin, ...healthyArgs] = cgroup.wrap([PYTHON, LEAKY_DAEMON, '--entries', '0', '--label', label])
  const healthy = spawn(healthyBin!, healthyArgs, { stdio: 'ignore' })
  t.teardown(() => healthy.kill('SIGKILL'))
  await client.waitFor(e => e.type === 'process' && e.pid === healthy.pid)

  // 300 MiB of bytes, written, in 128 MiB: the kernel's OOM killer takes it within a second.
  const [bin, ...args] = cgroup.wrap([PYTHON, '-c', "x = b'x' * (300 << 20)"])
  const victim = spawn(bin!, args, { stdio: 'ignore' })
  const signal = await new Promise<NodeJS.Signals | null>(resolve => victim.once('exit', (_code, killedBy) => resolve(killedBy)))
  t.equal(signal, 'SIGKILL', 'the victim was killed')
  t.equal(cgroup.oomKills(), 1, 'by the OOM killer')

  const kill = await client.waitFor<OomKillPayload & Received>((e): e is OomKillPayload & Received => e.type === 'oom-kill')
  t.match(kill, {
    kills: 1,
    cgroup: { version: cgroup.version, dir: cgroup.dir },
    limit: { bytes: LIMIT },
    survivors: [healthy.pid],
    summary: /^the kernel OOM-killed a process oomwatch was not watching, in the container /,
  })
  t.notOk(
    client.events.some(e => e.type === 'exit'),
    'and no watched process is said to have died',
  )
  const metrics = await (await fetch(`http://127.0.0.1:${agent.port}/metrics`)).text()
  t.match(metrics, /^oomwatch_oom_kills_total\{watched="false"\} 1$/m, 'the metrics count it as a kill of an unwatched process')
})
