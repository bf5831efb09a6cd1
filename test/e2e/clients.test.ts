import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { WebSocket } from 'ws'
import { startAgent } from '../helpers/agent.js'
import { connect, messageText, refusal } from '../helpers/client.js'
import type { OomwatchEvent, RiskPayload } from '../../src/protocol/events.js'

/** Opens a raw ws client and resolves with its close code and reason. */
function closeOf(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise(resolve => ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })))
}

function open(port: number, options: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, options)
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
  })
}

/** A synthetic event, sized to fill buffers: the transport is what is under test here. */
function bulkyRisk(i: number, bytes: number): Omit<RiskPayload, 'seq' | 'ts'> {
  return {
    type: 'risk',
    pid: 1_000_000 + i,
    cmdline: ['x'.repeat(bytes)],
    rule: 'bulk',
    rlimit: 'NOFILE',
    value: 1,
    threshold: 0,
    message: 'transport test',
  }
}

t.test('what a client sends gets an error frame, then a close; others are unaffected', async t => {
  const agent = await startAgent()
  t.teardown(() => agent.stop())
  const bystander = await connect(agent.port)
  t.teardown(() => bystander.close())

  const chatty = await open(agent.port)
  const errors: { code?: string; message?: string }[] = []
  chatty.on('message', data => {
    const event = JSON.parse(messageText(data)) as OomwatchEvent
    if (event.type === 'error') errors.push(event)
  })
  const chattyClosed = closeOf(chatty)
  for (const text of ['{"type":"replay","since":0}', 'not json', '{"since":"x"}', '[]', '""', 'hello?']) chatty.send(text)
  const closed = await chattyClosed
  t.equal(errors.length, 5, 'an error frame for each of the first five messages')
  t.match(errors[0], { code: 'CLIENT_MESSAGE_UNSUPPORTED', message: /reconnect with \?since=SEQ/ })
  t.match(closed, { code: 1008, reason: /takes no messages/ }, 'then a close with the reason')

  const binary = await open(agent.port)
  const binaryClosed = closeOf(binary)
  binary.send(Buffer.from([1, 2, 3]))
  t.match(await binaryClosed, { code: 1003, reason: /no binary messages/ })

  const huge = await open(agent.port)
  const hugeClosed = closeOf(huge)
  huge.send('x'.repeat(100_000))
  t.equal((await hugeClosed).code, 1009, 'a frame over the limit closes with 1009')

  agent.agent.hub.emit(bulkyRisk(0, 10))
  await bystander.waitFor(e => e.type === 'risk' && e.pid === 1_000_000)
  t.pass('the other client still receives events')
})

t.test('a slow client is closed with a reason; the others receive everything', async t => {
  const agent = await startAgent()
  t.teardown(() => agent.stop())
  const healthy = await connect(agent.port)
  t.teardown(() => healthy.close())
  const slow = await open(agent.port)
  const slowClosed = closeOf(slow)
  // Stop reading: the kernel buffers fill, then the agent's own backlog for this client grows.
  ;(slow as unknown as { _socket: { pause(): void } })._socket.pause()
  const count = 300
  for (let i = 0; i < count; i++) {
    agent.agent.hub.emit(bulkyRisk(i, 64 * 1024))
    // Events come over time, not 19 MB in one tick: a healthy client drains between them.
    if (i % 10 === 9) await sleep(5)
  }
  await healthy.waitFor(e => e.type === 'risk' && e.pid === 1_000_000 + count - 1)
  const received = healthy.events.filter(e => e.type === 'risk').map(e => e.seq)
  t.equal(received.length, count, 'the healthy client received every event')
  t.same(
    received,
    [...received].sort((a, b) => a - b),
    'in seq order',
  )
  // The backlog check runs every second; resume reading only once it has closed the client,
  // so that the close frame (queued behind the backlog) can arrive.
  while (!agent.logs.some(line => line.msg === 'closing a client that does not keep up')) await sleep(50)
  ;(slow as unknown as { _socket: { resume(): void } })._socket.resume()
  const closed = await slowClosed
  t.ok(closed.code === 1013 || closed.code === 1006, `the slow client was closed (${closed.code})`)
  t.ok(
    agent.logs.some(line => line.msg === 'closing a client that does not keep up'),
    'and it was logged',
  )
})

t.test('clients past the limit, from another origin, or without the token are refused before the upgrade', async t => {
  const agent = await startAgent({
    OOMWATCH_MAX_CLIENTS: '2',
    OOMWATCH_TOKEN: 's3cret',
    OOMWATCH_ALLOWED_ORIGINS: 'https://grafana.example',
  })
  t.teardown(() => agent.stop())
  const auth = { authorization: 'Bearer s3cret' }
  t.match(await refusal(agent.port, '/'), { status: 401, body: /Authorization: Bearer/ }, 'no token: 401')
  t.match(await refusal(agent.port, '/', { authorization: 'Bearer wrong' }), { status: 401 }, 'a wrong token: 401')
  t.match(
    await refusal(agent.port, '/', { ...auth, origin: 'https://evil.example' }),
    { status: 403, body: /--allowed-origins/ },
    'a foreign origin: 403',
  )
  const a = await connect(agent.port, { headers: { ...auth, origin: 'https://grafana.example' } })
  t.teardown(() => a.close())
  const b = await connect(agent.port, { headers: { ...auth, origin: `http://127.0.0.1:${agent.port}` } })
  t.teardown(() => b.close())
  t.pass("an allowed origin and the agent's own origin connect")
  t.match(await refusal(agent.port, '/', auth), { status: 503, body: /2 clients already/ }, 'a third client: 503')
  t.notOk(
    agent.logs.some(line => JSON.stringify(line).includes('s3cret')),
    'the token is never logged',
  )
})
