import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { protocolTokenMatches, tokenMatches } from './auth.js'
import type { ClientWants } from './client.js'
import type { TokenSource } from './token-source.js'
import { hostAllowed, misdirected } from './host-check.js'
import type { RefusalKind } from './refusal-log.js'

/** The subprotocol the live page offers (beside `bearer.<token>`); chosen when offered. */
export const PAGE_PROTOCOL = 'oomwatch'

/** Whom the stream lets in. */
export interface AdmissionRules {
  /** When set: `Authorization: Bearer <token>`, or the subprotocol `bearer.<token>`; read at each upgrade. */
  token?: TokenSource | undefined
  /** Browser origins allowed besides the agent's own (same host as the request). */
  allowedOrigins?: readonly string[] | undefined
  /** Without a token: host names a request may be addressed to besides localhost and IP addresses. */
  allowedHosts?: readonly string[] | undefined
  /** Clients at once; more are refused with 503. */
  maxClients: number
}

/** An upgrade refused: the HTTP answer, and what to log (a warning, at a bounded rate per kind). */
export interface Refusal {
  status: number
  statusText: string
  reason: string
  warning?: { kind: RefusalKind; fields: Record<string, unknown>; message: string }
}

/**
 * Judges an upgrade request for the stream: what the client wants, or why it is refused.
 * Checked in this order: path, host (without a token), token, origin, room, then the query.
 */
export function admit(req: IncomingMessage, url: URL, rules: AdmissionRules, clients: number): ClientWants | Refusal {
  if (url.pathname !== '/') return refusal(404, 'Not Found', 'the stream is at /')
  const token = rules.token?.current()
  const { authorization, host, 'sec-websocket-protocol': protocols } = req.headers
  const remote = req.socket.remoteAddress
  if (token === undefined && !hostAllowed(host, rules.allowedHosts)) {
    return {
      ...refusal(421, 'Misdirected Request', misdirected(host)),
      warning: { kind: 'host', fields: { remote, host }, message: 'refused a request addressed to an unknown host name' },
    }
  }
  if (token !== undefined && !tokenMatches(authorization, token) && !protocolTokenMatches(protocols, token)) {
    return {
      ...refusal(401, 'Unauthorized', 'send Authorization: Bearer <token> (from a browser: the subprotocol bearer.<token>)'),
      warning: { kind: 'unauthorized', fields: { remote }, message: 'refused a client without the bearer token' },
    }
  }
  if (!originAllowed(req, rules.allowedOrigins)) {
    return {
      ...refusal(403, 'Forbidden', 'this origin is not allowed: see --allowed-origins / OOMWATCH_ALLOWED_ORIGINS'),
      warning: { kind: 'origin', fields: { remote, origin: req.headers.origin }, message: 'refused a browser client from another origin' },
    }
  }
  if (clients >= rules.maxClients) {
    return {
      ...refusal(503, 'Service Unavailable', `${rules.maxClients} clients already: see --max-clients / OOMWATCH_MAX_CLIENTS`),
      warning: { kind: 'clients', fields: { remote }, message: `refused a client: ${rules.maxClients} clients already` },
    }
  }
  const sinceText = url.searchParams.get('since')
  if (sinceText !== null && !/^\d{1,15}$/.test(sinceText)) {
    return refusal(400, 'Bad Request', `since must be the seq of the last event received (a whole number), not "${sinceText.slice(0, 40)}"`)
  }
  const format = url.searchParams.get('format') ?? 'json'
  if (format !== 'json' && format !== 'text') {
    return refusal(400, 'Bad Request', `format must be json (the default) or text, not "${format.slice(0, 40)}"`)
  }
  return { since: sinceText === null ? undefined : Number(sinceText), format, memory: url.searchParams.get('memory') === '1' }
}

/** True for a {@link Refusal}, false for what a client wants. */
export function isRefusal(answer: ClientWants | Refusal): answer is Refusal {
  return 'status' in answer
}

/** A refusal with no warning. */
export function refusal(status: number, statusText: string, reason: string): Refusal {
  return { status, statusText, reason }
}

/** Answers an upgrade request with an HTTP error and a one-line reason in the body. */
export function refuse(socket: Duplex, { status, statusText, reason }: Refusal): void {
  const body = `${reason}\n`
  const head = `HTTP/1.1 ${status} ${statusText}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n`
  socket.end(`${head}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
}

/**
 * The subprotocol to answer with: the page's own when offered, else the first that is not a
 * `bearer.<token>`, else none. A token is never echoed back in `Sec-WebSocket-Protocol`
 * (where proxies and browser tools log it): a client that offered only `bearer.*` gets no
 * subprotocol, and a browser (or ws) then fails the handshake, as RFC 6455 and the
 * WHATWG spec say. The page offers `oomwatch` beside its token; other clients send the
 * `Authorization` header.
 */
export function chooseProtocol(offered: Set<string>): string | false {
  if (offered.has(PAGE_PROTOCOL)) return PAGE_PROTOCOL
  return [...offered].find(protocol => !protocol.toLowerCase().startsWith('bearer.')) ?? false
}

/** Browsers always send Origin; other clients (wscat, scripts) do not and need the token instead. */
function originAllowed(req: IncomingMessage, allowed: readonly string[] | undefined): boolean {
  const origin = req.headers.origin
  if (origin === undefined) return true
  if (allowed?.includes(origin)) return true
  try {
    return new URL(origin).host === req.headers.host
  } catch {
    return false
  }
}
