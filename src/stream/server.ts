import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { WebSocket, WebSocketServer } from 'ws'
import type { OomwatchEvent } from '../events.js'
import { tokenMatches } from './auth.js'

/** How the stream server listens and whom it lets in. */
export interface StreamOptions {
  host: string
  /** 0 picks a free port. */
  port: number
  /** When set, clients must send `Authorization: Bearer <token>`. */
  token?: string
  /** Ping interval; a client that missed the previous pong is dropped. */
  heartbeatMs: number
  /** The greeting for a new client (a `hello`, stamped at the current seq). */
  greet: () => OomwatchEvent
  /** True once the first scan is done; `/readyz` answers 503 before. */
  isReady: () => boolean
  logger: Logger
}

/** A client whose unsent data passes this is too slow to keep up and is closed. */
const MAX_BUFFERED = 8 << 20
/** Clients send nothing the protocol defines yet: a tiny frame limit. */
const MAX_PAYLOAD = 4096

interface Client extends WebSocket {
  isAlive?: boolean
}

/**
 * HTTP server with the WebSocket stream at `/`, plus `/livez` and `/readyz`. Each event
 * is serialised once and sent to every client as one text frame.
 */
export class StreamServer {
  readonly #options: StreamOptions
  readonly #http: Server
  readonly #wss: WebSocketServer
  #heartbeat: NodeJS.Timeout | undefined
  #closing: Promise<void> | undefined

  constructor(options: StreamOptions) {
    this.#options = options
    this.#http = createServer((req, res) => this.#onRequest(req, res))
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: MAX_PAYLOAD, clientTracking: true })
    this.#http.on('upgrade', (req, socket, head) => this.#onUpgrade(req, socket, head))
    this.#wss.on('connection', (ws: Client) => this.#onConnection(ws))
  }

  /** Starts listening; resolves with the bound port. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#http.once('error', reject)
      this.#http.listen(this.#options.port, this.#options.host, () => {
        this.#http.off('error', reject)
        this.#heartbeat = setInterval(() => this.#ping(), this.#options.heartbeatMs)
        this.#heartbeat.unref()
        resolve((this.#http.address() as AddressInfo).port)
      })
    })
  }

  /** Sends one event to every connected client. */
  broadcast(event: OomwatchEvent): void {
    const frame = JSON.stringify(event)
    for (const ws of this.#wss.clients) this.#send(ws, frame)
  }

  get clientCount(): number {
    return this.#wss.clients.size
  }

  /** Closes every client with 1001 (going away) and stops listening. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= new Promise(resolve => {
      clearInterval(this.#heartbeat)
      for (const ws of this.#wss.clients) ws.close(1001, 'oomwatch is stopping')
      this.#wss.close()
      this.#http.close(() => resolve())
      this.#http.closeAllConnections()
    })
    return this.#closing
  }

  #send(ws: WebSocket, frame: string): void {
    if (ws.readyState !== WebSocket.OPEN) return
    if (ws.bufferedAmount > MAX_BUFFERED) {
      this.#options.logger.warn({ bufferedBytes: ws.bufferedAmount }, 'closing a client that does not keep up')
      ws.close(1013, 'too slow: the unsent backlog passed 8 MiB')
      return
    }
    ws.send(frame)
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://agent').pathname
    if (path === '/livez') return reply(res, 200, 'ok\n')
    if (path === '/readyz') return this.#options.isReady() ? reply(res, 200, 'ready\n') : reply(res, 503, 'starting: first scan not done\n')
    if (path === '/') return reply(res, 426, 'oomwatch streams events over WebSocket here: wscat -c ws://HOST:PORT/\n')
    reply(res, 404, 'not found\n')
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = new URL(req.url ?? '/', 'http://agent').pathname
    if (path !== '/') return refuse(socket, 404, 'Not Found')
    const { token } = this.#options
    if (token !== undefined && !tokenMatches(req.headers.authorization, token)) {
      this.#options.logger.warn({ remote: req.socket.remoteAddress }, 'refused a client without the bearer token')
      return refuse(socket, 401, 'Unauthorized')
    }
    this.#wss.handleUpgrade(req, socket, head, ws => this.#wss.emit('connection', ws, req))
  }

  #onConnection(ws: Client): void {
    ws.isAlive = true
    ws.on('pong', () => {
      ws.isAlive = true
    })
    // The protocol defines nothing for clients to send; an oversized frame closes the
    // client (ws does that with 1009), anything else is ignored.
    ws.on('error', error => this.#options.logger.debug({ err: error.message }, 'client error'))
    this.#send(ws, JSON.stringify(this.#options.greet()))
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

function reply(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(body)
}

function refuse(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
}
