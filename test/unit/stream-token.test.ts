import { once } from 'node:events'
import type { IncomingMessage } from 'node:http'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { WebSocket } from 'ws'
import { EventHub } from '../../src/hub.js'
import { createLogger } from '../../src/log.js'
import { PAGE_PROTOCOL, StreamServer, type StreamSettings } from '../../src/stream/server.js'
import { TokenFile } from '../../src/stream/token-source.js'
import { secretVolume } from '../helpers/secret-volume.js'

// The token as the server reads it at each check: from a real Secret volume laid out as the
// kubelet lays it out, swapped as the kubelet swaps it, checked by real ws clients.

const TOKEN_A = 'first-token-0123456789abcdef'
const TOKEN_B = 'second-token-0123456789abcdef'

type Line = Record<string, unknown>

function capturedLogger() {
  const lines: Line[] = []
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Line)
      done()
    },
  })
  return { logger: createLogger('debug', sink), lines }
}

async function serve(t: Test, settings: Partial<StreamSettings>) {
  const { logger, lines } = capturedLogger()
  const hub = new EventHub()
  const server = new StreamServer(
    { host: '127.0.0.1', port: 0, heartbeatMs: 60_000, maxClients: 10, clientBufferBytes: 8 << 20, ...settings },
    {
      status: { ready: true, live: true, readyNote: undefined },
      greeting: {
        greet: () => ({ hello: hub.greet({ type: 'error', code: 'CLIENT_MESSAGE_UNSUPPORTED', message: 'hello' }) }),
        clientError: message => hub.greet({ type: 'error', code: 'CLIENT_MESSAGE_UNSUPPORTED', message }),
      },
      metrics: { text: async () => ({ contentType: 'text/plain', body: 'ok\n' }) },
      logger,
    },
  )
  const port = await server.listen()
  t.teardown(() => server.close())
  return { port, lines, logger }
}

/** The status of an upgrade with `Authorization: Bearer <token>`: 101 when let in. */
async function upgradeStatus(port: number, token: string): Promise<number> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { headers: { authorization: `Bearer ${token}` } })
  ws.on('error', () => {})
  try {
    const [event, ...args] = await Promise.race([
      once(ws, 'open').then(() => ['open']),
      once(ws, 'unexpected-response').then(([, res]) => ['refused', res as IncomingMessage]),
    ])
    return event === 'open' ? 101 : ((args[0] as IncomingMessage).statusCode ?? 0)
  } finally {
    ws.terminate()
  }
}

