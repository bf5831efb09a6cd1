import { setImmediate as yieldToLoop } from 'node:timers/promises'
import type { Logger } from 'pino'
import type { WebSocket } from 'ws'
import type { Greeted, Greeting, ReplayStream } from './greeting.js'
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
/**
 * Replayed events sent before waiting for the socket to take them: each send is a write to
 * the socket, so a slice, not a batch read from disk, is what one turn of the event loop does.
 */
const REPLAY_SLICE = 32
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
  /** While a replay streams: the live frames that arrived meanwhile, sent after it in order. */
  #held: { frames: (string | Buffer)[]; bytes: number } | undefined

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

  /**
   * Sends the hello, then streams the replay a batch at a time: every frame sent
   * meanwhile (live events, memory frames) is held, and follows the replay in order. Call it
   * synchronously on connection, before any live event can reach the client.
   */
  greet({ hello, replay }: Greeted): void {
    this.sendEvent(hello)
    if (replay === undefined) return
    this.#held = { frames: [], bytes: 0 }
    void this.#replay(replay)
  }

  /** Sends one event in the client's format. */
  sendEvent(event: OomwatchEvent): void {
    this.send(this.#frame(event))
  }

  /**
   * Sends one frame as text, unless the client is closed or floods. During a replay the frame
   * is held; held frames past the allowance close the client as too slow.
   */
  send(frame: string | Buffer): void {
    const held = this.#held
    if (held !== undefined && this.#ws.readyState === OPEN) {
      held.frames.push(frame)
      held.bytes += frame.length
      if (held.bytes > this.#context.bufferBytes) {
        this.#context.stats.droppedEvents += held.frames.length
        this.#held = undefined
        this.#closeSlow()
      }
      return
    }
    this.#write(frame)
  }

  #write(frame: string | Buffer): void {
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

  #frame(event: OomwatchEvent): string {
    return this.format === 'text' ? formatText(event) : JSON.stringify(event)
  }

  /**
   * Streams a replay a batch at a time, each batch only once the socket took the last one:
   * the client's pace sets the reading, and the replay holds one batch. Then the held live
   * frames, in order; or, for a page of a longer replay, a close that says where to go on.
   */
  async #replay(replay: ReplayStream): Promise<void> {
    const { logger } = this.#context
    const { since, missed, truncated, next } = replay.plan
    let sent = since + missed
    try {
      for (let batch = await replay.read(); batch.length > 0; batch = await replay.read()) {
        for (let at = 0; at < batch.length; at += REPLAY_SLICE) {
          const slice = batch.slice(at, at + REPLAY_SLICE)
          if (!(await this.#sendSlice(slice))) return
          sent = slice.at(-1)!.seq
        }
        // A turn of the event loop after each batch: a socket that takes every write at once
        // calls back in the same turn, and a page from the memory window (no disk read to
        // wait on) would otherwise hold the loop, the watch's tick with it, 100-300 ms.
        await yieldToLoop()
      }
      if (truncated) return this.close(1000, `replay page sent; reconnect with ?since=${next} for more`)
      const held = this.#held?.frames ?? []
      this.#held = undefined
      for (const frame of held) this.#write(frame)
    } catch (error) {
      logger.warn({ err: error, since: sent }, 'a replay stopped; the client is told to reconnect')
      this.close(1011, `replay interrupted: reconnect with ?since=${sent}`)
    } finally {
      this.#held = undefined
      if (replay.skippedLines > 0)
        logger.warn({ skippedLines: replay.skippedLines }, 'journal lines that are not valid events were skipped in a replay')
      await replay.close().catch((error: unknown) => logger.warn({ err: error }, 'a replay did not close cleanly'))
    }
  }

  /** Sends a few events; resolves once the socket took the last one (true) or the client closed (false). */
  #sendSlice(events: OomwatchEvent[]): Promise<boolean> {
    const ws = this.#ws
    return new Promise(resolve => {
      if (ws.readyState !== OPEN) return resolve(false)
      const onClose = () => resolve(false)
      ws.once('close', onClose)
      events.forEach((event, at) => {
        const last = at === events.length - 1
        ws.send(this.#frame(event), { binary: false }, last ? error => (ws.off('close', onClose), resolve(!error)) : undefined)
      })
    })
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
