import { createReadStream } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import type * as Ws from 'ws'
import { protocolTokenMatches, sentTokenMatches, tokenMatches } from './auth.js'
import { formatText } from './text-format.js'
import type { MemoryFrame, OomwatchEvent } from '../protocol/events.js'

// ws through require rather than import (its ESM entry, wrapper.mjs, wraps the same CommonJS
// code): measured 4-6 MiB less resident memory for the agent (bench/cost.mjs).
const { WebSocket, WebSocketServer } = createRequire(import.meta.url)('ws') as typeof import('ws')
type WebSocket = Ws.WebSocket
type WebSocketServer = Ws.WebSocketServer

/** How the stream server listens and whom it lets in. */
export interface StreamOptions {
  host: string
  /** 0 picks a free port. */
  port: number
  /**
   * When set, clients must send `Authorization: Bearer <token>`, or (browsers, which
   * cannot set headers on a WebSocket) the subprotocol `bearer.<token>`. `/metrics` and
   * flame graphs take the header or `?token=<token>`.
   */
  token?: string
  /** Ping interval; a client that missed the previous pong is dropped. */
  heartbeatMs: number
  /** Clients at once; more are refused with 503. */
  maxClients: number
  /** Unsent bytes a client may lag behind before it is closed as too slow. */
  clientBufferBytes: number
  /** Browser origins allowed besides the agent's own (same host as the request). */
  allowedOrigins?: string[]
  /**
   * The frames a new client gets before the live stream: its `hello`, then with
   * `?since=SEQ` every kept event after SEQ. Called synchronously on connection, so no
   * live event can fall between them: no gap, no duplicate.
   */
  greet: (since: number | undefined) => OomwatchEvent[]
  /** An error frame for one client (stamped at the current seq). */
  clientError: (message: string) => OomwatchEvent
  /** True once the first scan is done; `/readyz` answers 503 before. */
  isReady: () => boolean
  /** Said in `/readyz`'s body (py-spy missing, say) without failing it. */
  readyNote?: () => string | undefined
  /** False once the agent is stopping: `/livez` answers 503. Default: live while it serves. */
  isLive?: () => boolean
  /** `GET /metrics`: the Prometheus exposition. Absent: 404. */
  metrics?: () => Promise<{ contentType: string; body: string }>
  /** The SVG file of an incident's flame graph (`GET /incidents/<id>/flamegraph.svg`), when kept. */
  flamegraphFile?: (incidentId: string) => string | undefined
  /** The live page's files by URL path (`loadPageAssets`); `/` only to browsers (`Accept: text/html`). */
  page?: ReadonlyMap<string, { contentType: string; body: Buffer }>
  /** The memory history a page client (`?memory=1`) gets after its greeting. */
  memoryHistory?: () => MemoryFrame
  logger: Logger
}

/** The subprotocol the live page offers (beside `bearer.<token>`); chosen when offered. */
export const PAGE_PROTOCOL = 'oomwatch'

/** Clients send nothing the protocol defines yet: a tiny frame limit. */
const MAX_PAYLOAD = 4096
/** Messages a client may send (each answered by an error frame) before it is closed. */
const MAX_BAD_MESSAGES = 5
/** A client closed (for slowness, or at stop) that has not closed after this is terminated. */
const CLOSE_GRACE_MS = 1000
/** How often each client's unsent backlog is checked against its allowance. */
const BACKLOG_CHECK_MS = 1000
/** A backlog this many times the allowance is cut at once, without waiting for the check. */
const FLOOD_FACTOR = 4

const FLAMEGRAPH_PATH = /^\/incidents\/([^/]+)\/flamegraph\.svg$/
/** The page loads its script and style from this agent, runs nothing inline, and talks to this agent only. */
const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
/** py-spy's SVG runs its own script (search, zoom) and loads nothing. */
const SVG_CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"

/** How a client reads events: JSON objects (the default), or text blocks for people (`?format=text`). */
type Format = 'json' | 'text'

/** What a client asked for in its URL. */
interface ClientWants {
  since: number | undefined
  format: Format
  /** Memory frames, for the live page (`?memory=1`). */
  memory: boolean
}

interface Client extends WebSocket {
  isAlive?: boolean
  badMessages?: number
  /** The backlog was past the allowance at the last check. */
  wasOver?: boolean
  format?: Format
  memory?: boolean
  /** Closed for slowness: what is not sent to it from then on counts as dropped. */
  cut?: boolean
}

