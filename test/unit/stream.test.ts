import { once } from 'node:events'
import type { IncomingMessage } from 'node:http'
import { connect as tcpConnect, type Socket } from 'node:net'
import { Writable } from 'node:stream'
import { setTimeout as sleep, setImmediate as tick } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { WebSocket, type ClientOptions } from 'ws'
import { createLogger, logSink } from '../../src/log.js'
import { tokenMatches } from '../../src/stream/auth.js'
import { StreamServer, type StreamSettings, type StreamSources } from '../../src/stream/server.js'
import { connect, messageText } from '../helpers/client.js'
import { EventHub } from '../../src/hub.js'
import { Greeter } from '../../src/stream/greeting.js'
import { StreamStats } from '../../src/stream/stats.js'
import type { HelloPayload, IncidentPayload, OomwatchEvent, ProcessInfo, RiskPayload } from '../../src/protocol/events.js'
import { arrayReplay } from '../helpers/replay-stub.js'

type Line = Record<string, unknown>

/** A pino logger whose JSON lines are kept, parsed, for assertions. */
function capturedLogger(level = 'debug') {
  const lines: Line[] = []
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Line)
      done()
    },
  })
  return { logger: createLogger(level, sink), lines }
}

const HELLO: HelloPayload = {
  type: 'hello',
  version: '0.1.0',
  startedAt: new Date().toISOString(),
  config: { port: 0, token: false },
  pyspy: { path: '/usr/bin/py-spy', version: '0.4.2', source: 'config' },
  agent: { pid: process.pid },
  watching: [],
}

const PROCESS: ProcessInfo = {
  pid: 4242,
  ppid: 1,
  startTime: 123456,
  cmdline: ['python3', '/app/leak.py'],
  python: { via: 'exe', detail: '/usr/bin/python3.11' },
  rlimits: { NOFILE: { soft: 1024, hard: 1073741816, units: 'files' } },
  memory: { rssBytes: 50_000_000, limit: { bytes: 268435456, source: 'cgroup-v2', path: '/sys/fs/cgroup/memory.max' } },
}

/**
 * A real StreamServer on 127.0.0.1, port 0, fed by a real EventHub; closed at teardown.
 * Its greet is a stand-in for the agent's: the hello, then with `since` every kept event after it.
 */
async function serve(t: Test, settings: Partial<StreamSettings> = {}, sources: Partial<StreamSources> = {}) {
  const hub = new EventHub()
  const { logger, lines } = capturedLogger()
  const kept: OomwatchEvent[] = []
  const greeted: (number | undefined)[] = []
  const status = { ready: false, live: true, readyNote: undefined }
  const server = new StreamServer(
    { host: '127.0.0.1', port: 0, heartbeatMs: 60_000, maxClients: 10, clientBufferBytes: 8 << 20, ...settings },
    {
      status,
      greeting: {
        greet: since => {
          greeted.push(since)
          const after = since === undefined ? [] : kept.filter(e => e.seq > since)
          const hello = hub.greet({ ...HELLO, ...(since !== undefined && { replay: { since, count: after.length, missed: 0 } }) })
          return { hello, ...(since !== undefined && { replay: arrayReplay(after, { since }) }) }
        },
        clientError: message => hub.greet({ type: 'error', code: 'CLIENT_MESSAGE_UNSUPPORTED', message }),
      },
      logger,
      ...sources,
    },
  )
  const port = await server.listen()
  t.teardown(() => server.close())
  hub.subscribe(event => kept.push(event))
  hub.subscribeAll(server.sink)
  return { server, port, hub, lines, greeted, setReady: (value: boolean) => (status.ready = value) }
}

/** A raw `ws` client, closed at teardown; resolves once open, with every message it receives from the start. */
async function open(t: Test, port: number, options: ClientOptions = {}, path = '/'): Promise<{ ws: WebSocket; messages: Line[] }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, options)
  const messages: Line[] = []
  // Listening before 'open': the greeting can arrive in the same read as the handshake.
  ws.on('message', data => messages.push(JSON.parse(messageText(data)) as Line))
  t.teardown(() => ws.terminate())
  await once(ws, 'open')
  return { ws, messages }
}

