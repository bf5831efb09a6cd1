import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { Agent as HttpAgent, request, type IncomingMessage } from 'node:http'
import { connect as tcpConnect, type Socket } from 'node:net'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { WebSocket, type ClientOptions } from 'ws'
import { createLogger } from '../../src/log.js'
import { loadPageAssets } from '../../src/page/assets.js'
import { PAGE_PROTOCOL, StreamServer, type StreamSettings, type StreamSources } from '../../src/stream/server.js'
import { StreamStats } from '../../src/stream/stats.js'
import { EventHub } from '../../src/hub.js'

type Line = Record<string, unknown>

/** A real StreamServer on 127.0.0.1, port 0, its log lines kept; closed at teardown (or by the test). */
async function serve(t: Test, settings: Partial<StreamSettings> = {}, sources: Partial<StreamSources> = {}) {
  const lines: Line[] = []
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Line)
      done()
    },
  })
  const hub = new EventHub()
  const stats = new StreamStats()
  const server = new StreamServer(
    { host: '127.0.0.1', port: 0, heartbeatMs: 60_000, maxClients: 10, clientBufferBytes: 8 << 20, ...settings },
    {
      status: { ready: true, live: true, readyNote: undefined },
      greeting: {
        greet: () => ({
          hello: hub.greet({
            type: 'hello',
            version: '0',
            startedAt: '',
            config: {},
            pyspy: { error: 'none', remedy: '' },
            agent: { pid: 1 },
            watching: [],
          }),
        }),
        clientError: message => hub.greet({ type: 'error', code: 'CLIENT_MESSAGE_UNSUPPORTED', message }),
      },
      metrics: { text: async () => ({ contentType: 'text/plain', body: 'oomwatch_up 1\n' }) },
      stats,
      logger: createLogger('info', sink),
      ...sources,
    },
  )
  const port = await server.listen()
  t.teardown(() => server.close())
  return { server, port, lines, stats }
}

/** A real HTTP GET to 127.0.0.1 with the given headers (Host among them): status, headers and body. */
async function get(port: number, path: string, headers: Record<string, string> = {}, agent?: HttpAgent) {
  // No agent: one connection per request, closed after it (node's global agent keeps them open).
  const req = request({ host: '127.0.0.1', port, path, headers, agent: agent ?? false })
  req.end()
  const [res] = (await once(req, 'response')) as [IncomingMessage]
  let body = ''
  for await (const chunk of res) body += String(chunk)
  return { status: res.statusCode!, headers: res.headers, body }
}

/** A real WebSocket handshake to 127.0.0.1: 'open', or the status it was refused with and the body. */
async function handshake(port: number, options: ClientOptions = {}, protocols: string[] = []): Promise<'open' | [number, string]> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, protocols, options)
  ws.on('error', () => {})
  const refused = once(ws, 'unexpected-response') as Promise<[unknown, IncomingMessage]>
  const opened = once(ws, 'open').then(() => 'open' as const)
  const outcome = await Promise.race([opened, refused])
  ws.terminate()
  if (outcome === 'open') return outcome
  let body = ''
  for await (const chunk of outcome[1]) body += String(chunk)
  return [outcome[1].statusCode!, body]
}

// A DNS-rebinding page at http://evil.example:PORT reaches this agent with `Host: evil.example:PORT`
// and its own origin matching it: the Origin check alone let it read the stream and /metrics.
t.test('without a token, a request addressed to a foreign host name is refused 421 on every route but the probes', async t => {
  const svg = join(t.testdir(), 'x.svg')
  writeFileSync(svg, '<svg xmlns="http://www.w3.org/2000/svg"/>')
  const { port, lines } = await serve(t, { page: loadPageAssets() }, { flamegraphs: { file: () => svg } })
  const evil = `evil.example:${port}`
  for (const path of ['/metrics', '/', '/app.js', '/incidents/1-abc/flamegraph.svg']) {
    const answer = await get(port, path, { host: evil, accept: 'text/html' })
    t.equal(answer.status, 421, `${path}: 421 Misdirected Request`)
    t.match(answer.body, /OOMWATCH_ALLOWED_HOSTS/, `${path}: the body says what to set`)
    t.notMatch(answer.body, /oomwatch_up|<svg|<html/i, `${path}: and nothing of the route`)
  }
  const ws = await handshake(port, { headers: { host: evil }, origin: `http://${evil}` })
  t.same(ws[0], 421, 'the stream refuses the rebinding page too')
  t.match(ws[1], /--allowed-hosts \/ OOMWATCH_ALLOWED_HOSTS/)
  // The kubelet's probes carry the pod's IP, or whatever its httpGet names: up or down is all they tell.
  t.equal((await get(port, '/livez', { host: evil })).status, 200, '/livez answers any host')
  t.equal((await get(port, '/readyz', { host: evil })).status, 200, '/readyz too')
  t.match(
    lines.find(line => line.kind === 'host'),
    { level: 'warn', host: evil, suppressed: 0 },
    'the refusal is logged, with the host named',
  )
})

