import { getEventListeners } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { runPyspy } from '../../src/capture/pyspy-run.js'
import { childEnvironment } from '../../src/exec/child-env.js'
import { runChild } from '../../src/exec/run-child.js'
import { deathOf, isAlive } from '../helpers/process.js'
import { killFromPidfile, script } from '../helpers/script.js'

// Real children (sh, sleep, setsid): the runner is I/O, so nothing here is mocked.

t.test('a normal run: output, exit code, no timeout', async t => {
  const result = await runChild({ bin: 'sh', args: ['-c', 'echo out; echo err >&2; exit 3'], timeoutMs: 30_000 })
  t.match(result, { stdout: 'out\n', stderr: 'err\n', exitCode: 3, exitSignal: null, timedOut: false, aborted: false })
  t.notOk('spawnError' in result)
  t.ok(result.durationMs > 0)
})

t.test('env is added to the agent’s own environment', async t => {
  const result = await runChild({ bin: 'sh', args: ['-c', 'echo "$EXTRA:${PATH:+path}"'], timeoutMs: 30_000, env: { EXTRA: 'x' } })
  t.equal(result.stdout, 'x:path\n')
})

t.test("children never get the agent's OOMWATCH_* variables: the token stays in the agent", async t => {
  const secret = 'child-must-not-see-0123456789'
  const saved = { ...process.env }
  t.teardown(() => {
    for (const name of ['OOMWATCH_TOKEN', 'OOMWATCH_TOKEN_FILE', 'OOMWATCH_PORT']) delete process.env[name]
    Object.assign(process.env, saved)
  })
  Object.assign(process.env, { OOMWATCH_TOKEN: secret, OOMWATCH_TOKEN_FILE: '/run/secrets/oomwatch/token', OOMWATCH_PORT: '9642' })
  const printsEnv = script(t.testdir(), 'py-spy', 'env')
  const outcomes = {
    runChild: await runChild({ bin: 'env', timeoutMs: 30_000 }),
    'runChild with env': await runChild({ bin: 'env', timeoutMs: 30_000, env: { EXTRA: 'x' } }),
    'py-spy': await runPyspy({ bin: printsEnv, args: ['dump', '--pid', '1'], timeoutMs: 30_000 }),
  }
  for (const [what, { stdout }] of Object.entries(outcomes)) {
    t.notMatch(stdout, secret, `${what}: not the token`)
    t.notMatch(stdout, /^OOMWATCH_/m, `${what}: no OOMWATCH_* variable at all`)
    t.match(stdout, /^PATH=/m, `${what}: the rest of the environment is there`)
  }
  t.match(outcomes['runChild with env'].stdout, /^EXTRA=x$/m)
  t.match(outcomes['py-spy'].stdout, /^RUST_BACKTRACE=0$/m)
  t.same(childEnvironment({ B: '2' }, { OOMWATCH_TOKEN: secret, A: '1' }), { A: '1', B: '2' })
  t.equal(process.env.OOMWATCH_TOKEN, secret, "the agent's own environment is untouched")
})

t.test('a binary that cannot run: spawnError, nothing reported as spawned', async t => {
  const spawned: number[] = []
  const result = await runChild({ bin: join(t.testdir(), 'nowhere'), timeoutMs: 30_000, onSpawn: pid => spawned.push(pid) })
  t.match(result, { spawnError: { code: 'ENOENT' }, timedOut: false, aborted: false, stdout: '' })
  t.strictSame(spawned, [])
})

t.test('a child that traps SIGTERM is killed with SIGKILL after the grace', async t => {
  const bin = script(t.testdir(), 'stubborn', `trap 'echo TERM ignored' TERM\necho up\nwhile :; do sleep 0.05; done`)
  let pid = 0
  const started = performance.now()
  const result = await runChild({ bin, timeoutMs: 300, killGraceMs: 400, onSpawn: p => (pid = p) })
  t.equal(result.timedOut, true)
  t.match(result.stdout, /^up\nTERM ignored\n/, 'SIGTERM came first, and was ignored')
  t.match(result, { exitCode: null, exitSignal: 'SIGKILL', aborted: false }, 'ended by SIGKILL')
  t.ok(performance.now() - started >= 700, 'not before the timeout and the grace')
  t.notOk(isAlive(pid))
})