/** A raw TCP client that completes the WebSocket handshake, then never reads again. */
async function stalledClient(t: Test, port: number): Promise<Socket> {
  const socket = tcpConnect(port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  socket.write(
    'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  )
  const [head] = (await once(socket, 'data')) as [Buffer]
  if (!String(head).startsWith('HTTP/1.1 101 ')) throw new Error(`handshake refused: ${String(head)}`)
  socket.pause()
  return socket
}

/** A broadcastable event of about `bytes` bytes. */
function eventOf(bytes: number): OomwatchEvent {
  return { ...risk(1), message: 'x'.repeat(bytes), seq: 1, ts: new Date().toISOString() }
}

/** Resolves once `messages` holds one that matches. */
async function received(ws: WebSocket, messages: Line[], match: (message: Line) => boolean): Promise<Line> {
  for (;;) {
    const found = messages.find(match)
    if (found) return found
    await once(ws, 'message')
  }
}

/** The HTTP status with which an upgrade is refused, and the reason in its body. */
async function refused(port: number, path = '/', headers: Record<string, string> = {}): Promise<[number, string]> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers })
  ws.on('error', () => {}) // terminate() below reports the refused handshake as an error too
  const [, res] = (await once(ws, 'unexpected-response')) as [unknown, IncomingMessage]
  let body = ''
  for await (const chunk of res) body += String(chunk)
  ws.terminate()
  return [res.statusCode!, body]
}

/** Just the status of a refused upgrade. */
async function refusal(port: number, path = '/', headers: Record<string, string> = {}): Promise<number> {
  return (await refused(port, path, headers))[0]
}

/** Resolves with the close code and reason the client saw. */
async function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  const [code, reason] = (await once(ws, 'close')) as [number, Buffer]
  return { code, reason: String(reason) }
}

const risk = (pid: number): RiskPayload => ({
  type: 'risk',
  pid,
  cmdline: ['python3'],
  rule: 'nofile-hard-huge',
  rlimit: 'NOFILE',
  value: 1073741816,
  threshold: 1048576,
  message: 'NOFILE hard limit 1073741816 is above 1048576',
})

