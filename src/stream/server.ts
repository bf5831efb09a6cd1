import type * as Http from 'node:http'
import type { IncomingMessage, Server } from 'node:http'
import { createRequire } from 'node:module'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import type * as Ws from 'ws'
import { Client, CLOSE_GRACE_MS } from './client.js'
import { DEFAULT_LIMITS, guardConnections, serverTimeouts, type Overflow } from './connection-guard.js'
import type { Greeting } from './greeting.js'
import { requestUrl } from './request-url.js'
import { routes, type FlamegraphFiles, type MetricsSource, type PageFile } from './routes.js'
import { RefusalLog } from './refusal-log.js'
import { StreamStats } from './stats.js'
import { formatText } from './text-format.js'
import { fixedToken, type TokenSource } from './token-source.js'
import { admit, chooseProtocol, isRefusal, refusal, refuse, type AdmissionRules } from './upgrade.js'
import type { HubEvent } from '../hub.js'
import type { MemoryFrame, OomwatchEvent } from '../protocol/events.js'
import type { AgentStatus } from '../status.js'

export { PAGE_PROTOCOL } from './upgrade.js'

// ws through require rather than import (its ESM entry, wrapper.mjs, wraps the same CommonJS
// code): measured 4-6 MiB less resident memory for the agent (bench/cost.mjs).
const require = createRequire(import.meta.url)
const { WebSocketServer } = require('ws') as typeof Ws
// node:http the same way: on Node 24 an ESM import of it evaluates every export, its lazy
// `WebSocket` getter included, which loads undici (measured +8 MiB resident for nothing used).
const { createServer } = require('node:http') as typeof Http

/** How the stream server listens and whom it lets in: plain settings. */
export interface StreamSettings {
  host: string
  /** 0 picks a free port. */
  port: number
  /**
   * When set, clients must send `Authorization: Bearer <token>`, or (browsers, which
   * cannot set headers on a WebSocket) the subprotocol `bearer.<token>`. `/metrics` and
   * flame graphs take the header or `?token=<token>`. A string is fixed; a {@link TokenSource}
   * (a token file) is read at each check, so a rotated Secret takes effect at once.
   */
  token?: string | TokenSource | undefined
  /** Ping interval; a client that missed the previous pong is dropped. */
  heartbeatMs: number
  /** Clients at once; more are refused with 503. */
  maxClients: number
  /** Unsent bytes a client may lag behind before it is closed as too slow. */
  clientBufferBytes: number
  /** Browser origins allowed besides the agent's own (same host as the request). */
  allowedOrigins?: readonly string[] | undefined
  /**
   * Without a token: host names a request may be addressed to besides localhost and IP
   * addresses; others get 421 (DNS rebinding). `/livez` and `/readyz` answer any host.
   */
  allowedHosts?: readonly string[] | undefined
  /** Open connections at once, HTTP and WebSocket (see `guardConnections`); default 256. */
  maxConnections?: number | undefined
  /** A request must arrive within it (else 408); a connection idle twice that long is closed. Default 10 s. */
  requestTimeoutMs?: number | undefined
  /** Least time between two log lines of one kind of refusal; default 10 s. */
  refusalLogWindowMs?: number | undefined
  /**
   * The live page's files by URL path. `/` is the HTML, served to browsers
   * (`Accept: text/html`) under a strict CSP; the others (script, style) on GET.
   */
  page?: ReadonlyMap<string, PageFile> | undefined
}

/** What the stream server reads; each object has one job, and none calls back into the agent. */
export interface StreamSources {
  /** `/livez`, `/readyz`. */
  status: Pick<AgentStatus, 'ready' | 'live' | 'readyNote'>
  /** The frames for one client: its greeting, replay, errors, memory history. */
  greeting: Greeting
  /** `GET /metrics`; absent: 404. */
  metrics?: MetricsSource | undefined
  /** `GET /incidents/<id>/flamegraph.svg`; absent: 404. */
  flamegraphs?: FlamegraphFiles | undefined
  /** Where the server keeps its counts (the metrics read them); default: its own. */
  stats?: StreamStats | undefined
  logger: Logger
}

/** Clients send nothing the protocol defines yet: a tiny frame limit. */
const MAX_PAYLOAD = 4096
/** How often each client's unsent backlog is checked against its allowance. */
const BACKLOG_CHECK_MS = 1000

/**
 * HTTP server with the WebSocket stream at `/`, plus `/livez`, `/readyz`, `/metrics`,
 * flame graphs and the live page. Each event is serialised once as JSON and, while a
 * text client is connected, rendered once as text; each client gets it as one text frame.
 * Subscribe {@link StreamServer.sink} to the hub (with `subscribeAll`: it takes memory frames too).
 */
export class StreamServer {
  readonly #settings: StreamSettings
  /** The settings with the token as a source: what each upgrade is judged by. */
  readonly #rules: AdmissionRules
  readonly #sources: StreamSources
  readonly #stats: StreamStats
  readonly #http: Server
  readonly #wss: Ws.WebSocketServer
  readonly #clients = new Set<Client>()
  readonly #refusals: RefusalLog
  readonly #unguard: () => void
  #timers: NodeJS.Timeout[] = []
  #closing: Promise<void> | undefined