async function metricsStatus(port: number, token: string): Promise<number> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${token}` } })).status
}

t.test('a token file: read once, then re-read when the kubelet swaps the Secret', async t => {
  const volume = secretVolume(t.testdir(), `${TOKEN_A}\n`)
  const { logger, lines } = capturedLogger()
  const file = TokenFile.open({ path: volume.path, beyondLoopback: true, logger })
  if ('reason' in file) throw new Error(file.reason)
  const { port } = await serve(t, { token: file })
  t.equal(file.current(), TOKEN_A, 'the trailing newline is not part of the token')
  t.equal(await upgradeStatus(port, TOKEN_A), 101, 'the token of the file lets a client in')
  t.equal(await metricsStatus(port, TOKEN_A), 200, 'and guards /metrics')

  volume.update(`${TOKEN_B}\n`)
  t.equal(await upgradeStatus(port, TOKEN_A), 401, 'after the swap, the old token is refused at once')
  t.equal(await metricsStatus(port, TOKEN_A), 401, 'on /metrics too')
  t.equal(await upgradeStatus(port, TOKEN_B), 101, 'and the new one is in force')
  t.equal(await metricsStatus(port, TOKEN_B), 200)
  t.equal(lines.filter(l => l.msg === 'a new token was read from the token file').length, 1, 'the change is logged once')
  t.notMatch(JSON.stringify(lines), TOKEN_B, 'never the token itself')

  volume.remove()
  for (let i = 0; i < 3; i++) t.equal(await upgradeStatus(port, TOKEN_B), 101, 'a file gone keeps the last good token')
  t.equal(await upgradeStatus(port, TOKEN_A), 401)
  const warnings = lines.filter(l => l.level === 'warn')
  t.equal(warnings.length, 1, 'logged once, however many checks')
  t.match(warnings[0], { file: volume.path, reason: /ENOENT/, msg: /last good token stays in force/ })

  volume.restore(TOKEN_B)
  t.equal(await upgradeStatus(port, TOKEN_B), 101)
  t.ok(
    lines.some(l => l.msg === 'the token file is usable again; its token is unchanged'),
    'its return is logged',
  )

  volume.update('')
  t.equal(await upgradeStatus(port, TOKEN_B), 101, 'an empty file keeps the last good token')
  volume.update('short')
  t.equal(await upgradeStatus(port, 'short'), 401, 'beyond loopback, a short new token is refused')
  volume.update('REPLACE-ME-with-a-random-token')
  t.equal(await upgradeStatus(port, 'REPLACE-ME-with-a-random-token'), 401, 'so is the placeholder')
  t.equal(await upgradeStatus(port, TOKEN_B), 101, 'the last good one stays')
  t.match(
    lines.filter(l => l.level === 'warn').map(l => l.reason),
    [/ENOENT/, /empty/],
    'one warning per outage: the refused tokens came while it was still failing',
  )

  volume.update(`${TOKEN_A}\n`)
  t.equal(await upgradeStatus(port, TOKEN_A), 101, 'a good token after bad ones is taken')
  volume.update('short')
  t.equal(await upgradeStatus(port, TOKEN_A), 101)
  t.match(lines.filter(l => l.level === 'warn').at(-1), { reason: /at least 16 characters/ }, 'a new outage is logged again')
})

t.test('a token file that gives no usable token at start is refused, naming the fix', async t => {
  const dir = t.testdir({ empty: '\n', short: 'abc\n', dir: {} })
  const { logger } = capturedLogger()
  const open = (path: string, beyondLoopback = true) => TokenFile.open({ path, beyondLoopback, logger })
  t.match(open(join(dir, 'missing')), { reason: /does not exist: mount the Secret there/ })
  t.match(open(join(dir, 'empty')), { reason: /it is empty: write the token into it/ })
  t.match(open(join(dir, 'dir')), { reason: /it is a directory: name the file inside it/ })
  t.match(open('/dev/null'), { reason: /not a regular file/ })
  t.match(open(join(dir, 'short')), { reason: /refused: a token must be at least 16 characters/ })
  t.ok(open(join(dir, 'short'), false) instanceof TokenFile, 'on loopback a short token is allowed')
})

t.test('a bearer.<token> subprotocol is never chosen, so the token is never echoed', async t => {
  const { port } = await serve(t, { token: TOKEN_A })
  /** A real ws client offering `protocols`: the response's subprotocol header, and whether the client opened. */
  const offer = async (protocols: string[]) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, protocols)
    let res: IncomingMessage | undefined
    ws.on('upgrade', response => (res = response))
    // events.once would reject on 'error': the outcome is whichever comes first.
    const outcome = await new Promise<string>(resolve => {
      ws.on('open', () => resolve('open'))
      ws.on('error', error => resolve(error.message))
    })
    ws.terminate()
    if (res === undefined) throw new Error(`no upgrade response: ${outcome}`)
    return { header: res.headers['sec-websocket-protocol'], outcome, raw: JSON.stringify(res.rawHeaders) }
  }
  const alone = await offer([`bearer.${TOKEN_A}`])
  t.equal(alone.header, undefined, 'offered alone: no subprotocol in the answer')
  t.notMatch(alone.raw, TOKEN_A, 'the token is nowhere in the response headers')
  t.equal(alone.outcome, 'Server sent no subprotocol', 'and the client fails the handshake, as RFC 6455 says')
  const upper = await offer([`BEARER.${TOKEN_A}`, `bearer.${TOKEN_A}`])
  t.equal(upper.header, undefined, 'in any case')
  const page = await offer([PAGE_PROTOCOL, `bearer.${TOKEN_A}`])
  t.same([page.header, page.outcome], [PAGE_PROTOCOL, 'open'], 'the page offers oomwatch beside it: that is chosen')
  const other = await offer([`bearer.${TOKEN_A}`, 'other'])
  t.same([other.header, other.outcome], ['other', 'open'], 'another protocol is chosen over the token')
})
