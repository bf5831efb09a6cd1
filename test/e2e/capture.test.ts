import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { captureStack } from '../../src/capture/capture.js'
import { locatePyspy, PROJECT_PYSPY } from '../../src/capture/pyspy-locate.js'
import type * as PyspyLocate from '../../src/capture/pyspy-locate.js'
import { pickCulprit } from '../../src/capture/stack.js'
import { classifyFailure, DumpParseError, INSTALL_REMEDY, parseDump, type RunOutcome } from '../../src/capture/pyspy-output.js'
import { runPyspy } from '../../src/capture/pyspy-run.js'
import { deathOf, isAlive } from '../helpers/process.js'
import { killFromPidfile, script } from '../helpers/script.js'
import { PYTHON } from '../helpers/python.js'

const PYSPY = fileURLToPath(new URL('../../.venv/bin/py-spy', import.meta.url))
const HOLD_HERE = fileURLToPath(new URL('../fixtures/python/hold_here.py', import.meta.url))
/** The line of hold_here.py where the main thread waits. */
const SLEEP_LINE =
  readFileSync(HOLD_HERE, 'utf8')
    .split('\n')
    .findIndex(line => line.includes('time.sleep(0.05)')) + 1
const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`../fixtures/pyspy/${name}`, import.meta.url)), 'utf8')

/** Starts `command`, killed at teardown whatever happens. */
function start(t: Test, command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  return child
}

/** A real Python process whose main thread is in hold_here() once this resolves. */
async function startPython(t: Test): Promise<number> {
  const child = start(t, PYTHON, [HOLD_HERE])
  for await (const line of createInterface({ input: child.stdout! })) if (line === 'ready') break
  return child.pid!
}

/** A pid that has just exited and been reaped. */
async function deadPid(t: Test): Promise<number> {
  const child = start(t, 'true', [])
  await once(child, 'exit')
  return child.pid!
}

t.test('parseDump', async t => {
  t.test('captured fixture: one idle main thread', async t => {
    const threads = parseDump(fixture('dump-idle.json'))
    t.equal(threads.length, 1)
    const [main] = threads
    t.match(main, { name: 'MainThread', active: false, ownsGil: false })
    t.type(main!.id, 'number')
    t.type(main!.osThreadId, 'number')
    t.strictSame(
      main!.frames.map(f => f.function),
      ['hold_here', '<module>'],
      'innermost first',
    )
    t.match(main!.frames[0], { file: /hold_here\.py$/, line: SLEEP_LINE })
  })

  t.test('captured fixture: a busy thread holding the GIL beside the main thread', async t => {
    const threads = parseDump(fixture('dump-gil.json'))
    t.strictSame(
      threads.map(th => [th.name, th.active, th.ownsGil, th.frames[0]?.function]),
      [
        ['busy-worker', true, true, 'busy_worker'],
        ['MainThread', false, false, 'hold_here'],
      ],
    )
    t.match(pickCulprit(threads), { function: 'busy_worker', threadName: 'busy-worker', threadId: threads[0]!.id, why: /GIL/ })
  })

  t.test('live: py-spy on a real Python process', async t => {
    const pid = await startPython(t)
    const result = await runPyspy({ bin: PYSPY, args: ['dump', '--json', '--pid', String(pid)], timeoutMs: 30_000 })
    t.equal(result.exitCode, 0, result.stderr)
    const threads = parseDump(result.stdout)
    t.equal(threads.length, 1)
    t.strictSame(threads[0]!.frames[0], { function: 'hold_here', file: HOLD_HERE, line: SLEEP_LINE })
    t.equal(threads[0]!.osThreadId, pid, 'the main thread')
  })

  t.test('garbage', async t => {
    const error = t.throws(() => parseDump('Segmentation fault\n')) as DumpParseError
    t.type(error, DumpParseError)
    t.equal(error.code, 'PYSPY_BAD_OUTPUT')
    t.match(error.message, /py-spy printed no JSON: "Segmentation fault\\n"/)
    t.type(error.cause, SyntaxError)
    t.throws(() => parseDump(''), { code: 'PYSPY_BAD_OUTPUT' }, 'empty output')
  })

  t.test('JSON that is not a list', async t => {
    t.throws(() => parseDump('{"threads": []}'), { code: 'PYSPY_BAD_OUTPUT', message: /not a list of threads: object/ })
    t.throws(() => parseDump('42'), { message: /not a list of threads: number/ })
  })

  t.test('a thread without frames, without thread_id, or not an object', async t => {
    t.throws(() => parseDump('[{"thread_id": 1}]'), { code: 'PYSPY_BAD_OUTPUT', message: /thread 0 has no thread_id or frames/ })
    t.throws(() => parseDump('[{"thread_id": 1, "frames": []}, {"frames": []}]'), { message: /thread 1 has no thread_id or frames/ })
    t.throws(() => parseDump('[{"thread_id": "1", "frames": []}]'), { message: /thread 0 has no thread_id/ })
    t.throws(() => parseDump('[null]'), { message: /thread 0 has no/ })
  })

  t.test('a frame without a name, filename or line', async t => {
    const frame = (f: object) => `[{"thread_id": 7, "frames": [{"name": "ok", "filename": "a.py", "line": 1}, ${JSON.stringify(f)}]}]`
    t.throws(() => parseDump(frame({ filename: 'a.py', line: 3 })), { code: 'PYSPY_BAD_OUTPUT', message: /thread 0 frame 1 lacks name/ })
    t.throws(() => parseDump(frame({ name: 'f', line: 3 })), { message: /frame 1 lacks/ })
    t.throws(() => parseDump(frame({ name: 'f', filename: 'a.py' })), { message: /frame 1 lacks/ })
    t.throws(() => parseDump('[{"thread_id": 7, "frames": ["f"]}]'), { message: /frame 0 lacks/ })
  })

  t.test('a minimal thread: the optional fields are left out', async t => {
    t.strictSame(parseDump('[{"thread_id": 7, "frames": [], "active": 1, "owns_gil": "yes"}]'), [
      { id: 7, active: false, ownsGil: false, frames: [] },
    ])
  })
})

