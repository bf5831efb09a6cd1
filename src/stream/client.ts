import type { Logger } from 'pino'
import type { WebSocket } from 'ws'
import type { Greeting } from './greeting.js'
import type { StreamStats } from './stats.js'
import { formatText } from './text-format.js'
import type { OomwatchEvent } from '../protocol/events.js'

/** How a client reads events: JSON objects (the default), or text blocks for people (`?format=text`). */
export type Format = 'json' | 'text'

/** What a client asked for in its URL. */
export interface ClientWants {
  since: number | undefined
  format: Format
  /** Memory frames, for the live page (`?memory=1`). */
  memory: boolean
}

/** What every client of one server shares. */
export interface ClientContext {
  /** Unsent bytes a client may lag behind before it is closed as too slow. */
  bufferBytes: number
  /** The error frame a client's message is answered with. */
  greeting: Pick<Greeting, 'clientError'>
  /** Where the frames dropped for slowness are counted. */
  stats: StreamStats
  logger: Logger
}

/** `WebSocket.OPEN`, without loading ws here for one constant. */
const OPEN = 1
/** Messages a client may send (each answered by an error frame) before it is closed. */
const MAX_BAD_MESSAGES = 5
/** A client closed (for slowness, or at stop) that has not closed after this is terminated. */
export const CLOSE_GRACE_MS = 1000
const NO_MESSAGES = 'oomwatch takes no messages: it only streams events; to replay, reconnect with ?since=SEQ'
/** A backlog this many times the allowance is cut at once, without waiting for the check. */
const FLOOD_FACTOR = 4

/**
 * One connected WebSocket client and the state kept about it: its format, whether it
 * answered the last ping, its backlog at the last check, the messages it sent.
 */
export class Client {
  readonly format: Format
  /** It asked for memory frames (the live page). */
  readonly memory: boolean
  readonly #ws: WebSocket
  readonly #context: ClientContext
  #alive = true
  #badMessages = 0
  /** The backlog was past the allowance at the last check. */
  #wasOver = false
  /** Closed for slowness: what is not sent to it from then on counts as dropped. */
  #cut = false

  constructor(ws: WebSocket, wants: Pick<ClientWants, 'format' | 'memory'>, context: ClientContext) {
    this.#ws = ws
    this.#context = context
    this.format = wants.format
    this.memory = wants.memory
    ws.on('pong', () => {
      this.#alive = true
    })
    // ws closes an oversized frame's sender with 1009 and reports it here.
    ws.on('error', error => context.logger.debug({ err: error }, 'client error'))
    ws.on('message', (_data, isBinary) => this.#onMessage(isBinary))
  }

  /** Calls `listener` once the connection is closed. */
  onClose(listener: () => void): void {
    this.#ws.once('close', listener)
  }

  /** Sends one event in the client's format. */
  sendEvent(event: OomwatchEvent): void {
    this.send(this.format === 'text' ? formatText(event) : JSON.stringify(event))
  }

  /** Sends one frame as text, unless the client is closed or floods. */
  send(frame: string | Buffer): void {
    const ws = this.#ws
    if (ws.readyState !== OPEN) {
      if (this.#cut) this.#context.stats.droppedEvents++
      return
    }
    // A burst (a scan that finds many processes) is sent within one tick, before any of it
    // reaches the socket: the backlog is judged by the periodic check, and here only a
    // flood far past the allowance is cut at once, to bound memory.
    if (ws.bufferedAmount > this.#context.bufferBytes * FLOOD_FACTOR) {
      this.#context.stats.droppedEvents++
      return this.#closeSlow()
    }
    ws.send(frame, { binary: false })
  }

  /**
   * Closes the client when its backlog was past the allowance at this check and the one
   * before: one burst on a busy node is forgiven, a client that stopped reading is not.
   */
  checkBacklog(): void {
    const ws = this.#ws
    if (ws.readyState !== OPEN) return
    const over = ws.bufferedAmount > this.#context.bufferBytes
    if (over && this.#wasOver) this.#closeSlow()
    this.#wasOver = over
  }

  /** One heartbeat: terminates the client if it missed the previous pong, else pings it. */
  heartbeat(): void {
    if (!this.#alive) return this.#ws.terminate()
    this.#alive = false
    this.#ws.ping()
  }

  /** Starts the closing handshake with `code`. */
  close(code: number, reason: string): void {
    this.#ws.close(code, reason)
  }

  /** Ends the connection at once, without a close frame. */
  terminate(): void {
    this.#ws.terminate()
  }

  #closeSlow(): void {
    this.#cut = true
    const { bufferBytes, logger } = this.#context
    logger.warn({ bufferedBytes: this.#ws.bufferedAmount }, 'closing a client that does not keep up')
    this.#ws.close(1013, `too slow: more than ${bufferBytes} bytes unsent; reconnect with ?since=SEQ`)
    // The close frame waits behind the backlog; a client that reads nothing never sees it.
    setTimeout(() => this.#ws.terminate(), CLOSE_GRACE_MS).unref()
  }

  /** The protocol defines nothing for clients to send: each message gets an error frame, then a close. */
  #onMessage(isBinary: boolean): void {
    if (isBinary) return this.#ws.close(1003, 'oomwatch takes no binary messages')
    this.#badMessages++
    if (this.#badMessages > MAX_BAD_MESSAGES) return this.#ws.close(1008, 'oomwatch takes no messages; reconnect with ?since=SEQ to replay')
    this.sendEvent(this.#context.greeting.clientError(NO_MESSAGES))
  }
}
