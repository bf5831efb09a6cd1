import { once } from 'node:events'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { WebSocket } from 'ws'
import { createLogger } from '../../src/log.js'
import { MemoryHistory, memoryFrame } from '../../src/page/memory-history.js'
import { loadPageAssets } from '../../src/page/assets.js'
import { Greeter } from '../../src/stream/greeting.js'
import { PAGE_PROTOCOL, StreamServer, type StreamSettings, type StreamSources } from '../../src/stream/server.js'
import { runCli } from '../helpers/cli.js'
import { EventHub } from '../../src/hub.js'
import { messageText } from '../helpers/client.js'
import { arrayReplay } from '../helpers/replay-stub.js'

/** A port that was free a moment ago: the CLI must be polled before it listens. */
async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise(resolve => server.close(resolve))
  return port
}

/** `status` or `refused`, and the body. */
async function probe(port: number, path: string): Promise<[number | 'refused', string]> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`)
    return [res.status, await res.text()]
  } catch {
    return ['refused', '']
  }
}

t.test('/livez and /readyz across the start and stop of the real agent', async t => {
  const port = await freePort()
  const run = runCli([], { OOMWATCH_PORT: String(port) })
  t.teardown(() => void run.child.kill('SIGKILL'))
  const seen: Record<'/livez' | '/readyz', (number | 'refused')[]> = { '/livez': [], '/readyz': [] }
  let ready: [number | 'refused', string] = ['refused', '']
  while (ready[0] !== 200 || seen['/livez'].at(-1) !== 200) {
    for (const path of ['/livez', '/readyz'] as const) {
      const answer = await probe(port, path)
      if (seen[path].at(-1) !== answer[0]) seen[path].push(answer[0])
      if (path === '/readyz') ready = answer
    }
  }
  t.equal(seen['/livez'][0], 'refused', 'nothing answers while the agent starts (finding py-spy, opening the journal)')
  t.same(seen['/livez'].slice(1), [200], 'then live, and never a failure')
  t.equal(seen['/readyz'][0], 'refused')
  t.ok(
    seen['/readyz'].slice(1).every(status => status === 503 || status === 200),
    `then 503 until the first scan is done, then 200: ${seen['/readyz'].join(' ')}`,
  )
  t.match(
    ready[1],
    /^ready\npy-spy 0\.4\.2 at \/.*py-spy\n$/,
    'readiness says which py-spy it found: its presence is known when it is ready',
  )

  run.child.kill('SIGTERM')
  const stopping: (number | 'refused')[] = []
  for (let answer = await probe(port, '/livez'); ; answer = await probe(port, '/livez')) {
    if (stopping.at(-1) !== answer[0]) stopping.push(answer[0])
    if (answer[0] === 'refused') break
    if (answer[0] === 503) t.equal(answer[1], 'not live: stopping, or the watch loop has stalled\n')
  }
  t.ok(
    stopping.every(status => status === 200 || status === 503 || status === 'refused'),
    `while stopping: ${stopping.join(' ')}`,
  )
  t.equal((await run.done).code, 0)
})

/** A StreamServer with the settings and sources under test, on port 0, closed at teardown. */
async function serve(t: Test, settings: Partial<StreamSettings>, sources: Partial<StreamSources> = {}) {
  const hub = new EventHub()
  const server = new StreamServer(
    { host: '127.0.0.1', port: 0, heartbeatMs: 60_000, maxClients: 10, clientBufferBytes: 8 << 20, ...settings },
    {
      status: { ready: true, live: true, readyNote: undefined },
      greeting: {
        greet: () => ({ hello: hub.greet({ type: 'error', code: 'CLIENT_MESSAGE_UNSUPPORTED', message: 'hello stand-in' }) }),
        clientError: message => hub.greet({ type: 'error', code: 'CLIENT_MESSAGE_UNSUPPORTED', message }),
      },
      logger: createLogger('silent'),
      ...sources,
    },
  )
  const port = await server.listen()
  t.teardown(() => server.close())
  hub.subscribeAll(server.sink)
  return { server, port, hub }
}

t.test('/livez fails once the agent stops; /readyz reports a missing py-spy without failing', async t => {
  const status = { ready: true, live: true, readyNote: 'py-spy missing: not found; incidents will carry no stack' }
  const { port } = await serve(t, {}, { status })
  t.same(await probe(port, '/livez'), [200, 'ok\n'])
  t.same(
    await probe(port, '/readyz'),
    [200, 'ready\npy-spy missing: not found; incidents will carry no stack\n'],
    'ready, and says so in the body',
  )
  status.live = false
  t.same(await probe(port, '/livez'), [503, 'not live: stopping, or the watch loop has stalled\n'])
})

/** A page of three files, as the build makes them. */
const PAGE = new Map([
  ['/', { contentType: 'text/html; charset=utf-8', body: '<!doctype html><script src="/page.js"></script>' }],
  ['/page.js', { contentType: 'text/javascript; charset=utf-8', body: 'console.log(1)\n' }],
  ['/page.css', { contentType: 'text/css; charset=utf-8', body: Buffer.from('body{margin:0}\n') }],
])

t.test('GET /: the live page for a browser, 426 for everything else', async t => {
  const assets = loadPageAssets()
  const { port } = await serve(t, { page: assets })
  const page = await fetch(`http://127.0.0.1:${port}/`, { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } })
  t.equal(page.status, 200)
  t.equal(page.headers.get('content-type'), 'text/html; charset=utf-8')
  t.equal(
    page.headers.get('content-security-policy'),
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    'nothing inline, nothing from elsewhere: the page may talk to its agent only',
  )
  t.equal(page.headers.get('x-content-type-options'), 'nosniff')
  const html = await page.text()
  t.match(html, /^<!doctype html>/)
  t.notMatch(html, /<style|<script>|@import|url\(/, 'no inline script or style')
  t.match(html, /<script type="module" src="\/page\/app\/main\.js"><\/script>/, 'its script, from the agent')
  t.notMatch(html, /https?:\/\//, 'no address elsewhere')
  for (const [path, asset] of assets) {
    t.notMatch(asset.body.toString(), /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, `${path}: no address but the SVG namespace`)
    if (path === '/') continue
    const file = await fetch(`http://127.0.0.1:${port}${path}`)
    t.equal(file.status, 200, `${path} is served to any client`)
    t.equal(file.headers.get('content-type'), asset.contentType)
  }
  const size = [...assets.values()].reduce((sum, asset) => sum + asset.body.length, 0)
  t.ok(size < 60_000, `small (${size} bytes in ${assets.size} files)`)
  const other = await fetch(`http://127.0.0.1:${port}/`)
  t.equal(other.status, 426, "curl's */* still gets Upgrade Required")
  t.match(await other.text(), /streams events over WebSocket/)
  const { port: bare } = await serve(t, {})
  t.equal(
    (await fetch(`http://127.0.0.1:${bare}/`, { headers: { accept: 'text/html' } })).status,
    426,
    'a server without a page: 426 as before',
  )
})

