import { IN_GUEST } from './guest.js'
import { WebSocket, type RawData } from 'ws'
import type { OomwatchEvent } from '../../src/protocol/events.js'

/** How long an awaited event may take: longer in the emulated v2 guest, where an agent under Node 24 once needed over 30 s to see its first process. */
const DEFAULT_WAIT_MS = IN_GUEST ? 90_000 : 30_000

/** An event as a client received it, with the monotonic time of its arrival. */
export type Received = OomwatchEvent & { receivedAt: number }

/** A message's text. `ws` hands a text frame over as one Buffer (binaryType 'nodebuffer', the default). */
export function messageText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString()
  return (Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)).toString()
}

/** A real WebSocket client that keeps every event it receives. */
export interface TestClient {
  events: Received[]
  /** How the connection ended, once it has. */
  closed?: { code: number; reason: string }
  /** Resolves with the first event (already received or to come) that matches. */
  waitFor<T extends Received>(match: (event: Received) => event is T, timeoutMs?: number): Promise<T>
  waitFor(match: (event: Received) => boolean, timeoutMs?: number): Promise<Received>
  close(): void
}

export async function connect(
  port: number,
  options: {
    headers?: Record<string, string>
    query?: string
    onEvent?: (event: Received) => void
    parse?: (text: string) => unknown
  } = {},
): Promise<TestClient> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/${options.query ? `?${options.query}` : ''}`, { headers: options.headers ?? {} })
  const events: Received[] = []
  const waiters = new Set<() => void>()
  const client = { events } as TestClient
  ws.on('close', (code, reason) => {
    client.closed = { code, reason: String(reason) }
  })
  ws.on('message', data => {
    const event = { ...((options.parse ?? JSON.parse)(messageText(data)) as OomwatchEvent), receivedAt: performance.now() }
    options.onEvent?.(event)
    events.push(event)
    for (const wake of waiters) wake()
  })
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
  })
  const waitFor = (match: (event: Received) => boolean, timeoutMs = DEFAULT_WAIT_MS) =>
    new Promise<Received>((resolve, reject) => {
      const check = () => {
        const found = events.find(match)
        if (!found) return
        cleanup()
        resolve(found)
      }
      const timer = setTimeout(() => {
        cleanup()
        const closed = client.closed ? ` (the connection closed: ${client.closed.code} ${client.closed.reason})` : ''
        const got = events.map(e => `${e.type}${'pid' in e ? `(${e.pid})` : ''}`)
        reject(
          new Error(
            `no matching event within ${timeoutMs} ms${closed}; got ${got.length}: ${got.slice(0, 5).join(' ')} ... ${got.slice(-5).join(' ')}`,
          ),
        )
      }, timeoutMs)
      const cleanup = () => {
        clearTimeout(timer)
        waiters.delete(check)
      }
      waiters.add(check)
      check()
    })
  return Object.assign(client, { waitFor, close: () => ws.close() })
}

/** Tries a WebSocket upgrade that should be refused; resolves with the HTTP status and body. */
export function refusal(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers })
    ws.on('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', chunk => (body += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    ws.on('open', () => {
      ws.close()
      reject(new Error(`the upgrade to ${path} was accepted`))
    })
    ws.on('error', () => {}) // the refusal also surfaces as an error after unexpected-response
  })
}