/**
 * HTTP server with the WebSocket stream at `/`, plus `/livez`, `/readyz`, `/metrics`,
 * flame graphs and the live page. Each event is serialised once as JSON and, while a
 * text client is connected, rendered once as text; each client gets it as one text frame.
 */
export class StreamServer {
  readonly #options: StreamOptions
  readonly #http: Server
  readonly #wss: WebSocketServer
  #heartbeat: NodeJS.Timeout | undefined
  #backlogCheck: NodeJS.Timeout | undefined
  #closing: Promise<void> | undefined
  #dropped = 0

  constructor(options: StreamOptions) {
    this.#options = options
    this.#http = createServer((req, res) => this.#onRequest(req, res))
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: MAX_PAYLOAD, clientTracking: true, handleProtocols: chooseProtocol })
    this.#http.on('upgrade', (req, socket, head) => this.#onUpgrade(req, socket, head))
    this.#wss.on('connection', (ws: Client, _req: IncomingMessage, wants: ClientWants) => this.#onConnection(ws, wants))
  }

  /** Starts listening; resolves with the bound port. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#http.once('error', reject)
      this.#http.listen(this.#options.port, this.#options.host, () => {
        this.#http.off('error', reject)
        this.#heartbeat = setInterval(() => this.#ping(), this.#options.heartbeatMs)
        this.#heartbeat.unref()
        this.#backlogCheck = setInterval(() => this.#checkBacklogs(), BACKLOG_CHECK_MS)
        this.#backlogCheck.unref()
        resolve((this.#http.address() as AddressInfo).port)
      })
    })
  }

  /** Sends one event to every connected client. */
  broadcast(event: OomwatchEvent): void {
    // Encoded once: ws would otherwise copy the string into a new Buffer for every client.
    const frame = Buffer.from(JSON.stringify(event))
    let text: Buffer | undefined
    for (const ws of this.#wss.clients as Set<Client>) {
      if (ws.format === 'text') text ??= Buffer.from(formatText(event))
      this.#send(ws, ws.format === 'text' ? text! : frame)
    }
  }

  /** Sends a memory frame to the clients that asked for them (the live page). */
  broadcastMemory(memory: MemoryFrame): void {
    let frame: Buffer | undefined
    for (const ws of this.#wss.clients as Set<Client>) {
      if (ws.memory) this.#send(ws, (frame ??= Buffer.from(JSON.stringify(memory))))
    }
  }

  get clientCount(): number {
    return this.#wss.clients.size
  }

  /** Frames not sent, since the start, to clients closed as too slow. */
  get droppedEvents(): number {
    return this.#dropped
  }

  /** Closes every client with 1001 (going away) and stops listening. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= new Promise(resolve => {
      clearInterval(this.#heartbeat)
      clearInterval(this.#backlogCheck)
      for (const ws of this.#wss.clients) ws.close(1001, 'oomwatch is stopping')
      // A client that does not answer the close frame would hold the stop for ws's 30 s.
      const laggards = setTimeout(() => {
        for (const ws of this.#wss.clients) ws.terminate()
      }, CLOSE_GRACE_MS)
      this.#wss.close()
      this.#http.close(() => {
        clearTimeout(laggards)
        resolve()
      })
      this.#http.closeAllConnections()
    })
    return this.#closing
  }

  #send(ws: Client, frame: string | Buffer): void {
    if (ws.readyState !== WebSocket.OPEN) {
      if (ws.cut) this.#dropped++
      return
    }
    // A burst (a scan that finds many processes) is sent within one tick, before any of it
    // reaches the socket: the backlog is judged by the periodic check, and here only a
    // flood far past the allowance is cut at once, to bound memory.
    if (ws.bufferedAmount > this.#options.clientBufferBytes * FLOOD_FACTOR) {
      this.#dropped++
      return this.#closeSlow(ws)
    }
    ws.send(frame, { binary: false })
  }

  /**
   * Closes the clients whose backlog was past the allowance at two checks in a row: one
   * burst on a busy node is forgiven, a client that stopped reading is not.
   */
  #checkBacklogs(): void {
    for (const ws of this.#wss.clients as Set<Client>) {
      if (ws.readyState !== WebSocket.OPEN) continue
      const over = ws.bufferedAmount > this.#options.clientBufferBytes
      if (over && ws.wasOver) this.#closeSlow(ws)
      ws.wasOver = over
    }
  }

  #closeSlow(ws: Client): void {
    ws.cut = true
    this.#options.logger.warn({ bufferedBytes: ws.bufferedAmount }, 'closing a client that does not keep up')
    ws.close(1013, `too slow: more than ${this.#options.clientBufferBytes} bytes unsent; reconnect with ?since=SEQ`)
    // The close frame waits behind the backlog; a client that reads nothing never sees it.
    setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref()
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = requestUrl(req)
    if (url === undefined) return reply(res, 400, 'the request target is not a URL\n')
    const path = url.pathname
    const options = this.#options
    if (path === '/livez') return options.isLive?.() === false ? reply(res, 503, 'not live: stopping, or the watch loop has stalled\n') : reply(res, 200, 'ok\n')
    if (path === '/readyz') {
      if (!options.isReady()) return reply(res, 503, 'starting: first scan not done\n')
      const note = options.readyNote?.()
      return reply(res, 200, note === undefined ? 'ready\n' : `ready\n${note}\n`)
    }
    const asset = options.page?.get(path)
    if (path === '/' && (asset === undefined || !/\btext\/html\b/.test(req.headers.accept ?? ''))) {
      return reply(res, 426, 'oomwatch streams events over WebSocket here: wscat -c ws://HOST:PORT/ (a browser gets the live page)\n')
    }
    if (asset) {
      res.writeHead(200, { 'content-type': asset.contentType, 'content-security-policy': PAGE_CSP, 'x-content-type-options': 'nosniff', 'cache-control': 'no-cache' })
      return void res.end(asset.body)
    }
    const flamegraph = FLAMEGRAPH_PATH.exec(path)
    const metrics = path === '/metrics' ? options.metrics : undefined
    const flamegraphFile = flamegraph ? options.flamegraphFile : undefined
    if (!metrics && !flamegraphFile) return reply(res, 404, 'not found\n')
    if (!this.#httpAuthorized(req, url)) {
      res.setHeader('www-authenticate', 'Bearer')
      return reply(res, 401, 'send Authorization: Bearer <token>, or ?token=<token>\n')
    }
    if (metrics) {
      return void metrics().then(
        ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
        /* c8 ignore next */ (error: Error) => reply(res, 500, `metrics failed: ${error.message}\n`), // prom-client rejects only for a broken collect()
      )
    }
    const file = flamegraphFile?.(safeDecode(flamegraph![1]!))
    if (file === undefined) return reply(res, 404, 'no flame graph for this incident (none was recorded, or it was pruned)\n')
    res.writeHead(200, { 'content-type': 'image/svg+xml', 'content-security-policy': SVG_CSP, 'x-content-type-options': 'nosniff' })
    createReadStream(file)
      .on('error', () => res.destroy())
      .pipe(res)
  }

  /** `/metrics` and flame graphs show pids, command names and stacks: the token guards them like the stream. */
  #httpAuthorized(req: IncomingMessage, url: URL): boolean {
    const { token } = this.#options
    return token === undefined || tokenMatches(req.headers.authorization, token) || sentTokenMatches(url.searchParams.get('token') ?? '', token)
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = requestUrl(req)
    if (!url) return refuse(socket, 400, 'Bad Request', 'the request target is not a URL')
    if (url.pathname !== '/') return refuse(socket, 404, 'Not Found', 'the stream is at /')
    const { token } = this.#options
    if (token !== undefined && !tokenMatches(req.headers.authorization, token) && !protocolTokenMatches(req.headers['sec-websocket-protocol'], token)) {
      this.#options.logger.warn({ remote: req.socket.remoteAddress }, 'refused a client without the bearer token')
      return refuse(socket, 401, 'Unauthorized', 'send Authorization: Bearer <token> (from a browser: the subprotocol bearer.<token>)')
    }
    if (!this.#originAllowed(req)) {
      this.#options.logger.warn({ origin: req.headers.origin }, 'refused a browser client from another origin')
      return refuse(socket, 403, 'Forbidden', 'this origin is not allowed: see --allowed-origins / OOMWATCH_ALLOWED_ORIGINS')
    }
    if (this.#wss.clients.size >= this.#options.maxClients) {
      return refuse(socket, 503, 'Service Unavailable', `${this.#options.maxClients} clients already: see --max-clients / OOMWATCH_MAX_CLIENTS`)
    }
    const sinceText = url.searchParams.get('since')
    if (sinceText !== null && !/^\d{1,15}$/.test(sinceText)) {
      return refuse(socket, 400, 'Bad Request', `since must be the seq of the last event received (a whole number), not "${sinceText.slice(0, 40)}"`)
    }
    const format = url.searchParams.get('format') ?? 'json'
    if (format !== 'json' && format !== 'text') {
      return refuse(socket, 400, 'Bad Request', `format must be json (the default) or text, not "${format.slice(0, 40)}"`)
    }
    const wants: ClientWants = { since: sinceText === null ? undefined : Number(sinceText), format, memory: url.searchParams.get('memory') === '1' }
    this.#wss.handleUpgrade(req, socket, head, ws => this.#wss.emit('connection', ws, req, wants))
  }

  /** Browsers always send Origin; other clients (wscat, scripts) do not and need the token instead. */
  #originAllowed(req: IncomingMessage): boolean {
    const origin = req.headers.origin
    if (origin === undefined) return true
    if (this.#options.allowedOrigins?.includes(origin)) return true
    try {
      return new URL(origin).host === req.headers.host
    } catch {
      return false
    }
  }

  #onConnection(ws: Client, wants: ClientWants): void {
    ws.format = wants.format
    ws.memory = wants.memory
    ws.isAlive = true
    ws.on('pong', () => {
      ws.isAlive = true
    })
    // ws closes an oversized frame's sender with 1009 and reports it here.
    ws.on('error', error => this.#options.logger.debug({ err: error.message }, 'client error'))
    ws.on('message', (_data, isBinary) => this.#onClientMessage(ws, isBinary))
    for (const event of this.#options.greet(wants.since)) this.#send(ws, this.#encode(ws, event))
    if (wants.memory && this.#options.memoryHistory) this.#send(ws, JSON.stringify(this.#options.memoryHistory()))
  }

  #encode(ws: Client, event: OomwatchEvent): string {
    return ws.format === 'text' ? formatText(event) : JSON.stringify(event)
  }

  /** The protocol defines nothing for clients to send: each message gets an error frame, then a close. */
  #onClientMessage(ws: Client, isBinary: boolean): void {
    if (isBinary) return ws.close(1003, 'oomwatch takes no binary messages')
    ws.badMessages = (ws.badMessages ?? 0) + 1
    if (ws.badMessages > MAX_BAD_MESSAGES) return ws.close(1008, 'oomwatch takes no messages; reconnect with ?since=SEQ to replay')
    this.#send(ws, this.#encode(ws, this.#options.clientError('oomwatch takes no messages: it only streams events; to replay, reconnect with ?since=SEQ')))
  }

  #ping(): void {
    for (const ws of this.#wss.clients as Set<Client>) {
      if (!ws.isAlive) {
        ws.terminate()
        continue
      }
      ws.isAlive = false
      ws.ping()
    }
  }
}

/**
 * The subprotocol to answer with: the page's own when offered, so that a `bearer.<token>`
 * is never echoed back. A browser fails a handshake that names none of those it offered.
 */
function chooseProtocol(offered: Set<string>): string | false {
  if (offered.has(PAGE_PROTOCOL)) return PAGE_PROTOCOL
  return [...offered].find(protocol => !protocol.startsWith('bearer.')) ?? [...offered][0] ?? false
}

/**
 * The request's URL, or undefined when its target does not parse: the HTTP parser lets
 * `GET http://[ HTTP/1.1` through, and a throw here would be an uncaught exception that
 * ends the agent. (A server request always has a `url`.)
 */
function requestUrl(req: IncomingMessage): URL | undefined {
  try {
    return new URL(String(req.url), 'http://agent')
  } catch {
    return undefined
  }
}

/** A path segment as sent; a malformed escape stays as it is (and matches no incident). */
function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}

function reply(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(body)
}

/** Answers an upgrade request with an HTTP error and a one-line reason in the body. */
function refuse(socket: Duplex, status: number, text: string, reason: string): void {
  const body = `${reason}\n`
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
}
