import { once } from 'node:events'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { WebSocket } from 'ws'
import { createLogger } from '../../src/log.js'
import { MemoryHistory, memoryFrame } from '../../src/page/memory-history.js'
import { loadPageAssets } from '../../src/page/assets.js'
import { PAGE_PROTOCOL, StreamServer, type StreamOptions } from '../../src/stream/server.js'
import { startAgent } from '../helpers/agent.js'
import { runCli } from '../helpers/cli.js'
import { EventHub } from '../../src/hub.js'
import type { MemoryFrame, OomwatchEvent } from '../../src/protocol/events.js'

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
  t.ok(seen['/readyz'].slice(1).every(status => status === 503 || status === 200), `then 503 until the first scan is done, then 200: ${seen['/readyz'].join(' ')}`)
  t.match(ready[1], /^ready\npy-spy 0\.4\.2 at \/.*py-spy\n$/, "readiness says which py-spy it found: its presence is known when it is ready")

  run.child.kill('SIGTERM')
  const stopping: (number | 'refused')[] = []
  for (let answer = await probe(port, '/livez'); ; answer = await probe(port, '/livez')) {
    if (stopping.at(-1) !== answer[0]) stopping.push(answer[0])
    if (answer[0] === 'refused') break
    if (answer[0] === 503) t.equal(answer[1], 'not live: stopping, or the watch loop has stalled\n')
  }
  t.ok(stopping.every(status => status === 200 || status === 503 || status === 'refused'), `while stopping: ${stopping.join(' ')}`)
  t.equal((await run.done).code, 0)
})

/** A StreamServer with the options under test, on port 0, closed at teardown. */
async function serve(t: Test, options: Partial<StreamOptions>) {
  const hub = new EventHub()
  const server = new StreamServer({
    host: '127.0.0.1',
    port: 0,
    heartbeatMs: 60_000,
    maxClients: 10,
    clientBufferBytes: 8 << 20,
    greet: () => [hub.greet({ type: 'error', code: 'CLIENT_MESSAGE_UNSUPPORTED', message: 'hello stand-in' })],
    clientError: message => hub.greet({ type: 'error', code: 'CLIENT_MESSAGE_UNSUPPORTED', message }),
    isReady: () => true,
    logger: createLogger('silent'),
    ...options,
  })
  const port = await server.listen()
  t.teardown(() => server.close())
  return { server, port, hub }
}

t.test('/livez fails once the agent stops; /readyz reports a missing py-spy without failing', async t => {
  let live = true
  const { port } = await serve(t, { isLive: () => live, readyNote: () => 'py-spy missing: not found; incidents will carry no stack' })
  t.same(await probe(port, '/livez'), [200, 'ok\n'])
  t.same(await probe(port, '/readyz'), [200, 'ready\npy-spy missing: not found; incidents will carry no stack\n'], 'ready, and says so in the body')
  live = false
  t.same(await probe(port, '/livez'), [503, 'not live: stopping, or the watch loop has stalled\n'])
})

t.test('GET /: the live page for a browser, 426 for everything else', async t => {
  const assets = loadPageAssets()
  const { port } = await serve(t, { page: assets })
  const page = await fetch(`http://127.0.0.1:${port}/`, { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } })
  t.equal(page.status, 200)
  t.equal(page.headers.get('content-type'), 'text/html; charset=utf-8')
  const csp = page.headers.get('content-security-policy') ?? ''
  t.match(csp, /default-src 'none'.*script-src 'self'; style-src 'self'.*connect-src 'self'/, 'the page may load from and talk to its agent only')
  t.notMatch(csp, /unsafe-inline/, 'and runs nothing inline')
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
  const { port: bare } = await serve(t, {})
  t.equal((await fetch(`http://127.0.0.1:${bare}/`, { headers: { accept: 'text/html' } })).status, 426, 'a server without a page: 426 as before')
})

/** Opens a WebSocket with subprotocols; resolves with the chosen one, or the refusal's status. */
function open(port: number, protocols: string[], query = ''): Promise<{ ws?: WebSocket; protocol?: string; status?: number; frames: string[] }> {
  return new Promise(resolve => {
    const frames: string[] = []
    const ws = new WebSocket(`ws://127.0.0.1:${port}/${query}`, protocols)
    ws.on('message', data => frames.push(String(data)))
    ws.on('open', () => resolve({ ws, protocol: ws.protocol, frames }))
    ws.on('unexpected-response', (_req, res: IncomingMessage) => resolve({ status: res.statusCode ?? 0, frames }))
    ws.on('error', () => {})
  })
}

t.test('a browser sends the token as the subprotocol bearer.<token>; it is never echoed back', async t => {
  const { port } = await serve(t, { token: 's3cret-token' })
  const ok = await open(port, [PAGE_PROTOCOL, 'bearer.s3cret-token'])
  t.teardown(() => ok.ws?.terminate())
  t.equal(ok.protocol, 'oomwatch', 'accepted, with the page protocol chosen')
  const alone = await open(port, ['bearer.s3cret-token'])
  t.teardown(() => alone.ws?.terminate())
  t.equal(alone.protocol, 'bearer.s3cret-token', 'offered alone, it is the only one to choose')
  t.equal((await open(port, [PAGE_PROTOCOL, 'bearer.wrong'])).status, 401, 'a wrong token is refused')
  t.equal((await open(port, [PAGE_PROTOCOL, 'bearer.'])).status, 401, 'an empty one too')
  t.equal((await open(port, [PAGE_PROTOCOL])).status, 401, 'and no token at all')
  t.equal((await open(port, ['other', 'bearer.s3cret-token'])).protocol, 'other', 'another protocol is chosen over the token')
})

t.test('?memory=1: the kept history after the greeting, then each sample; other clients get none', async t => {
  const history = new MemoryHistory(10_000)
  const info = (pid: number, rss: number) => ({ pid, rssBytes: rss, limitBytes: 1000 })
  history.record([info(1, 100), info(2, 200)], 1_000)
  history.record([info(1, 150)], 2_000) // pid 2 is gone: forgotten
  history.record([info(1, 175)], 13_000) // past the 10 s kept: the first two points go
  const stamp = (payload: object) => ({ ...payload, seq: 0, ts: new Date().toISOString() }) as MemoryFrame
  const { server, port } = await serve(t, { memoryHistory: () => stamp(history.history()) })
  const page = await open(port, [], '?memory=1')
  const plain = await open(port, [])
  t.teardown(() => (page.ws?.terminate(), plain.ws?.terminate()))
  while (page.frames.length < 2) await once(page.ws!, 'message')
  t.same(JSON.parse(page.frames[1]!), { type: 'memory', processes: [{ pid: 1, limitBytes: 1000, points: [[13_000, 175]] }], seq: 0, ts: JSON.parse(page.frames[1]!).ts })
  server.broadcastMemory(stamp(memoryFrame([info(1, 180)], 14_000)))
  server.broadcast({ type: 'error', code: 'CLIENT_MESSAGE_UNSUPPORTED', message: 'marker', seq: 1, ts: '' } as OomwatchEvent)
  while (page.frames.length < 4) await once(page.ws!, 'message')
  t.match(JSON.parse(page.frames[2]!), { type: 'memory', processes: [{ pid: 1, points: [[14_000, 180]] }] }, 'one point per process per sample')
  while (plain.frames.length < 2) await once(plain.ws!, 'message')
  t.same(plain.frames.map(f => JSON.parse(f).type), ['error', 'error'], 'a client that did not ask gets no memory frames')
})