t.test('StreamServer', async t => {
  t.test('the greeting arrives first, at the current seq', async t => {
    const { port, hub } = await serve(t)
    hub.emit(risk(1))
    hub.emit(risk(2))
    const client = await connect(port)
    t.teardown(() => client.close())
    const hello = await client.waitFor(e => e.type === 'hello')
    t.equal(client.events[0], hello, 'first')
    t.match(hello, { type: 'hello', version: '0.1.0', seq: 2, ts: /^\d{4}-\d\d-\d\dT/ })
    hub.emit(risk(3))
    const next = await client.waitFor(e => e.type === 'risk')
    t.equal(next.seq, 3, 'the next event is seq + 1')
  })

  t.test('a broadcast reaches every client, in order', async t => {
    const { server, port, hub } = await serve(t)
    const a = await connect(port)
    const b = await connect(port)
    t.teardown(() => (a.close(), b.close()))
    await a.waitFor(e => e.type === 'hello')
    await b.waitFor(e => e.type === 'hello')
    t.equal(server.clientCount, 2)
    for (let pid = 1; pid <= 5; pid++) hub.emit(risk(pid))
    for (const client of [a, b]) {
      await client.waitFor(e => e.seq === 5)
      t.strictSame(
        client.events.map(e => [e.type, e.seq, 'pid' in e ? e.pid : undefined]),
        [
          ['hello', 0, undefined],
          ['risk', 1, 1],
          ['risk', 2, 2],
          ['risk', 3, 3],
          ['risk', 4, 4],
          ['risk', 5, 5],
        ],
      )
    }
  })

  t.test('HTTP: /livez, /readyz, / and the rest', async t => {
    const { port, setReady } = await serve(t)
    const get = async (path: string) => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`)
      return [res.status, await res.text()]
    }
    t.strictSame(await get('/livez'), [200, 'ok\n'])
    t.strictSame(await get('/livez?probe=1'), [200, 'ok\n'], 'the query is ignored')
    t.strictSame(await get('/readyz'), [503, 'starting: first scan not done\n'])
    setReady(true)
    t.strictSame(await get('/readyz'), [200, 'ready\n'])
    const [status, body] = await get('/')
    t.equal(status, 426, 'Upgrade Required')
    t.match(body, /WebSocket/)
    t.strictSame(await get('/metrics'), [404, 'not found\n'])
  })

  t.test('a request target that is not a URL gets 400 and does not bring the server down', async t => {
    const { port } = await serve(t)
    const raw = async (request: string) => {
      const socket = tcpConnect(port, '127.0.0.1')
      t.teardown(() => socket.destroy())
      socket.end(request)
      let answer = ''
      for await (const chunk of socket) answer += String(chunk)
      return answer
    }
    t.match(await raw('GET http://[ HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 400 [^]*not a URL/)
    t.match(
      await raw(
        'GET http://%zz/ HTTP/1.1\r\nHost: agent\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      ),
      /^HTTP\/1\.1 400 Bad Request\r\n[^]*not a URL/,
      'the upgrade too',
    )
    t.equal((await fetch(`http://127.0.0.1:${port}/livez`)).status, 200, 'still serving')
  })

  t.test('an upgrade on an unknown path is refused with 404', async t => {
    const { port, server } = await serve(t)
    t.strictSame(await refused(port, '/events'), [404, 'the stream is at /\n'])
    t.equal(server.clientCount, 0)
  })

  t.test('?since=SEQ replays the kept events after SEQ, right after the hello', async t => {
    const { port, hub, greeted } = await serve(t)
    for (let pid = 1; pid <= 4; pid++) hub.emit(risk(pid))
    const client = await connect(port, { query: 'since=2' })
    t.teardown(() => client.close())
    await client.waitFor(e => e.seq === 4 && e.type === 'risk')
    hub.emit(risk(5))
    await client.waitFor(e => e.seq === 5)
    t.strictSame(
      client.events.map(e => [e.type, e.seq]),
      [
        ['hello', 4],
        ['risk', 3],
        ['risk', 4],
        ['risk', 5],
      ],
      'no gap, no duplicate',
    )
    t.match(client.events[0], { replay: { since: 2, count: 2 } })
    t.strictSame(greeted, [2], 'since parsed as a number')
    const plain = await connect(port)
    t.teardown(() => plain.close())
    await plain.waitFor(e => e.type === 'hello')
    t.strictSame(greeted, [2, undefined], 'no since: undefined')
  })

  t.test('a replay from memory gives the event loop a turn after each batch: the watch tick is never held by it', async t => {
    const hub = new EventHub()
    const events = Array.from({ length: 400 }, (_, at) => hub.emit(risk(at + 1)))
    // A stand-in for the event loop's timers: a callback that runs once per turn.
    let turn = 0
    let spinning = true
    const spin = () => {
      turn++
      if (spinning) setImmediate(spin)
    }
    setImmediate(spin)
    t.teardown(() => void (spinning = false))
    const turnsAtRead: number[] = []
    const { port } = await serve(
      t,
      {},
      {
        greeting: {
          greet: since => {
            const replay = arrayReplay(events, { since: 0 }, 4) // resolves at once, as the memory window does
            const read = replay.read.bind(replay)
            replay.read = () => (turnsAtRead.push(turn), read())
            return { hello: hub.greet({ ...HELLO, replay: { since: since ?? 0, count: events.length, missed: 0 } }), replay }
          },
          clientError: message => hub.greet({ type: 'error', code: 'CLIENT_MESSAGE_UNSUPPORTED', message }),
        },
      },
    )
    const client = await connect(port, { query: 'since=0' })
    t.teardown(() => client.close())
    await client.waitFor(e => e.type === 'risk' && e.seq === 400)
    const perTurn = new Map<number, number>()
    for (const at of turnsAtRead) perTurn.set(at, (perTurn.get(at) ?? 0) + 1)
    t.ok(turnsAtRead.length >= 100, `read in ${turnsAtRead.length} batches of 4`)
    t.equal(Math.max(...perTurn.values()), 1, 'one batch per turn of the event loop')
  })

  t.test('a since that is not a whole number is refused with 400', async t => {
    const { port, greeted } = await serve(t)
    const [status, body] = await refused(port, '/?since=-1')
    t.equal(status, 400)
    t.match(body, 'not "-1"')
    t.equal(await refusal(port, '/?since=abc'), 400)
    t.equal(await refusal(port, '/?since=1234567890123456'), 400, 'more than 15 digits')
    t.equal(await refusal(port, '/?since='), 400, 'empty')
    t.strictSame(greeted, [], 'nobody greeted')
  })

  t.test('maxClients: one more is refused with 503', async t => {
    const { port, server } = await serve(t, { maxClients: 2 })
    await open(t, port)
    await open(t, port)
    const [status, body] = await refused(port)
    t.equal(status, 503)
    t.match(body, /2 clients already/)
    t.equal(server.clientCount, 2)
  })

  t.test('browser origins', async t => {
    const { port, lines } = await serve(t, { allowedOrigins: ['https://dash.example'] })
    await open(t, port, { headers: { Origin: `http://127.0.0.1:${port}` } })
    t.pass('the same host as the request')
    await open(t, port, { headers: { Origin: 'https://dash.example' } })
    t.pass('an allowed origin')
    await open(t, port)
    t.pass('no Origin: not a browser')
    const [status, body] = await refused(port, '/', { Origin: 'https://evil.example' })
    t.equal(status, 403)
    t.match(body, /origin is not allowed/)
    t.equal(await refusal(port, '/', { Origin: 'null' }), 403, 'an opaque origin')
    // Logged at a bounded rate: the first at once, the next one counted into a later line.
    t.equal(lines.filter(l => l.msg === 'refused a browser client from another origin' && l.kind === 'origin').length, 1)
    const { port: bare } = await serve(t)
    t.equal(await refusal(bare, '/', { Origin: 'https://dash.example' }), 403, 'no allowedOrigins: only the same host')
  })

  t.test('a token is required when set', async t => {
    const { port, lines } = await serve(t, { token: 's3cret' })
    t.equal(await refusal(port), 401, 'no header')
    t.equal(await refusal(port, '/', { Authorization: 'Bearer wrong' }), 401, 'wrong token')
    t.equal(await refusal(port, '/', { Authorization: 's3cret' }), 401, 'not a bearer header')
    t.equal(await refusal(port, '/elsewhere', { Authorization: 'Bearer s3cret' }), 404, 'the path is checked first')
    t.equal(lines.filter(l => l.msg === 'refused a client without the bearer token' && l.level === 'warn').length, 1, 'at a bounded rate')
    const client = await connect(port, { headers: { Authorization: 'Bearer s3cret' } })
    t.teardown(() => client.close())
    t.equal((await client.waitFor(e => e.type === 'hello')).type, 'hello', 'the right token connects')
  })

  t.test('a client message gets an error frame; the sixth, or a binary one, closes the client', async t => {
    const { port, hub } = await serve(t)
    hub.emit(risk(1))
    const { ws, messages } = await open(t, port)
    for (let i = 1; i <= 5; i++) {
      ws.send(`hello ${i}`)
      await received(ws, messages, () => messages.filter(m => m.type === 'error').length === i)
    }
    t.match(messages.at(-1), { type: 'error', code: 'CLIENT_MESSAGE_UNSUPPORTED', seq: 1, message: /only streams events/ })
    ws.send('hello 6')
    t.match(await closed(ws), { code: 1008, reason: /takes no messages/ })
    const { ws: binary } = await open(t, port)
    binary.send(Buffer.from([1, 2, 3]))
    t.match(await closed(binary), { code: 1003, reason: /no binary/ })
  })

  t.test('a frame over 4096 bytes closes that client with 1009; the others are served', async t => {
    const { server, port, hub, lines } = await serve(t)
    const { ws: rude, messages } = await open(t, port)
    const polite = await connect(port)
    t.teardown(() => polite.close())
    await polite.waitFor(e => e.type === 'hello')
    rude.send('x'.repeat(4096))
    t.ok(await received(rude, messages, m => m.type === 'error'), 'a frame of 4096 bytes is answered, not closed')
    hub.emit(risk(8))
    t.ok(await received(rude, messages, m => m.pid === 8), 'and the client still served')
    rude.send('x'.repeat(4097))
    t.equal((await closed(rude)).code, 1009)
    hub.emit(risk(9))
    t.ok(await polite.waitFor(e => e.type === 'risk' && e.pid === 9))
    const late = await connect(port)
    t.teardown(() => late.close())
    await late.waitFor(e => e.type === 'hello')
    t.equal(server.clientCount, 2)
    t.ok(
      lines.some(l => l.msg === 'client error' && l.level === 'debug' && /exceeded|payload/i.test(JSON.stringify(l.err))),
      'logged at debug',
    )
  })

  t.test('heartbeat: a client that does not answer pings is terminated, a live one stays', async t => {
    const { server, port, hub } = await serve(t, { heartbeatMs: 50 })
    const { ws: silent } = await open(t, port, { autoPong: false })
    const { ws: live, messages } = await open(t, port)
    let pingsSeen = 0
    live.on('ping', () => pingsSeen++)
    const silentPinged = once(silent, 'ping')
    const { code } = await closed(silent)
    await silentPinged
    t.equal(code, 1006, 'terminated: no close frame')
    const pingsAtDrop = pingsSeen
    // Several more heartbeats pass; the live client answers them all.
    while (pingsSeen < pingsAtDrop + 3) await once(live, 'ping')
    t.equal(live.readyState, WebSocket.OPEN)
    t.equal(server.clientCount, 1)
    hub.emit(risk(5))
    t.match(await received(live, messages, m => m.type === 'risk'), { pid: 5, seq: 1 })
  })

  t.test('a flood far past clientBufferBytes is cut at once; the client is terminated', async t => {
    const stats = new StreamStats()
    const { server, port, lines } = await serve(t, { clientBufferBytes: 1 << 20 }, { stats })
    const socket = await stalledClient(t, port)
    t.equal(stats.clients, 1, 'the shared stats count the client')
    const frame = eventOf(512 << 10)
    for (let i = 0; i < 40; i++) server.broadcast(frame) // 20 MiB within one tick
    const warning = lines.find(l => l.msg === 'closing a client that does not keep up')
    t.ok(warning, 'cut within the same tick, not at the next check')
    const backlog = Number(warning?.bufferedBytes)
    t.ok(backlog > 4 << 20, `backlog ${backlog} past 4x the allowance`)
    const count = lines.length
    const dropped = server.droppedEvents
    t.ok(dropped > 0, `the frames it was not sent count as dropped (${dropped})`)
    server.broadcast(frame) // the closing client is skipped, without a second warning
    t.equal(lines.length, count)
    t.equal(server.droppedEvents, dropped + 1, 'and so does each one after')
    t.equal(stats.droppedEvents, server.droppedEvents, 'in the stats the metrics read')
    socket.on('error', () => {}) // a reset, when the server drops the unsent backlog
    socket.resume() // read again, to see the end: the server does not wait for a close reply
    await once(socket, 'close')
    while (server.clientCount > 0) await tick()
    t.equal(stats.clients, 0, 'gone from the stats too')
    t.equal(lines.filter(l => l.msg === 'closing a client that does not keep up').length, 1, 'warned once')
  })

  t.test('a backlog past clientBufferBytes (but no flood) is cut at the next check; a client that keeps up stays', async t => {
    const allowance = 16 << 20
    const { server, port, lines } = await serve(t, { clientBufferBytes: allowance })
    const { ws: keepsUp, messages } = await open(t, port)
    const socket = await stalledClient(t, port)
    const frame = eventOf(1 << 20)
    // 60 MiB: whatever the kernel takes (a few MiB), the rest is past the allowance and short of the 64 MiB flood.
    for (let i = 0; i < 60; i++) {
      server.broadcast(frame)
      await tick()
    }
    t.notOk(
      lines.some(l => l.msg === 'closing a client that does not keep up'),
      'no flood',
    )
    let warning: Line | undefined
    while (!(warning = lines.find(l => l.msg === 'closing a client that does not keep up'))) await sleep(10)
    const backlog = Number(warning.bufferedBytes)
    t.ok(backlog > allowance && backlog <= 4 * allowance, `backlog ${backlog}`)
    socket.on('error', () => {})
    socket.resume()
    await once(socket, 'close')
    await received(keepsUp, messages, () => messages.length === 61)
    t.equal(keepsUp.readyState, WebSocket.OPEN, 'the client that reads is still served')
    t.equal(lines.filter(l => l.msg === 'closing a client that does not keep up').length, 1)
  })

  t.test('close(): clients get 1001, and it is idempotent', async t => {
    const { server, port } = await serve(t)
    const { ws } = await open(t, port)
    const seen = closed(ws)
    const first = server.close()
    t.equal(server.close(), first, 'the same promise')
    await first
    t.strictSame(await seen, { code: 1001, reason: 'oomwatch is stopping' })
    await t.rejects(fetch(`http://127.0.0.1:${port}/livez`), 'no longer listening')
    await server.close()
  })

  t.test('listen() rejects when the port is taken', async t => {
    const { port } = await serve(t)
    const { logger } = capturedLogger()
    const second = new StreamServer(
      { host: '127.0.0.1', port, heartbeatMs: 1000, maxClients: 1, clientBufferBytes: 1 << 20 },
      {
        status: { ready: true, live: true, readyNote: undefined },
        greeting: {
          greet: () => ({ hello: { type: 'error', code: 'CLIENT_MESSAGE_UNSUPPORTED', message: 'stand-in', seq: 0, ts: '' } }),
          clientError: message => ({ type: 'error', code: 'CLIENT_MESSAGE_UNSUPPORTED', message, seq: 0, ts: '' }),
        },
        logger,
      },
    )
    await t.rejects(second.listen(), { code: 'EADDRINUSE' })
  })
})