t.test("the page's script and style: on GET, with their type, nosniff, and no token (like the page)", async t => {
  const { port } = await serve(t, { page: PAGE, token: 's3cret-token' })
  for (const [path, type, body] of [
    ['/page.js', 'text/javascript; charset=utf-8', 'console.log(1)\n'],
    ['/page.css', 'text/css; charset=utf-8', 'body{margin:0}\n'],
  ] as const) {
    const res = await fetch(`http://127.0.0.1:${port}${path}`)
    t.equal(res.status, 200, path)
    t.equal(res.headers.get('content-type'), type)
    t.equal(res.headers.get('x-content-type-options'), 'nosniff')
    t.equal(await res.text(), body)
  }
  t.equal((await fetch(`http://127.0.0.1:${port}/page.js`, { method: 'HEAD' })).status, 200, 'HEAD too')
  const post = await fetch(`http://127.0.0.1:${port}/page.js`, { method: 'POST', body: 'x' })
  t.equal(post.status, 405, 'nothing else')
  t.equal(post.headers.get('allow'), 'GET, HEAD')
  t.same(await probe(port, '/page.map'), [404, 'not found\n'], 'a file the page does not have')
  t.equal((await probe(port, '/metrics'))[0], 404, 'no metrics source: 404')
})

t.test('/metrics and flame graphs read their sources, behind the token', async t => {
  const metrics = { text: async () => ({ contentType: 'text/plain; version=0.0.4', body: 'oomwatch_info 1\n' }) }
  const asked: string[] = []
  const flamegraphs = {
    file: (id: string) => {
      asked.push(id)
      return id === 'inc-1' ? new URL(import.meta.url).pathname : undefined
    },
  }
  const { port } = await serve(t, { token: 's3cret-token' }, { metrics, flamegraphs })
  t.equal((await probe(port, '/metrics'))[0], 401)
  t.same(await probe(port, '/metrics?token=s3cret-token'), [200, 'oomwatch_info 1\n'])
  const svg = await fetch(`http://127.0.0.1:${port}/incidents/inc-1/flamegraph.svg`, { headers: { authorization: 'Bearer s3cret-token' } })
  t.equal(svg.status, 200)
  t.equal(svg.headers.get('content-type'), 'image/svg+xml')
  t.match(await svg.text(), /flame graphs read their sources/, 'the file the lookup named')
  t.equal((await probe(port, '/incidents/inc%2/flamegraph.svg?token=s3cret-token'))[0], 404, 'a malformed escape matches nothing')
  t.same(asked, ['inc-1', 'inc%2'])
})