t.test('the page and the stream work when addressed as 127.0.0.1, localhost, [::1], an IP, or an allowed name', async t => {
  const { port } = await serve(t, { page: loadPageAssets(), allowedHosts: ['oomwatch.internal'] })
  for (const name of ['127.0.0.1', 'localhost', '[::1]', '10.1.2.3', 'oomwatch.internal']) {
    const host = `${name}:${port}`
    const page = await get(port, '/', { host, accept: 'text/html' })
    t.equal(page.status, 200, `${host}: the page`)
    t.match(page.body, /<html/i)
    t.equal((await get(port, '/metrics', { host })).status, 200, `${host}: /metrics`)
    // What the page's script does: the stream of its own origin, with its subprotocol.
    t.equal(await handshake(port, { headers: { host }, origin: `http://${host}` }, [PAGE_PROTOCOL]), 'open', `${host}: the stream`)
  }
  t.equal((await get(port, '/metrics', { host: `OOMWATCH.Internal:${port}` })).status, 200, 'names in any case')
  t.equal((await get(port, '/metrics', { host: `evil.example:${port}` })).status, 421, 'a name not listed is still refused')
  t.equal((await get(port, '/metrics', { host: `localhost.:${port}` })).status, 421, 'nor a look-alike of localhost')
})

t.test('with a token, the host is not checked: the token is what keeps a rebinding page out', async t => {
  const { port } = await serve(t, { token: 'a-token-long-enough' })
  t.equal((await get(port, '/metrics', { host: 'oomwatch.svc:9' })).status, 401)
  t.equal((await get(port, '/metrics', { host: 'oomwatch.svc:9', authorization: 'Bearer a-token-long-enough' })).status, 200)
  t.equal(await handshake(port, { headers: { host: 'oomwatch.svc:9', authorization: 'Bearer a-token-long-enough' } }), 'open')
})

// A script in a served SVG must not run with the agent's origin: it could read the stream as the page does.
t.test('flame graphs are served sandboxed: scripts allowed, same origin not', async t => {
  const svg = join(t.testdir(), 'x.svg')
  writeFileSync(svg, '<svg xmlns="http://www.w3.org/2000/svg"><script>fetch("/metrics")</script></svg>')
  const { port } = await serve(t, {}, { flamegraphs: { file: () => svg } })
  const answer = await get(port, '/incidents/1-abc/flamegraph.svg', { host: `127.0.0.1:${port}` })
  t.equal(answer.status, 200)
  const csp = String(answer.headers['content-security-policy'])
  const sandbox = csp
    .split(';')
    .map(part => part.trim())
    .find(part => part.startsWith('sandbox'))
  t.equal(sandbox, 'sandbox allow-scripts', `sandboxed, scripts allowed (search and zoom), nothing else: ${csp}`)
  t.notMatch(csp, /allow-same-origin/)
  t.match(csp, /default-src 'none'/, 'and it still loads nothing')
})

/** A connection that sends the start of a request and stops. */
async function halfSent(t: Test, port: number): Promise<Socket> {
  const socket = tcpConnect(port, '127.0.0.1')
  socket.on('error', () => {})
  t.teardown(() => socket.destroy())
  await once(socket, 'connect')
  socket.write('GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n')
  return socket
}

t.test('at the connection cap, the oldest half-sent request makes room; when none is left, the new connection is closed', async t => {
  const { port, stats, lines } = await serve(t, { maxConnections: 4 })
  const sockets = [await halfSent(t, port), await halfSent(t, port), await halfSent(t, port), await halfSent(t, port)]
  const closedFirst = once(sockets[0]!, 'close')
  t.equal((await get(port, '/livez')).status, 200, 'a probe gets in over a flood of half-sent requests')
  await closedFirst
  t.equal(stats.refusedConnections, 1, 'the oldest half-sent request was closed for it')
  for (const socket of sockets) socket.destroy()

  // Four clients that each sent a whole request: none to evict.
  const clients: WebSocket[] = []
  t.teardown(() => clients.forEach(ws => ws.terminate()))
  for (let i = 0; i < 4; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`)
    clients.push(ws)
    await once(ws, 'open')
  }
  const before = stats.refusedConnections
  const late = tcpConnect(port, '127.0.0.1')
  late.on('error', () => {})
  await once(late, 'close')
  t.equal(stats.refusedConnections, before + 1, 'the new connection is closed at once')
  t.ok(
    clients.every(ws => ws.readyState === WebSocket.OPEN),
    'and the clients stay',
  )
  t.match(
    lines.find(line => line.kind === 'capacity'),
    { level: 'warn', maxConnections: 4, msg: /--max-connections/ },
  )
})

// A flood of refusals must not become a flood of log lines shipped off the node.
t.test('500 refusals make a few log lines, and their counts add up to 500', async t => {
  const { server, port, lines } = await serve(t, { refusalLogWindowMs: 60_000 })
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 10 })
  t.teardown(() => agent.destroy())
  const answers = await Promise.all(Array.from({ length: 500 }, () => get(port, '/metrics', { host: 'evil.example' }, agent)))
  t.ok(answers.every(answer => answer.status === 421))
  await server.close() // writes what is held back
  const host = lines.filter(line => line.kind === 'host')
  t.ok(host.length <= 2, `${host.length} lines`)
  const refusals = host.filter(line => line.summary !== true).length + host.reduce((sum, line) => sum + Number(line.suppressed), 0)
  t.equal(refusals, 500, 'each line is one refusal, plus the ones it says it held back')
  t.match(host.at(-1), { summary: true, suppressed: 499, msg: /^499 more: / })
})
