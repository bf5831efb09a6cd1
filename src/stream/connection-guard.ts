import type { IncomingMessage, Server, ServerOptions } from 'node:http'
import type { Socket } from 'node:net'

/** How long a connection may take, and how many may be open. */
export interface ConnectionLimits {
  /** Open connections at once, HTTP and WebSocket alike. */
  maxConnections: number
  /** A request's headers and whole request must arrive within it; a connection idle twice that long is closed. */
  requestTimeoutMs: number
}

/** The defaults of the settings `--max-connections` and `--request-timeout`, for a server built without them. */
export const DEFAULT_LIMITS: ConnectionLimits = { maxConnections: 256, requestTimeoutMs: 10_000 }

/** What happened to a connection over the cap: an older one still sending its first request was closed for it, or it was. */
export type Overflow = 'evicted' | 'refused'

/** Keep-alive connections idle between requests are closed after this (node's default, kept explicit). */
const KEEP_ALIVE_MS = 5000

/**
 * node:http's own timeouts, shortened: by default a connection that sends half a request
 * is answered 408 only after its 60 s header timeout plus up to 30 s until the next check.
 * To be passed to `createServer`, which alone takes the checking interval.
 */
export function serverTimeouts({ requestTimeoutMs }: Pick<ConnectionLimits, 'requestTimeoutMs'>): ServerOptions {
  return {
    headersTimeout: requestTimeoutMs,
    requestTimeout: requestTimeoutMs,
    keepAliveTimeout: Math.min(KEEP_ALIVE_MS, requestTimeoutMs),
    // Timeouts are checked this often: a tenth of the timeout, within 250 ms to 1 s.
    connectionsCheckingInterval: Math.min(1000, Math.max(250, Math.floor(requestTimeoutMs / 10))),
  }
}

/**
 * Caps the open connections of `server` (WebSocket clients stay connections of it) and
 * closes a connection idle for twice the request timeout (ws turns that off on its own
 * sockets): a response its client stopped reading, say.
 * At the cap, a new connection closes the oldest one that has not yet sent a whole request
 * head, so that a flood of half-sent requests cannot keep out a probe or a client whose
 * request comes at once; when every connection has sent one, the new one is closed.
 * Returns its own undo.
 */
export function guardConnections(
  server: Server,
  limits: ConnectionLimits,
  onOverflow: (what: Overflow, remote: string | undefined) => void,
): () => void {
  const open = new Set<Socket>()
  // In order of arrival: the first is the oldest.
  const waiting = new Set<Socket>()
  const onConnection = (socket: Socket): void => {
    if (open.size >= limits.maxConnections) {
      const oldest = first(waiting)
      if (oldest === undefined) {
        onOverflow('refused', socket.remoteAddress)
        socket.destroy()
        return
      }
      forget(oldest)
      onOverflow('evicted', oldest.remoteAddress)
      oldest.destroy()
    }
    open.add(socket)
    waiting.add(socket)
    // Twice the request timeout: a half-sent request is answered 408 by node first.
    socket.setTimeout(2 * limits.requestTimeoutMs, () => socket.destroy())
    socket.once('close', () => forget(socket))
  }
  const forget = (socket: Socket): void => {
    open.delete(socket)
    waiting.delete(socket)
  }
  const headed = (req: IncomingMessage): void => void waiting.delete(req.socket)
  server.on('connection', onConnection)
  server.on('request', headed)
  server.on('upgrade', headed)
  return () => {
    server.off('connection', onConnection)
    server.off('request', headed)
    server.off('upgrade', headed)
  }
}

function first<T>(set: Set<T>): T | undefined {
  for (const item of set) return item
  return undefined
}