  constructor(settings: StreamSettings, sources: StreamSources) {
    this.#settings = settings
    const token = typeof settings.token === 'string' ? fixedToken(settings.token) : settings.token
    this.#rules = { ...settings, token }
    this.#sources = sources
    this.#stats = sources.stats ?? new StreamStats()
    const { status, metrics, flamegraphs, logger } = sources
    const { page, allowedHosts } = settings
    const refusals = (this.#refusals = new RefusalLog(logger, settings.refusalLogWindowMs))
    const limits = {
      maxConnections: settings.maxConnections ?? DEFAULT_LIMITS.maxConnections,
      requestTimeoutMs: settings.requestTimeoutMs ?? DEFAULT_LIMITS.requestTimeoutMs,
    }
    this.#http = createServer(serverTimeouts(limits), routes({ status, metrics, flamegraphs, logger, token, page, allowedHosts, refusals }))
    this.#unguard = guardConnections(this.#http, limits, (what, remote) => this.#overflow(what, remote, limits.maxConnections))
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: MAX_PAYLOAD, clientTracking: false, handleProtocols: chooseProtocol })
    this.#http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head))
  }

  /** Starts listening; resolves with the bound port. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#http.once('error', reject)
      this.#http.listen(this.#settings.port, this.#settings.host, () => {
        this.#http.off('error', reject)
        const address = this.#http.address()
        resolve(typeof address === 'object' && address !== null ? address.port : this.#settings.port)
      })
    })
  }

  /** The hub's sink: events to every client, memory frames to those that asked for them. */
  readonly sink = (event: HubEvent): void => {
    if (event.type === 'memory') this.#broadcastMemory(event)
    else this.broadcast(event)
  }

  /** Sends one event to every connected client. */
  broadcast(event: OomwatchEvent): void {
    // Encoded once: ws would otherwise copy the string into a new Buffer for every client.
    const json = Buffer.from(JSON.stringify(event))
    let text: Buffer | undefined
    for (const client of this.#clients) client.send(client.format === 'text' ? (text ??= Buffer.from(formatText(event))) : json)
  }

  get clientCount(): number {
    return this.#clients.size
  }

  /** Frames not sent, since the start, to clients closed as too slow. */
  get droppedEvents(): number {
    return this.#stats.droppedEvents
  }

  /** Closes every client with 1001 (going away) and stops listening. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= new Promise(resolve => {
      this.#stopTimers()
      this.#unguard()
      for (const client of this.#clients) client.close(1001, 'oomwatch is stopping')
      // A client that does not answer the close frame would hold the stop for ws's 30 s.
      const laggards = setTimeout(() => this.#clients.forEach(client => client.terminate()), CLOSE_GRACE_MS)
      this.#wss.close()
      this.#http.close(() => {
        clearTimeout(laggards)
        this.#refusals.close()
        resolve()
      })
      this.#http.closeAllConnections()
    })
    return this.#closing
  }

  /** A connection over the cap: counted, and logged at a bounded rate. */
  #overflow(what: Overflow, remote: string | undefined, maxConnections: number): void {
    this.#stats.refusedConnections++
    const message =
      what === 'evicted'
        ? `${maxConnections} connections open: closed the oldest one still sending its request`
        : `${maxConnections} connections open: closed a new one`
    this.#refusals.note('capacity', { remote, what, maxConnections }, `${message} (see --max-connections / OOMWATCH_MAX_CONNECTIONS)`)
  }

  /**
   * The heartbeat and the backlog check run only while a client is connected: with none
   * they would wake the agent for nothing (a wake-up of Node costs ~0.15 ms of CPU here).
   */
  #startTimers(): void {
    if (this.#timers.length > 0 || this.#closing) return
    this.#timers = [
      setInterval(() => this.#clients.forEach(client => client.heartbeat()), this.#settings.heartbeatMs).unref(),
      setInterval(() => this.#clients.forEach(client => client.checkBacklog()), BACKLOG_CHECK_MS).unref(),
    ]
  }

  #stopTimers(): void {
    for (const timer of this.#timers) clearInterval(timer)
    this.#timers = []
  }

  #broadcastMemory(memory: MemoryFrame): void {
    let frame: Buffer | undefined
    for (const client of this.#clients) if (client.memory) client.send((frame ??= Buffer.from(JSON.stringify(memory))))
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = requestUrl(req)
    const wants = url ? admit(req, url, this.#rules, this.#clients.size) : refusal(400, 'Bad Request', 'the request target is not a URL')
    if (isRefusal(wants)) {
      if (wants.warning) this.#refusals.note(wants.warning.kind, wants.warning.fields, wants.warning.message)
      return refuse(socket, wants)
    }
    this.#wss.handleUpgrade(req, socket, head, ws => {
      const { greeting, logger } = this.#sources
      const client = new Client(ws, wants, { bufferBytes: this.#settings.clientBufferBytes, greeting, stats: this.#stats, logger })
      this.#clients.add(client)
      this.#stats.clients = this.#clients.size
      if (this.#clients.size === 1) this.#startTimers()
      client.onClose(() => {
        this.#clients.delete(client)
        this.#stats.clients = this.#clients.size
        if (this.#clients.size === 0) this.#stopTimers()
      })
      client.greet(greeting.greet(wants.since))
      const history = wants.memory ? greeting.memoryHistory?.() : undefined
      if (history) client.send(JSON.stringify(history))
    })
  }
}
