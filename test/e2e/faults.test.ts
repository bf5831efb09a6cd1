import { spawn } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { startAgent } from '../helpers/agent.js'
import { connect, type Received } from '../helpers/client.js'
import { makeFakeProc } from '../helpers/fake-proc.js'
import { fakePyspy } from '../helpers/fake-pyspy.js'
import { makeTestCgroup } from '../helpers/memory-cgroup.js'
import { isAlive } from '../helpers/process.js'
import { LEAKY_DAEMON, PYTHON } from '../helpers/python.js'
import type { ExitPayload, IncidentPayload, ProcessPayload } from '../../src/protocol/events.js'

const REAL_PYSPY = new URL('../../.venv/bin/py-spy', import.meta.url).pathname

// py-spy's failures, injected with stand-ins for py-spy, against a real leak and the
// real OOM killer: the incident always goes out, names the failure, and watching goes on.
const pyspyFaults = [
  { name: 'hangs', script: 'exec sleep 3601', code: 'PYSPY_TIMEOUT' },
  { name: 'prints garbage', script: 'echo "this is not json"; exit 0', code: 'PYSPY_BAD_OUTPUT' },
  { name: 'crashes', script: 'echo "Error: lost the remote process" >&2; kill -SEGV $$', code: 'PYSPY_FAILED' },
  // The target dies while py-spy runs: the real py-spy then meets a process that is gone.
  { name: 'meets a target that exits mid-capture', script: `kill -9 "$4"; sleep 0.2; exec ${REAL_PYSPY} "$@"`, code: 'TARGET_EXITED' },
]

for (const fault of pyspyFaults) {
  t.test(`py-spy ${fault.name}: the incident carries ${fault.code}, and watching goes on`, async t => {
    const cgroup = makeTestCgroup(256 * 1024 * 1024)
    t.teardown(() => cgroup.remove())
    const pyspy = fakePyspy(t.testdir(), 'py-spy', fault.script)
    const agent = await startAgent({ OOMWATCH_PYSPY: pyspy, OOMWATCH_PYSPY_TIMEOUT_MS: '300', OOMWATCH_MATCH: 'leaky_daemon' })
    t.teardown(() => agent.stop())
    const client = await connect(agent.port)
    t.teardown(() => client.close())
    const [bin, ...args] = cgroup.wrap([PYTHON, LEAKY_DAEMON, '--entries', '10000000', '--rate', '0', '--delay', '0.5'])
    const leak = spawn(bin!, args, { stdio: 'ignore' })
    const incident = (await client.waitFor(e => e.type === 'incident' && e.pid === leak.pid)) as IncidentPayload & Received
    t.equal(incident.capture.error?.code, fault.code)
    t.ok(incident.capture.error?.remedy, 'with a remedy')
    t.same(incident.threads, [], 'no stack, but the incident went out')
    t.ok(incident.rlimits.NOFILE, 'with the rlimits')
    t.ok(incident.memory.limitBytes > 0, 'and the memory figures')
    if (fault.code === 'PYSPY_TIMEOUT') {
      const left = readdirSync('/proc').filter(pid => /^\d+$/.test(pid) && readCmdline(pid) === 'sleep 3601')
      t.same(left, [], 'the hung py-spy was killed')
    }
    const idle = spawn(PYTHON, [LEAKY_DAEMON, '--entries', '0'], { stdio: 'ignore' })
    t.teardown(() => idle.kill('SIGKILL'))
    await client.waitFor(e => e.type === 'process' && e.pid === idle.pid)
    t.pass('a process started afterwards is still watched')
  })
}

function readCmdline(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ')
  } catch {
    return ''
  }
}