t.test('tokenMatches', async t => {
  t.equal(tokenMatches('Bearer s3cret', 's3cret'), true)
  t.equal(tokenMatches('bearer s3cret', 's3cret'), true, 'the scheme is case-insensitive')
  t.equal(tokenMatches('Bearer S3CRET', 's3cret'), false, 'the token is not')
  t.equal(tokenMatches('Bearer wrong', 's3cret'), false)
  t.equal(tokenMatches('Bearer s3cret ', 's3cret'), false, 'trailing space')
  t.equal(tokenMatches('Bearer s3cret-and-more', 's3cret'), false, 'a longer token')
  t.equal(tokenMatches('Basic s3cret', 's3cret'), false)
  t.equal(tokenMatches('s3cret', 's3cret'), false)
  t.equal(tokenMatches(undefined, 's3cret'), false)
  t.equal(tokenMatches('Bearer ', ''), false, 'an empty token never matches')
  t.equal(tokenMatches(undefined, ''), false)
})

t.test('EventHub', async t => {
  const resumed = new EventHub(41)
  t.equal(resumed.lastSeq, 41, 'continues after a journal')
  t.equal(resumed.emit(risk(1)).seq, 42)
  t.equal(resumed.lastSeq, 42)
  const hub = new EventHub()
  t.equal(hub.lastSeq, 0)
  const seen: OomwatchEvent[] = []
  const unsubscribe = hub.subscribe(event => seen.push(event))
  const other: number[] = []
  hub.subscribe(event => other.push(event.seq))
  t.match(hub.greet(HELLO), { type: 'hello', seq: 0 }, 'before any event')
  const first = hub.emit(risk(1))
  t.match(first, { type: 'risk', pid: 1, seq: 1 })
  t.equal(new Date(first.ts).toISOString(), first.ts, 'ISO 8601')
  t.match(hub.greet(HELLO), { seq: 1 }, 'greet uses the current seq')
  t.match(hub.greet(HELLO), { seq: 1 }, 'and does not consume one')
  t.match(
    hub.greet({ type: 'error', code: 'CLIENT_MESSAGE_UNSUPPORTED', message: 'no' }),
    { type: 'error', seq: 1 },
    'nor does an error frame',
  )
  t.equal(hub.lastSeq, 1)
  t.equal(hub.emit(risk(2)).seq, 2, 'the next emit is seq + 1')
  t.equal(hub.emit(risk(3)).seq, 3)
  t.strictSame(
    seen.map(e => e.seq),
    [1, 2, 3],
    'greetings are not broadcast',
  )
  unsubscribe()
  unsubscribe() // a second call is harmless
  hub.emit(risk(4))
  t.equal(seen.length, 3, 'unsubscribed')
  t.strictSame(other, [1, 2, 3, 4], 'the other sink still gets every event')
})