t.test('a child that ends on SIGTERM: no SIGKILL', async t => {
  const result = await runChild({ bin: 'sleep', args: ['1000'], timeoutMs: 100, killGraceMs: 60_000 })
  t.match(result, { timedOut: true, exitCode: null, exitSignal: 'SIGTERM' })
  t.ok(result.durationMs < 30_000, 'the grace was cut short by its end')
})

t.test('a descendant that left the process group does not hold the result', async t => {
  const dir = t.testdir()
  const pidfile = join(dir, 'escaped.pid')
  killFromPidfile(t, pidfile)
  const bin = script(dir, 'escaper', `setsid sleep 1000 &\necho $! > '${pidfile}'\nexec sleep 1000`)
  const result = await runChild({ bin, timeoutMs: 300 })
  t.equal(result.timedOut, true)
  t.ok(isAlive(Number(readFileSync(pidfile, 'utf8'))), 'the escaped one still runs (killed at teardown)')
})

t.test('an abort (the agent stopping) kills it and what it started, at once', async t => {
  const dir = t.testdir()
  const pidfile = join(dir, 'sleep.pid')
  killFromPidfile(t, pidfile)
  const bin = script(dir, 'slow', `sleep 1000 &\necho $! > '${pidfile}'\necho started\nwait`)
  const controller = new AbortController()
  const started = runChild({ bin, timeoutMs: 600_000, signal: controller.signal })
  // abort once the script has started its child
  while (!existsSync(pidfile) || readFileSync(pidfile, 'utf8') === '') await sleep(5)
  controller.abort()
  const result = await started
  t.match(result, { timedOut: false, aborted: true, exitCode: null, exitSignal: 'SIGKILL' })
  // SIGKILL went to the whole group; the grandchild dies as soon as the kernel gets to it.
  await deathOf(Number(readFileSync(pidfile, 'utf8')))
  t.pass('its child too')
})

t.test('an already aborted signal: killed as soon as spawned', async t => {
  let pid = 0
  const bin = script(t.testdir(), 'slow', 'exec sleep 1000')
  const result = await runChild({ bin, timeoutMs: 600_000, onSpawn: p => (pid = p), signal: AbortSignal.abort() })
  t.match(result, { timedOut: false, aborted: true, exitCode: null })
  t.notOk(isAlive(pid))
})

t.test('the abort listener is removed once it ended, whichever way', async t => {
  const controller = new AbortController()
  const running = runChild({ bin: 'sleep', args: ['1000'], timeoutMs: 100, signal: controller.signal })
  t.equal(getEventListeners(controller.signal, 'abort').length, 1, 'listening while it runs')
  await running
  t.equal(getEventListeners(controller.signal, 'abort').length, 0, 'after a timeout')
  await runChild({ bin: 'true', timeoutMs: 30_000, signal: controller.signal })
  t.equal(getEventListeners(controller.signal, 'abort').length, 0, 'after an exit')
})

t.test('output beyond the limit is cut', async t => {
  const bin = script(t.testdir(), 'chatty', 'head -c 20000000 /dev/zero')
  const result = await runChild({ bin, timeoutMs: 30_000 })
  t.equal(result.exitCode, 0)
  t.ok(result.stdout.length > 0 && result.stdout.length <= 16 << 20, `kept ${result.stdout.length} bytes of 16 MiB`)
  const both = 'head -c 5000 /dev/zero; head -c 5000 /dev/zero >&2'
  const small = await runChild({ bin: 'sh', args: ['-c', both], timeoutMs: 30_000, maxOutputBytes: 6000 })
  t.ok(small.stdout.length + small.stderr.length <= 6000, 'stdout and stderr share the limit')
})