t.test('on a cgroup v2 fixture tree, the limit comes through /proc/<pid>/root', async t => {
  const proc = makeFakeProc(t.testdir())
  const agent = await startAgent({ OOMWATCH_PROC: proc.dir })
  t.teardown(() => agent.stop())
  const client = await connect(agent.port, { query: 'since=0' }) // the first scan ran before we connected
  t.teardown(() => client.close())
  const seen = (await client.waitFor(e => e.type === 'process' && e.pid === 4242)) as ProcessPayload & Received
  t.same(seen.memory.limit, { bytes: 268435456, source: 'cgroup-v2', path: join(proc.cgroupDir(4242), 'memory.max'), via: 'proc-root' })
  t.equal(seen.memory.cgroup?.usageBytes, 10 << 20)
  t.equal(seen.rlimits.NOFILE?.hard, 1073741816)
  const risk = await client.waitFor(e => e.type === 'risk' && e.pid === 4242)
  t.match(risk, { rule: 'nofile-hard-huge', value: 1073741816 })
  const uwsgi = (await client.waitFor(e => e.type === 'process' && e.pid === 4343)) as ProcessPayload & Received
  t.equal(uwsgi.python.via, 'libpython', 'an embedded interpreter is found by its libpython')
})

t.test('a reused pid is a new process: exit, then process, told apart by start time', async t => {
  const proc = makeFakeProc(t.testdir())
  const agent = await startAgent({ OOMWATCH_PROC: proc.dir })
  t.teardown(() => agent.stop())
  const client = await connect(agent.port, { query: 'since=0' }) // the first scan ran before we connected
  t.teardown(() => client.close())
  const first = (await client.waitFor(e => e.type === 'process' && e.pid === 4242)) as ProcessPayload & Received
  const statPath = join(proc.dir, '4242', 'stat')
  writeFileSync(statPath, readFileSync(statPath, 'utf8').replace(` ${first.startTime} `, ` ${first.startTime + 500} `))
  const exit = (await client.waitFor(e => e.type === 'exit' && e.pid === 4242)) as ExitPayload & Received
  t.equal(exit.oomKilled, false)
  const second = (await client.waitFor(e => e.type === 'process' && e.pid === 4242 && e.seq > exit.seq)) as ProcessPayload & Received
  t.equal(second.startTime, first.startTime + 500)
})

t.test("an OOM kill is told by the cgroup's oom_kill count, read after the process is gone", async t => {
  const proc = makeFakeProc(t.testdir())
  const agent = await startAgent({ OOMWATCH_PROC: proc.dir })
  t.teardown(() => agent.stop())
  const client = await connect(agent.port, { query: 'since=0' }) // the first scan ran before we connected
  t.teardown(() => client.close())
  await client.waitFor(e => e.type === 'process' && e.pid === 4242)
  const events = join(proc.cgroupDir(4242), 'memory.events')
  writeFileSync(events, readFileSync(events, 'utf8').replace('oom_kill 0', 'oom_kill 1'))
  rmSync(join(proc.dir, '4242'), { recursive: true })
  const exit = (await client.waitFor(e => e.type === 'exit' && e.pid === 4242)) as ExitPayload & Received
  t.equal(exit.oomKilled, true)
})

t.test('unreadable /proc and cgroup files are reported once, and watching goes on', async t => {
  const proc = makeFakeProc(t.testdir())
  // A directory where a file should be: reading it fails with EISDIR, not ENOENT.
  rmSync(join(proc.dir, '4343', 'limits'))
  mkdirSync(join(proc.dir, '4343', 'limits'))
  rmSync(join(proc.cgroupDir(4242), 'memory.current'))
  const agent = await startAgent({ OOMWATCH_PROC: proc.dir })
  t.teardown(() => agent.stop())
  const client = await connect(agent.port, { query: 'since=0' }) // the first scan ran before we connected
  t.teardown(() => client.close())
  const seen = (await client.waitFor(e => e.type === 'process' && e.pid === 4242)) as ProcessPayload & Received
  t.equal(seen.memory.limit.source, 'cgroup-v2', 'the limit is still read')
  await sleep(1500) // three more scans, fifteen ticks
  const about = (needle: string) => agent.logs.filter(line => JSON.stringify(line).includes(needle))
  t.equal(about('4343/limits').length, 1, 'the unreadable limits file is reported once')
  t.match(about('4343/limits')[0], { level: 'warn', msg: /watching goes on/ })
  t.equal(about('memory.current').length, 1, 'the missing cgroup file is reported once')
  t.notOk(
    client.events.some(e => e.type === 'process' && e.pid === 4343),
    'the unreadable process is not watched',
  )
  writeFileSync(join(proc.cgroupDir(4242), 'memory.current'), '1\n')
  t.ok(isAlive(process.pid), 'the agent lives on')
})