t.test('EventHub: a transient frame takes no seq, and reaches only the sinks that take them', async t => {
  const hub = new EventHub(5)
  const events: number[] = []
  const all: string[] = []
  hub.subscribe(event => events.push(event.seq))
  const unsubscribe = hub.subscribeAll(event => all.push(`${event.type}@${event.seq}`))
  const frame = hub.publish({ type: 'memory', processes: [{ pid: 1, limitBytes: 10, points: [[1, 2]] }] })
  t.match(frame, { type: 'memory', seq: 5, ts: /^\d{4}-/ }, 'stamped at the current seq')
  t.equal(hub.lastSeq, 5, 'which it does not take')
  t.equal(hub.emit(risk(1)).seq, 6, 'the next event follows without a gap')
  hub.publish({ type: 'memory', processes: [] })
  t.strictSame(events, [6], 'an event sink never sees a memory frame')
  t.strictSame(all, ['memory@5', 'risk@6', 'memory@6'], 'a sink of everything sees both, in order')
  unsubscribe()
  hub.publish({ type: 'memory', processes: [] })
  t.equal(all.length, 3, 'unsubscribed')
})

t.test('Greeter: the hello from the status, the replay from the journal, the history for a page', async t => {
  const hub = new EventHub(3)
  hub.emit(risk(1))
  const replayed = { ...risk(2), seq: 3, ts: '' }
  const asked: number[] = []
  const replays: ReturnType<typeof arrayReplay>[] = []
  const journal = {
    replay: (since: number) => {
      asked.push(since)
      replays.push(arrayReplay(since < 3 ? [replayed] : [], { since, count: since < 3 ? 1 : 0, missed: since < 3 ? 1 : 0 }))
      return replays.at(-1)!
    },
  }
  const hello = { version: '9.9.9', startedAt: 'at start', config: { port: 0 }, pyspy: HELLO.pyspy }
  const status = { processes: () => [PROCESS] }
  const usage = { current: { pid: 1, rssBytes: 5 } }
  const greeter = new Greeter({ hub, journal, hello, status, usage, history: { history: () => ({ type: 'memory', processes: [] }) } })
  const { hello: plain, replay: none } = greeter.greet(undefined)
  t.equal(none, undefined, 'no since: no replay')
  t.strictSame(
    Object.keys(plain),
    ['type', 'version', 'startedAt', 'config', 'pyspy', 'agent', 'watching', 'seq', 'ts'],
    'the hello, fields in order',
  )
  t.match(plain, { type: 'hello', version: '9.9.9', agent: { rssBytes: 5 }, watching: [{ pid: 4242 }], seq: 4 })
  t.strictSame(asked, [], 'the journal is not read without since')
  const { hello: resumed, replay } = greeter.greet(2)
  t.match(resumed, { type: 'hello', replay: { since: 2, count: 1, missed: 1 } })
  t.strictSame(await replay?.read(), [replayed], 'the replay follows')
  const { hello: current, replay: nothing } = greeter.greet(3)
  t.match(current, { replay: { since: 3, count: 0 } })
  t.equal(nothing, undefined, 'nothing to replay: no replay to stream')
  t.ok(replays.at(-1)?.closed, 'and the empty one is closed')
  t.match(greeter.clientError('no'), { type: 'error', code: 'CLIENT_MESSAGE_UNSUPPORTED', message: 'no', seq: 4 })
  t.match(greeter.memoryHistory(), { type: 'memory', processes: [], seq: 4 })
  t.equal(new Greeter({ hub, journal, hello, status, usage }).memoryHistory(), undefined, 'no history: none')
})

