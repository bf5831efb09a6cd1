import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { startAgent } from '../helpers/agent.js'
import { runCli } from '../helpers/cli.js'
import { connect, type Received } from '../helpers/client.js'
import { expectedCgroupVersion } from '../helpers/guest.js'
import { makeTestCgroup } from '../helpers/memory-cgroup.js'
import { deathOf, isAlive } from '../helpers/process.js'
import { LEAKY_DAEMON, PYTHON } from '../helpers/python.js'
import type { ActionPayload, ExitPayload } from '../../src/protocol/events.js'

const LIMIT = 256 * 1024 * 1024
const FORKS_LATER = fileURLToPath(new URL('../fixtures/python/forks_later.py', import.meta.url))
type Action = ActionPayload & Received

function state(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
}

function rss(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])
}

function nofile(pid: number): string {
  return /Max open files\s+(\d+)\s+(\d+)/
    .exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))!
    .slice(1, 3)
    .join(' ')
}

t.test('stop the runaway: oomwatch stops it, the kernel kills nothing, its neighbour lives on', async t => {
  const cgroup = makeTestCgroup(LIMIT)
  t.teardown(() => cgroup.remove())
  t.equal(cgroup.version, expectedCgroupVersion(cgroup.version), `the test cgroup is v${cgroup.version}`)
  // Acting agents match only this test's processes, by a label no other process carries.
  const label = `stop-${process.pid}`
  const agent = await startAgent({ OOMWATCH_ON_RUNAWAY: 'stop', OOMWATCH_MATCH: label })
  t.teardown(() => agent.stop())
  const client = await connect(agent.port)
  t.teardown(() => client.close())
  const [healthyBin, ...healthyArgs] = cgroup.wrap([PYTHON, LEAKY_DAEMON, '--entries', '0', '--label', label])
  const healthy = spawn(healthyBin!, healthyArgs, { stdio: 'ignore' })
  t.teardown(() => healthy.kill('SIGKILL'))
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

  const action = (await client.waitFor(e => e.type === 'action' && e.pid === leak.pid)) as Action
  t.match(action, {
    action: 'stop',
    result: 'done',
    detail: /ended by SIG(TERM|KILL)/,
    reason: /still predicted to reach the memory limit/,
  })
  const incident = await client.waitFor(e => e.type === 'incident' && e.pid === leak.pid)
  t.equal(action.incidentId, 'id' in incident ? incident.id : undefined, 'the action follows its incident')
  t.ok(incident.seq < action.seq, 'after the stack went out')
  await deathOf(leak.pid!)
  const exit = (await client.waitFor(e => e.type === 'exit' && e.pid === leak.pid)) as ExitPayload & Received
  t.equal(exit.oomKilled, false, 'the kernel did not kill it')
  t.equal(cgroup.oomKills(), 0, "the cgroup's oom_kill count stayed 0")
  t.ok(isAlive(healthy.pid!), 'the healthy process in the same cgroup still runs')
  const metrics = await (await fetch(`http://127.0.0.1:${agent.port}/metrics`)).text()
  t.match(metrics, /^oomwatch_actions_total\{action="stop",result="done"\} 1$/m, 'and the metrics count the action')
})

