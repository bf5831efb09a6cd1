import { spawn, spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { WebSocket } from 'ws'
import { SETTINGS } from '../../src/config.js'
import { BUILT_CLI, runCli, shippedNodeFlags } from '../helpers/cli.js'
import { fakePyspy } from '../helpers/fake-pyspy.js'
import { makeTestCgroup } from '../helpers/memory-cgroup.js'
import { LEAKY_DAEMON, PYTHON } from '../helpers/python.js'

t.test('a bad value exits 2 and names the setting, the value and what is accepted', async t => {
  const { code, stderr, stdout } = await runCli(['--trigger-fraction', '1.5'], { OOMWATCH_PORT: 'abc' }).done
  t.equal(code, 2)
  t.match(stderr, /OOMWATCH_PORT="abc"/)
  t.match(stderr, /0 to 65535/)
  t.match(stderr, /--trigger-fraction "1\.5"/)
  t.notMatch(stderr, /\n\s+at /, 'no stack trace')
  t.equal(stdout, '')
})

t.test('an unknown flag exits 2', async t => {
  const { code, stderr } = await runCli(['--prot', '80']).done
  t.equal(code, 2)
  t.match(stderr, /--prot/)
})

t.test('a configured py-spy that is not there exits 2 and says how to fix it', async t => {
  const { code, stderr } = await runCli([], { OOMWATCH_PORT: '0', OOMWATCH_PYSPY: '/nonexistent/py-spy' }).done
  t.equal(code, 2)
  t.match(stderr, /OOMWATCH_PYSPY=\/nonexistent\/py-spy/)
  t.match(stderr, /pip install py-spy/)
})

t.test('a port in use exits 2 and names the setting', async t => {
  const busy = createServer()
  await new Promise<void>(resolve => busy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => busy.close())
  const port = (busy.address() as { port: number }).port
  const { code, stderr } = await runCli([], { OOMWATCH_PORT: String(port) }).done
  t.equal(code, 2)
  t.match(stderr, /EADDRINUSE/)
  t.match(stderr, /--port \/ OOMWATCH_PORT/)
})

t.test('--help and --version exit 0', async t => {
  const help = await runCli(['--help']).done
  t.equal(help.code, 0)
  t.match(help.stdout, /OOMWATCH_MEMORY_LIMIT/)
  const version = await runCli(['--version']).done
  t.equal(version.code, 0)
  t.match(version.stdout, /^\d+\.\d+\.\d+\n$/)
})

t.test('the built bin runs as the image runs it, through its shebang, whose node flags node accepts', async t => {
  const run = spawnSync(BUILT_CLI, ['--version'], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } })
  t.equal(run.status, 0, run.stderr)
  t.match(run.stdout, /^\d+\.\d+\.\d+\n$/)
  t.equal(run.stderr, '', 'no warning from node or V8 about its flags')
  t.ok(shippedNodeFlags().includes('--optimize-for-size'), 'V8 flags that cut peak RSS by 12-20 MiB (BENCHMARKS.md)')
})