t.test('createLogger and logSink', async t => {
  const { logger, lines } = capturedLogger('info')
  const hub = new EventHub()
  hub.subscribe(logSink(logger))
  const incident: IncidentPayload = {
    type: 'incident',
    id: 'inc-1',
    pid: 4242,
    cmdline: ['python3', '/app/leak.py'],
    reason: 'time-to-limit',
    summary: 'fd_table_from_limit (/app/leak.py:12) is growing memory',
    memory: { usageBytes: 1, limitBytes: 2, limitSource: 'cgroup-v2', fractionOfLimit: 0.5, growthBytesPerSec: 1, secondsToLimit: 1 },
    process: { threads: 1 },
    rlimits: PROCESS.rlimits,
    risks: [],
    threads: [],
    culprit: { function: 'fd_table_from_limit', file: '/app/leak.py', line: 12, threadId: 1, why: 'GIL' },
    capture: { triggerToStackMs: 1, pyspyMs: 1 },
  }
  hub.emit({ ...PROCESS, type: 'process' })
  hub.emit(risk(4242))
  hub.emit(incident)
  hub.emit({ type: 'exit', pid: 4242, cmdline: PROCESS.cmdline, oomKilled: true, lastIncidentId: 'inc-1' })
  hub.emit({ type: 'exit', pid: 4343, cmdline: ['python3'], oomKilled: false })
  logSink(logger)(hub.greet(HELLO))
  logSink(logger)(hub.greet({ type: 'error', code: 'CLIENT_MESSAGE_UNSUPPORTED', message: 'a client sent a message' }))
  t.equal(lines.length, 7, 'one line per event')
  t.strictSame(
    lines.map(l => [l.type, l.level]),
    [
      ['process', 'info'],
      ['risk', 'warn'],
      ['incident', 'error'],
      ['exit', 'error'],
      ['exit', 'info'],
      ['hello', 'info'],
      ['error', 'warn'],
    ],
  )
  t.ok(
    lines.every(l => l.name === 'oomwatch' && typeof l.time === 'string' && new Date(l.time).toISOString() === l.time),
    'named, ISO time',
  )
  const [processLine, riskLine, incidentLine, oomLine, exitLine, helloLine, errorLine] = lines
  t.equal(errorLine!.msg, 'a client sent a message')
  t.equal(processLine!.msg, 'watching pid 4242 (python3 /app/leak.py), memory limit 268435456 bytes from cgroup-v2')
  t.equal(riskLine!.msg, 'pid 4242: NOFILE hard limit 1073741816 is above 1048576')
  t.match(incidentLine, {
    pid: 4242,
    reason: 'time-to-limit',
    culprit: { function: 'fd_table_from_limit', line: 12 },
    rlimits: { NOFILE: { soft: 1024, hard: 1073741816, units: 'files' } },
    msg: incident.summary,
    seq: 3,
  })
  t.equal(oomLine!.msg, 'pid 4242 was OOM-killed by the kernel')
  t.equal(oomLine!.lastIncidentId, 'inc-1')
  t.equal(exitLine!.msg, 'pid 4343 exited')
  t.equal(helloLine!.msg, 'hello')
  t.equal(processLine!.pid, 4242, "the event's pid, not the agent's")
})

t.test('createLogger: level filter, and stdout by default', async t => {
  const { logger, lines } = capturedLogger('warn')
  logSink(logger)({ ...PROCESS, type: 'process', seq: 1, ts: '' })
  t.equal(lines.length, 0, 'info is below warn')
  const stdoutLogger = createLogger('silent')
  t.equal(stdoutLogger.level, 'silent')
  t.equal(typeof stdoutLogger.info, 'function')
})