t.test('classifyFailure', async t => {
  const failed = (stderr: string, exitCode: number | null = 1): RunOutcome => ({ exitCode, stderr, timedOut: false })
  const bin = '/opt/py-spy'

  t.test("py-spy's real stderr, captured now and kept as fixtures", async t => {
    const python = await startPython(t)
    const sleeper = start(t, 'sleep', ['1000'])
    const cases: [string, string[], string, string][] = [
      [
        'a pid that does not exist',
        [PYSPY, 'dump', '--json', '--pid', String(await deadPid(t))],
        'stderr-no-such-pid.txt',
        'TARGET_EXITED',
      ],
      ['a process that is not Python', [PYSPY, 'dump', '--json', '--pid', String(sleeper.pid)], 'stderr-not-python.txt', 'NOT_PYTHON'],
      [
        'no CAP_SYS_PTRACE over a root Python process',
        ['setpriv', '--inh-caps=-all', '--bounding-set=-all', PYSPY, 'dump', '--json', '--pid', String(python)],
        'stderr-permission-denied.txt',
        'PTRACE_DENIED',
      ],
    ]
    for (const [what, [command, ...args], kept, code] of cases) {
      const result = await runPyspy({ bin: command!, args, timeoutMs: 30_000 })
      t.not(result.exitCode, 0, `${what}: py-spy failed`)
      // The fixture must still say what py-spy says today (first line: pids differ nowhere in it).
      t.equal(result.stderr.split('\n')[0], fixture(kept).split('\n')[0], `${what}: fixture ${kept} is current`)
      const error = classifyFailure(result, command!, 1000)
      t.equal(error.code, code, `${what}: ${error.message}`)
      t.match(classifyFailure(failed(fixture(kept)), bin, 1000), { code }, `${what}: from the fixture`)
      t.notMatch(error.message, /\n/, 'one line')
      t.ok(error.remedy.length > 0)
    }
  })

  t.test("py-spy's message: Error and Caused by, without the backtrace", async t => {
    const error = classifyFailure(failed(fixture('stderr-no-such-pid-backtrace.txt')), bin, 1000)
    t.equal(
      error.message,
      'Error: Failed to get process executable name. Check that the process is running.; ' +
        'No such file or directory (os error 2); No such file or directory (os error 2)',
    )
    t.equal(error.code, 'TARGET_EXITED')
  })

  t.test('permission wording', async t => {
    t.equal(classifyFailure(failed('Error: Operation not permitted (os error 1)'), bin, 1000).code, 'PTRACE_DENIED')
    t.match(classifyFailure(failed('Error: Permission denied (os error 13)'), bin, 1000).remedy, /SYS_PTRACE/)
  })

  t.test('target gone', async t => {
    t.equal(classifyFailure(failed('Error: No such process (os error 3)'), bin, 1000).code, 'TARGET_EXITED')
  })

  t.test('not Python', async t => {
    t.equal(classifyFailure(failed('Error: Failed to find python version from target process'), bin, 1000).code, 'NOT_PYTHON')
    t.equal(classifyFailure(failed('Error: Failed to find a python interpreter in the .data section'), bin, 1000).code, 'NOT_PYTHON')
  })

  t.test('anything else', async t => {
    t.strictSame(classifyFailure(failed('Error: something new'), bin, 1000), {
      code: 'PYSPY_FAILED',
      message: 'Error: something new',
      remedy: 'run the same py-spy dump by hand to see the whole error; report it if it persists',
    })
    t.match(classifyFailure(failed('', 3), bin, 1000), { code: 'PYSPY_FAILED', message: 'py-spy exited with code 3' }, 'no stderr')
    t.match(classifyFailure(failed('\n\n', null), bin, 1000), { message: 'py-spy exited with code null' }, 'killed by a signal')
  })

  t.test('timeout', async t => {
    const error = classifyFailure({ exitCode: null, stderr: '', timedOut: true }, bin, 1234)
    t.equal(error.code, 'PYSPY_TIMEOUT')
    t.match(error.message, /within 1234 ms/)
  })

  t.test('spawn failure', async t => {
    const enoent = Object.assign(new Error('spawn /opt/py-spy ENOENT'), { code: 'ENOENT' })
    t.strictSame(classifyFailure({ exitCode: -2, stderr: '', timedOut: false, spawnError: enoent }, bin, 1000), {
      code: 'PYSPY_MISSING',
      message: 'cannot run py-spy at /opt/py-spy: ENOENT',
      remedy: INSTALL_REMEDY,
    })
    const bare = classifyFailure({ exitCode: null, stderr: '', timedOut: true, spawnError: new Error('odd failure') }, bin, 1000)
    t.match(bare, { code: 'PYSPY_MISSING', message: /: odd failure$/ }, 'no errno code: the message; before the timeout')
  })
})

