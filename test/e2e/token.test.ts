import { join } from 'node:path'
import t from 'tap'
import { WebSocket } from 'ws'
import { runCli } from '../helpers/cli.js'
import { secretVolume } from '../helpers/secret-volume.js'

// The token as the real CLI takes it: from a file the kubelet swaps, refused when it cannot
// work (exit 2), and warned about when given as a flag.

const TOKEN_A = 'Zx3kq9P-7mWd_2LrT8vB4nYc'
const TOKEN_B = 'Qp8rT2-vLs9_Kd4mWx7bN3hJ'

/** The status of an upgrade with the token in the Authorization header: 101 when let in. */
function upgradeStatus(port: number, token: string): Promise<number> {
  return new Promise(resolve => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { headers: { authorization: `Bearer ${token}` } })
    ws.on('open', () => (ws.terminate(), resolve(101)))
    ws.on('unexpected-response', (_req, res) => (ws.terminate(), resolve(res.statusCode ?? 0)))
    ws.on('error', () => resolve(0))
  })
}

t.test('OOMWATCH_TOKEN_FILE: the real agent takes a rotated Secret at the next connection', async t => {
  const volume = secretVolume(t.testdir(), `${TOKEN_A}\n`)
  const run = runCli([], { OOMWATCH_PORT: '0', OOMWATCH_HOST: '0.0.0.0', OOMWATCH_TOKEN_FILE: volume.path })
  t.teardown(() => void run.child.kill('SIGKILL'))
  const listening = await run.line(l => typeof l.msg === 'string' && l.msg.includes('listening on'))
  const port = Number(listening.port)
  t.equal(await upgradeStatus(port, TOKEN_A), 101, 'the token of the file')
  volume.update(`${TOKEN_B}\n`)
  t.equal(await upgradeStatus(port, TOKEN_A), 401, 'after the kubelet swaps ..data, the old token is refused')
  t.equal(await upgradeStatus(port, TOKEN_B), 101, 'and the new one works, without a restart')
  const metrics = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${TOKEN_B}` } })
  t.equal(metrics.status, 200, '/metrics too')
  run.child.kill('SIGTERM')
  const { code, stdout } = await run.done
  t.equal(code, 0)
  t.notMatch(stdout, TOKEN_A, 'the token is never logged')
  t.notMatch(stdout, TOKEN_B)
  t.notMatch(stdout, /proc\/<pid>\/cmdline/, 'no warning: the token is not on the command line')
})

t.test('a token on the command line is warned about once at start', async t => {
  const run = runCli(['--token', TOKEN_A], { OOMWATCH_PORT: '0' })
  t.teardown(() => void run.child.kill('SIGKILL'))
  const warning = await run.line(l => typeof l.msg === 'string' && l.msg.includes('/proc/<pid>/cmdline'))
  t.equal(warning.level, 'warn')
  t.match(warning.msg, /OOMWATCH_TOKEN or --token-file \/ OOMWATCH_TOKEN_FILE/, 'naming what to use instead')
  await run.line(l => typeof l.msg === 'string' && l.msg.includes('listening on'))
  run.child.kill('SIGTERM')
  const { code, stdout } = await run.done
  t.equal(code, 0)
  t.equal(stdout.split('\n').filter(line => line.includes('/proc/<pid>/cmdline')).length, 1, 'once')
  t.notMatch(stdout, TOKEN_A, 'without the token')
})

t.test('a token that cannot work exits 2 with the rule and the fix', async t => {
  const dir = t.testdir({ token: `${TOKEN_A}\n`, empty: '' })
  const cases: [string, string[], Record<string, string>, RegExp][] = [
    ['both a token and a token file', ['--token-file', join(dir, 'token')], { OOMWATCH_TOKEN: TOKEN_A }, /also set by OOMWATCH_TOKEN/],
    [
      'a token file that is not there',
      ['--token-file', join(dir, 'nope')],
      {},
      /--token-file ".*nope": it does not exist: mount the Secret/,
    ],
    ['an empty token file', [], { OOMWATCH_TOKEN_FILE: join(dir, 'empty') }, /OOMWATCH_TOKEN_FILE=".*empty": it is empty/],
    [
      'a short token beyond loopback',
      ['--host', '0.0.0.0'],
      { OOMWATCH_TOKEN: 'short' },
      /at least 16 characters.*head -c 24 \/dev\/urandom/,
    ],
    ['the placeholder', [], { OOMWATCH_TOKEN: 'REPLACE-ME-with-a-random-token' }, /placeholder of sidecar\.yaml's Secret/],
  ]
  for (const [what, args, env, message] of cases) {
    const { code, stderr, stdout } = await runCli(args, { OOMWATCH_PORT: '0', ...env }).done
    t.equal(code, 2, `${what}: exit 2`)
    t.match(stderr, message, what)
    t.equal(stdout, '', `${what}: nothing started`)
  }
})
