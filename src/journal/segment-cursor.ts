import { open, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { parseLine, splitLines, tailSeq } from './lines.js'
import type { OomwatchEvent } from '../protocol/events.js'

/** One segment file: `events-<first seq>.jsonl`. */
export interface Segment {
  name: string
  firstSeq: number
}

/** Bytes read from disk at a time: what one replaying client holds, besides one line. */
export const CHUNK_BYTES = 16 * 1024
/** A line longer than this is no event the agent wrote (an incident is tens of KiB): skipped. */
export const MAX_LINE_BYTES = 8 * 1024 * 1024

/** A segment of the range was rotated away while a replay read it: what follows is gone. */
export class ReplayBehindError extends Error {
  readonly code = 'REPLAY_BEHIND'
}

/**
 * Reads the events of a seq range from the segments, oldest first, one chunk at a time
 * (asynchronous reads of {@link CHUNK_BYTES}): the event loop is never held by a replay, and
 * a replay holds one chunk and one line, however long the journal. One file open at a time.
 * Lines that are not valid events, or whose seq does not increase, are skipped and counted.
 */
export class SegmentCursor {
  readonly #dir: string
  readonly #segments: readonly Segment[]
  readonly #buffer = Buffer.allocUnsafe(CHUNK_BYTES)
  #index = 0
  #handle: FileHandle | undefined
  #position = 0
  #rest: Buffer = Buffer.alloc(0)
  /** The current line grew past MAX_LINE_BYTES: its bytes are dropped up to its newline. */
  #discarding = false
  #lastSeq = 0
  #done = false
  /** Lines skipped so far: not JSON, not a valid event, or out of order. */
  skippedLines = 0

  /** @param segments the segments to read, oldest first, the first one holding the range's start. */
  constructor(dir: string, segments: readonly Segment[]) {
    this.#dir = dir
    this.#segments = segments
  }

  /**
   * The next events with seq in [from, to], at least one unless the range is over (then
   * none). Reads chunks until it has some; throws {@link ReplayBehindError} when a segment
   * is gone, and the file system's error when a read fails.
   */
  async read(from: number, to: number): Promise<OomwatchEvent[]> {
    const events: OomwatchEvent[] = []
    while (events.length === 0 && !this.#done) {
      const lines = await this.#nextLines()
      if (lines === undefined) {
        this.#done = true
        break
      }
      for (const line of lines) {
        const quick = tailSeq(line)
        if (quick !== undefined && quick < from) continue
        const event = parseLine(line)
        if (event === undefined || event.seq <= this.#lastSeq) {
          this.skippedLines++
          continue
        }
        if (event.seq < from) continue
        if (event.seq > to) {
          this.#done = true
          break
        }
        this.#lastSeq = event.seq
        events.push(event)
      }
    }
    return events
  }

  /** Closes the open segment. Idempotent. */
  async close(): Promise<void> {
    this.#done = true
    const handle = this.#handle
    this.#handle = undefined
    await handle?.close()
  }

  /** The complete lines of the next chunk; undefined after the last segment. */
  async #nextLines(): Promise<string[] | undefined> {
    for (;;) {
      if (this.#handle === undefined) {
        const segment = this.#segments[this.#index]
        if (segment === undefined) return undefined
        this.#handle = await this.#open(segment)
        this.#position = 0
      }
      const { bytesRead } = await this.#handle.read(this.#buffer, 0, CHUNK_BYTES, this.#position)
      if (bytesRead === 0) {
        // A segment's end: a last line without its newline (a write cut short) is still a line.
        const last = this.#discarding || this.#rest.length === 0 ? [] : [this.#rest.toString('utf8')]
        if (this.#discarding) this.skippedLines++
        this.#rest = Buffer.alloc(0)
        this.#discarding = false
        await this.#handle.close()
        this.#handle = undefined
        this.#index++
        if (last.length > 0) return last
        continue
      }
      this.#position += bytesRead
      let chunk = this.#buffer.subarray(0, bytesRead)
      if (this.#discarding) {
        // The bytes up to the next newline are the tail of the line too long to keep.
        const nl = chunk.indexOf(10)
        if (nl === -1) continue
        chunk = chunk.subarray(nl + 1)
        this.skippedLines++
        this.#discarding = false
      }
      const { lines, rest } = splitLines(this.#rest, chunk)
      this.#rest = rest
      if (this.#rest.length > MAX_LINE_BYTES) {
        this.#rest = Buffer.alloc(0)
        this.#discarding = true
      }
      if (lines.length > 0) return lines
    }
  }

  async #open(segment: Segment): Promise<FileHandle> {
    try {
      return await open(join(this.#dir, segment.name), 'r')
    } catch (error) {
      if (!(error instanceof Error && 'code' in error && error.code === 'ENOENT')) throw error
      throw new ReplayBehindError(`segment ${segment.name} was rotated away during the replay`, { cause: error })
    }
  }
}