t.test('captureStack', async t => {
  t.test('real py-spy on a real Python process', async t => {
    const pid = await startPython(t)
    const spawned: number[] = []
    const stack = await captureStack(pid, { bin: PYSPY, timeoutMs: 30_000, onSpawn: p => spawned.push(p) })
    t.equal(stack.error, undefined)
    t.equal(stack.threads.length, 1)
    t.match(stack.culprit, { function: 'hold_here', file: HOLD_HERE, line: SLEEP_LINE, threadName: 'MainThread' })
    t.ok(stack.pyspyMs > 0)
    t.equal(spawned.length, 1, 'py-spy pid reported')
    t.not(spawned[0], pid)
  })

  t.test('real py-spy, real failures', async t => {
    const dir = t.testdir()
    const python = await startPython(t)
    const sleeper = start(t, 'sleep', ['1000'])
    const gone = await captureStack(await deadPid(t), { bin: PYSPY, timeoutMs: 30_000 })
    t.match(gone, { threads: [], error: { code: 'TARGET_EXITED' } })
    t.notOk(gone.culprit)
    t.match(await captureStack(sleeper.pid!, { bin: PYSPY, timeoutMs: 30_000 }), { error: { code: 'NOT_PYTHON' } })
    const unprivileged = script(dir, 'py-spy-no-caps', `exec setpriv --inh-caps=-all --bounding-set=-all '${PYSPY}' "$@"`)
    const denied = await captureStack(python, { bin: unprivileged, timeoutMs: 30_000 })
    t.match(denied, { threads: [], error: { code: 'PTRACE_DENIED', message: /Permission denied/ } })
  })

  t.test('a py-spy that never finishes: PYSPY_TIMEOUT, and it is dead afterwards', async t => {
    const dir = t.testdir()
    const pidfile = join(dir, 'sleep.pid')
    killFromPidfile(t, pidfile)
    // Not `exec`: the shell's child holds the output pipes too.
    const bin = script(dir, 'py-spy', `sleep 1000 &\necho $! > '${pidfile}'\nwait`)
    let spawned = 0
    const stack = await captureStack(process.pid, { bin, timeoutMs: 300, onSpawn: pid => (spawned = pid) })
    t.match(stack, { threads: [], error: { code: 'PYSPY_TIMEOUT', message: /within 300 ms/ } })
    t.ok(spawned > 0)
    t.notOk(isAlive(spawned), 'the script is dead')
    await deathOf(Number(readFileSync(pidfile, 'utf8')))
    t.pass('and so is what it started')
  })

  t.test('a py-spy that prints garbage and exits 0: PYSPY_BAD_OUTPUT', async t => {
    const bin = script(t.testdir(), 'py-spy', 'echo "this is not json"')
    const stack = await captureStack(1, { bin, timeoutMs: 30_000 })
    t.match(stack, { threads: [], error: { code: 'PYSPY_BAD_OUTPUT', message: /this is not json/, remedy: /py-spy 0\.4/ } })
  })

  t.test('a dump with no threads: no culprit, no error', async t => {
    const bin = script(t.testdir(), 'py-spy', "echo '[]'")
    const stack = await captureStack(1, { bin, timeoutMs: 30_000 })
    t.strictSame(stack.threads, [])
    t.notOk('culprit' in stack)
    t.notOk('error' in stack)
  })

  t.test('a py-spy that fails without a word: PYSPY_FAILED', async t => {
    const bin = script(t.testdir(), 'py-spy', 'exit 7')
    t.match(await captureStack(1, { bin, timeoutMs: 30_000 }), { error: { code: 'PYSPY_FAILED', message: 'py-spy exited with code 7' } })
  })

  t.test('py-spy missing', async t => {
    const dir = t.testdir()
    const nowhere = join(dir, 'no-such-py-spy')
    const spawned: number[] = []
    const missing = await captureStack(1, { bin: nowhere, timeoutMs: 30_000, onSpawn: p => spawned.push(p) })
    t.match(missing, {
      threads: [],
      error: { code: 'PYSPY_MISSING', message: `cannot run py-spy at ${nowhere}: ENOENT`, remedy: INSTALL_REMEDY },
    })
    t.strictSame(spawned, [], 'nothing spawned, nothing reported')
    const notExecutable = join(dir, 'py-spy-not-executable')
    writeFileSync(notExecutable, '')
    t.match(await captureStack(1, { bin: notExecutable, timeoutMs: 30_000 }), { error: { code: 'PYSPY_MISSING', message: /EACCES/ } })
    t.strictSame(await captureStack(1, { bin: undefined, timeoutMs: 30_000 }), {
      threads: [],
      pyspyMs: 0,
      error: { code: 'PYSPY_MISSING', message: 'py-spy was not found when oomwatch started', remedy: INSTALL_REMEDY },
    })
  })
})