t.test('it logs JSON with string levels, and SIGTERM stops it with exit 0', async t => {
  const run = runCli(['--port', '0'])
  const listening = await run.line(line => typeof line.port === 'number')
  t.equal(listening.level, 'info', 'the level is a string label')
  t.match(listening.msg, /listening on ws:\/\/127\.0\.0\.1:\d+\//)
  t.ok(typeof listening.time === 'string' && !Number.isNaN(Date.parse(listening.time)), 'time is ISO 8601')
  run.child.kill('SIGTERM')
  const { code } = await run.done
  t.equal(code, 0)
})

t.test('every setting with a bad value: exit 2, and the message names it', async t => {
  // One value per setting that its parser refuses (for free-text settings, a path that is wrong).
  const bad: Record<string, string> = {
    allowUnauthenticated: 'maybe',
    allowedOrigins: 'nope',
    allowedHosts: 'http://evil.example',
    journalDir: '/etc/hostname',
    journalMaxBytes: '1Ki',
    clientBufferBytes: '1Ki',
    actOnEntrypoint: 'maybe',
    flamegraph: 'maybe',
    procRoot: '/nonexistent/proc',
    pyspy: '/nonexistent/py-spy',
    match: '(',
    redact: '(',
    host: 'not a host',
  }
  for (const [key, setting] of Object.entries(SETTINGS)) {
    if (key === 'token') continue // any non-empty token is valid
    const value = bad[key] ?? 'not-a-number'
    // The built CLI: the same validation, without the test loader's seconds per start.
    const { code, stderr } = await runCli([], { OOMWATCH_PORT: '0', [setting.env]: value }, { built: true }).done
    t.equal(code, 2, `${setting.env}="${value}": exit 2`)
    t.match(stderr, setting.env, `${setting.env}: named in the message`)
  }
})

t.test('SIGTERM while py-spy hangs: clients get 1001, py-spy is killed, exit 0', async t => {
  const cgroup = makeTestCgroup(256 * 1024 * 1024)
  t.teardown(() => cgroup.remove())
  const pyspy = fakePyspy(t.testdir(), 'py-spy', 'exec sleep 3602')
  const run = runCli([], { OOMWATCH_PORT: '0', OOMWATCH_PYSPY: pyspy, OOMWATCH_PYSPY_TIMEOUT_MS: '600000', OOMWATCH_MATCH: 'leaky_daemon' })
  const { port } = (await run.line(line => typeof line.port === 'number')) as { port: number }
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`)
  const closed = new Promise<number>(resolve => ws.on('close', code => resolve(code)))
  const [bin, ...args] = cgroup.wrap([PYTHON, LEAKY_DAEMON, '--entries', '10000000', '--rate', '40000000', '--delay', '0.3'])
  const leak = spawn(bin!, args, { stdio: 'ignore' })
  t.teardown(() => leak.kill('SIGKILL'))
  await until(() => pidsRunning('sleep 3602').length > 0) // the capture has begun, and hangs
  run.child.kill('SIGTERM')
  const { code } = await run.done
  t.equal(code, 0, 'exit 0')
  t.equal(await closed, 1001, 'the client was closed with 1001 (going away)')
  t.same(pidsRunning('sleep 3602'), [], 'the hung py-spy was killed, not waited for')
})

async function until(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await sleep(20)
  }
}

function pidsRunning(cmdline: string): string[] {
  return readdirSync('/proc').filter(pid => {
    try {
      return /^\d+$/.test(pid) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ') === cmdline
    } catch {
      return false
    }
  })
}

t.test('oomwatch inject, as shipped: a manifest on stdin, the injected one on stdout; a refusal exits 2 without a stack', async t => {
  const fixtures = fileURLToPath(new URL('../fixtures/inject/', import.meta.url))
  const input = readFileSync(join(fixtures, 'deployment.yaml'), 'utf8')
  const run = (args: string[], stdin: string) =>
    spawnSync(process.execPath, [...shippedNodeFlags(), BUILT_CLI, 'inject', ...args], { input: stdin, encoding: 'utf8' })
  const ok = run(['--token-secret', 'oomwatch-token'], input)
  t.equal(ok.status, 0, ok.stderr)
  t.equal(ok.stdout, readFileSync(join(fixtures, 'deployment.injected.yaml'), 'utf8'))
  const refused = run(
    ['--token-secret', 'oomwatch-token'],
    input.replace('    spec:\n      containers:', '    spec:\n      hostPID: true\n      containers:'),
  )
  t.equal(refused.status, 2)
  t.equal(refused.stdout, '', 'nothing half-injected on stdout')
  t.match(refused.stderr, /^oomwatch inject: stdin, document 1 \(Deployment web\): hostPID is true/)
  t.notMatch(refused.stderr, /\n\s+at /, 'no stack trace')
})