/** Opens a WebSocket with subprotocols; resolves with the chosen one, or the refusal's status. */
function open(
  port: number,
  protocols: string[],
  query = '',
): Promise<{ ws?: WebSocket; protocol?: string; status?: number; error?: string; frames: string[] }> {
  return new Promise(resolve => {
    const frames: string[] = []
    const ws = new WebSocket(`ws://127.0.0.1:${port}/${query}`, protocols)
    ws.on('message', data => frames.push(messageText(data)))
    ws.on('open', () => resolve({ ws, protocol: ws.protocol, frames }))
    ws.on('unexpected-response', (_req, res: IncomingMessage) => resolve({ status: res.statusCode ?? 0, frames }))
    ws.on('error', error => resolve({ error: error.message, frames }))
  })
}

t.test('a browser sends the token as the subprotocol bearer.<token>; it is never echoed back', async t => {
  const { port } = await serve(t, { token: 's3cret-token' })
  const ok = await open(port, [PAGE_PROTOCOL, 'bearer.s3cret-token'])
  t.teardown(() => ok.ws?.terminate())
  t.equal(ok.protocol, 'oomwatch', 'accepted, with the page protocol chosen')
  const alone = await open(port, ['bearer.s3cret-token'])
  t.teardown(() => alone.ws?.terminate())
  t.same(alone, { error: 'Server sent no subprotocol', frames: [] }, 'offered alone, it is not chosen: the client fails the handshake')
  t.equal((await open(port, [PAGE_PROTOCOL, 'bearer.wrong'])).status, 401, 'a wrong token is refused')
  t.equal((await open(port, [PAGE_PROTOCOL, 'bearer.'])).status, 401, 'an empty one too')
  t.equal((await open(port, [PAGE_PROTOCOL])).status, 401, 'and no token at all')
  t.equal((await open(port, ['other', 'bearer.s3cret-token'])).protocol, 'other', 'another protocol is chosen over the token')
})

t.test('?memory=1: the kept history after the greeting, then each sample through the hub; other clients get none', async t => {
  const hub = new EventHub(7)
  const history = new MemoryHistory(10_000)
  hub.subscribeAll(history.sink)
  const info = (pid: number, rss: number) => ({ pid, rssBytes: rss, limitBytes: 1000 })
  hub.publish(memoryFrame([info(1, 100), info(2, 200)], 1_000))
  hub.publish(memoryFrame([info(1, 150)], 2_000)) // pid 2 is gone: forgotten
  hub.publish(memoryFrame([info(1, 175)], 13_000)) // past the 10 s kept: the first two points go
  const journal = { replay: () => arrayReplay([]) }
  const hello = { version: '0.1.0', startedAt: new Date().toISOString(), config: {}, pyspy: { error: 'not found', remedy: 'install it' } }
  const status = { processes: () => [] }
  const greeting = new Greeter({ hub, journal, hello, status, usage: { current: { pid: process.pid } }, history })
  const { port, server } = await serve(t, {}, { greeting })
  hub.subscribeAll(server.sink)
  const page = await open(port, [], '?memory=1')
  const plain = await open(port, [])
  t.teardown(() => (page.ws?.terminate(), plain.ws?.terminate()))
  while (page.frames.length < 2) await once(page.ws!, 'message')
  t.match(JSON.parse(page.frames[0]!), { type: 'hello', seq: 7 })
  t.same(JSON.parse(page.frames[1]!), {
    type: 'memory',
    processes: [{ pid: 1, limitBytes: 1000, points: [[13_000, 175]] }],
    seq: 7,
    ts: (JSON.parse(page.frames[1]!) as { ts: unknown }).ts,
  })
  const sample = hub.publish(memoryFrame([info(1, 180)], 14_000))
  t.equal(sample.seq, 7, 'a memory frame takes no seq: stamped at the current one')
  const marker = hub.emit({
    type: 'flamegraph',
    incidentId: 'inc-1',
    pid: 1,
    error: { code: 'FLAMEGRAPH_TARGET_GONE', message: 'marker', remedy: 'none' },
  })
  t.equal(marker.seq, 8, 'so the next event follows without a gap')
  while (page.frames.length < 4) await once(page.ws!, 'message')
  t.same(Object.keys(JSON.parse(page.frames[2]!) as Record<string, unknown>), ['type', 'processes', 'seq', 'ts'], 'the frame as before')
  t.same(JSON.parse(page.frames[2]!), { ...sample }, 'one point per process per sample')
  t.match(JSON.parse(page.frames[3]!), { type: 'flamegraph', seq: 8 })
  while (plain.frames.length < 2) await once(plain.ws!, 'message')
  t.same(
    plain.frames.map(f => (JSON.parse(f) as { type: unknown }).type),
    ['hello', 'flamegraph'],
    'a client that did not ask gets no memory frames',
  )
  t.same(history.history().processes[0]?.points.at(-1), [14_000, 180], 'the history kept the sample')
})