for (const fallback of ['stop', 'release'] as const) {
  t.test(`freeze the runaway, then ${fallback} it after the longest freeze`, async t => {
    const cgroup = makeTestCgroup(LIMIT)
    t.teardown(() => cgroup.remove())
    const label = `freeze-${fallback}-${process.pid}`
    const agent = await startAgent({
      OOMWATCH_ON_RUNAWAY: 'freeze',
      OOMWATCH_FREEZE_MAX_MS: '2500',
      OOMWATCH_FREEZE_FALLBACK: fallback,
      OOMWATCH_MATCH: label,
    })
    t.teardown(() => agent.stop())
    const client = await connect(agent.port)
    t.teardown(() => client.close())
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
    const frozen = (await client.waitFor(e => e.type === 'action' && e.pid === leak.pid && e.action === 'freeze')) as Action
    t.equal(frozen.result, 'done', JSON.stringify(frozen))
    t.equal(state(leak.pid!), 'T', `the process is stopped (${JSON.stringify(frozen)})`)
    const before = rss(leak.pid!)
    await sleep(1000)
    // Running, it would grow ~40 MB in that second; VmRSS itself lags the page faults by a few
    // hundred kB (the kernel batches its per-thread RSS counts), seen once in the v2 guest.
    const grew = rss(leak.pid!) - before
    t.ok(grew < 1024, `its memory no longer grows (${grew} kB in 1 s)`)
    const after = (await client.waitFor(e => e.type === 'action' && e.pid === leak.pid && e.action !== 'freeze')) as Action
    t.match(after, { action: fallback, result: 'done', reason: /frozen for 2500 ms/ })
    if (fallback === 'stop') {
      await deathOf(leak.pid!)
      t.pass('and then it is gone')
    } else {
      t.not(state(leak.pid!), 'T', 'and then it runs again')
    }
    t.equal(cgroup.oomKills(), 0, 'the kernel killed nothing while it was frozen')
  })
}

t.test('clamp NOFILE: lowered at first sight, and a child forked afterwards inherits it', async t => {
  // The match names this test's own files, so that no other agent and no other test's process mix in.
  const out = join(t.testdir(), 'child-nofile')
  const agent = await startAgent({ OOMWATCH_CLAMP_NOFILE: '4096', OOMWATCH_MATCH: out })
  t.teardown(() => agent.stop())
  const client = await connect(agent.port)
  t.teardown(() => client.close())
  // Started above the ceiling (this machine's hard limit is 20000), as the agent's own user:
  // lowering a same-user process's limits needs no capability.
  const target = spawn(PYTHON, [FORKS_LATER, '2', out], { stdio: 'ignore' })
  t.teardown(() => target.kill('SIGKILL'))
  const action = (await client.waitFor(e => e.type === 'action' && e.pid === target.pid)) as Action
  t.match(action, { action: 'clamp-rlimit', result: 'done', rlimit: { name: 'NOFILE', to: { soft: 4096, hard: 4096 } } })
  t.equal(nofile(target.pid!), '4096 4096', 'its limits are at the ceiling')
  t.comment(`clamped ${action.afterStartMs} ms after the process started`)
  while (!readable(out)) await sleep(50)
  t.equal(readFileSync(out, 'utf8'), '4096 4096', 'the child forked afterwards inherited the ceiling')
})

t.test('clamp without CAP_SYS_RESOURCE: an action event says it was refused, and why', async t => {
  const out = join(t.testdir(), 'child-nofile')
  const run = runCli(
    [],
    { OOMWATCH_PORT: '0', OOMWATCH_CLAMP_NOFILE: '4096', OOMWATCH_MATCH: out },
    { prefix: ['setpriv', '--bounding-set', '-sys_resource', '--inh-caps', '-sys_resource', '--pdeathsig', 'SIGKILL', '--'] },
  )
  t.teardown(() => run.child.kill('SIGKILL'))
  const { port } = (await run.line(line => typeof line.port === 'number')) as { port: number }
  const client = await connect(port)
  t.teardown(() => client.close())
  const target = spawn('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', PYTHON, FORKS_LATER, '3600', out], {
    stdio: 'ignore',
  })
  t.teardown(() => target.kill('SIGKILL'))
  const action = (await client.waitFor(e => e.type === 'action' && e.pid === target.pid)) as Action
  t.match(action, { action: 'clamp-rlimit', result: 'refused', detail: /Operation not permitted/, remedy: /SYS_RESOURCE/ })
  t.equal(nofile(target.pid!), '20000 20000', 'its limits are untouched')
})

function readable(path: string): boolean {
  try {
    return readFileSync(path, 'utf8').length > 0
  } catch {
    return false
  }
}