// runChild itself (timeouts, kill escalation, aborts, output limits) is tested in test/unit/run-child.test.ts.
t.test('runPyspy', async t => {
  t.test('an aborted signal reaches py-spy: captureStack passes it on', async t => {
    const bin = script(t.testdir(), 'py-spy', 'exec sleep 1000')
    const stack = await captureStack(1, { bin, timeoutMs: 600_000, signal: AbortSignal.abort() })
    t.match(stack, { threads: [], error: { code: 'PYSPY_FAILED', message: 'py-spy exited with code null' } })
  })

  t.test('output beyond 16 MiB is cut: a bad dump', async t => {
    const bin = script(t.testdir(), 'chatty', 'head -c 20000000 /dev/zero')
    t.match(await captureStack(1, { bin, timeoutMs: 30_000 }), { error: { code: 'PYSPY_BAD_OUTPUT' } })
  })

  t.test('py-spy runs without a Rust backtrace', async t => {
    const result = await runPyspy({ bin: 'sh', args: ['-c', 'echo "$RUST_BACKTRACE"'], timeoutMs: 30_000 })
    t.equal(result.stdout, '0\n')
  })
})

t.test('locatePyspy', async t => {
  const version = /py-spy (\S+)/.exec((await runPyspy({ bin: PYSPY, args: ['--version'], timeoutMs: 30_000 })).stdout)?.[1]
  t.ok(version, 'the real py-spy has a version')

  t.test('configured good path', async t => {
    t.strictSame(await locatePyspy(PYSPY), { path: PYSPY, version, source: 'config' })
  })

  t.test('configured path that does not exist', async t => {
    const nowhere = join(t.testdir(), 'py-spy')
    const expected = { error: `OOMWATCH_PYSPY=${nowhere} is not an executable file`, remedy: INSTALL_REMEDY }
    t.strictSame(await locatePyspy(nowhere, ''), expected)
    const saved = process.env.PATH
    t.teardown(() => {
      process.env.PATH = saved
    })
    delete process.env.PATH
    t.strictSame(await locatePyspy(nowhere), expected, 'no PATH at all')
  })

  t.test('configured path that is not py-spy', async t => {
    const dir = t.testdir()
    const failing = script(dir, 'failing', 'echo "no such command" >&2\nexit 1')
    t.strictSame(await locatePyspy(failing), {
      error: `OOMWATCH_PYSPY=${failing} did not run as py-spy (exit 1: no such command)`,
      remedy: INSTALL_REMEDY,
    })
    const noVersion = script(dir, 'no-version', 'echo "py-spy"')
    t.match(await locatePyspy(noVersion), { error: /did not run as py-spy \(exit 0: \)/ }, 'exit 0 but no version')
  })

  t.test('not configured: the project install wins over PATH', async t => {
    const dir = t.testdir()
    script(dir, 'py-spy', 'echo "py-spy 9.9.9"')
    t.strictSame(await locatePyspy(undefined, [dir, '/usr/bin'].join(delimiter)), { path: PROJECT_PYSPY, version, source: 'project' })
    t.strictSame(await locatePyspy(undefined, ''), { path: PROJECT_PYSPY, version, source: 'project' })
    t.equal(PROJECT_PYSPY, PYSPY, 'the project install is .venv/bin/py-spy')
  })

  t.test('PATH, when the project install is not there', async t => {
    // The one mock here: this machine has the project install, so fs hides it. Everything on PATH runs for real.
    const fs = await import('node:fs')
    const { locatePyspy: locate } = await t.mockImport<typeof PyspyLocate>('../../src/capture/pyspy-locate.js', {
      'node:fs': {
        ...fs,
        accessSync: (path: string, mode?: number) => {
          if (path === PROJECT_PYSPY) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' })
          fs.accessSync(path, mode)
        },
      },
    })
    const dir = t.testdir({ bad: {}, good: {}, empty: {} })
    script(join(dir, 'bad'), 'py-spy', 'exit 1')
    const good = script(join(dir, 'good'), 'py-spy', 'echo "py-spy 9.9.9"')
    const path = ['', join(dir, 'empty'), join(dir, 'bad'), join(dir, 'good')].join(delimiter)
    t.strictSame(await locate(undefined, path), { path: good, version: '9.9.9', source: 'path' }, 'the first on PATH that runs as py-spy')
    t.strictSame(await locate(undefined, join(dir, 'bad')), {
      error: `py-spy is neither at ${PROJECT_PYSPY} nor on PATH`,
      remedy: INSTALL_REMEDY,
    })
    t.strictSame(await locate(good, ''), { path: good, version: '9.9.9', source: 'config' }, 'a configured path still runs for real')
  })

  t.test('a pyenv shim is resolved to the real binary', async t => {
    const dir = t.testdir()
    const shims = join(dir, '.pyenv', 'shims')
    const bin = join(dir, 'bin')
    mkdirSync(shims, { recursive: true })
    mkdirSync(bin)
    const shim = script(shims, 'py-spy', `exec '${PYSPY}' "$@"`)
    const pyenv = script(bin, 'pyenv', `echo '${PYSPY}'`)
    const saved = process.env.PATH
    t.teardown(() => {
      process.env.PATH = saved
    })
    process.env.PATH = [bin, saved].join(delimiter)
    t.strictSame(await locatePyspy(shim), { path: PYSPY, version, source: 'config' }, '`pyenv which py-spy`')
    writeFileSync(pyenv, '#!/bin/sh\nexit 127\n')
    t.strictSame(await locatePyspy(shim), { path: shim, version, source: 'config' }, 'the shim itself when pyenv fails')
  })
})
