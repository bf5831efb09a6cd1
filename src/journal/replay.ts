import type { RecentEvents } from './recent-events.js'
import { CHUNK_BYTES, ReplayBehindError, SegmentCursor, type Segment } from './segment-cursor.js'
import type { OomwatchEvent } from '../protocol/events.js'

/** A replay sends at most this many events per connection; the rest is the next page (`?since=next`). */
export const MAX_REPLAY = 10_000

/** What a replay will send, known before any of it is read: the hello says it. */
export interface ReplayPlan {
  since: number
  /** Events that follow the hello: seq since+missed+1 to since+missed+count. */
  count: number
  /** Events after `since` that were rotated away (or, without a journal directory, left the memory window). */
  missed: number
  /** Present when more events follow this page: reconnect with `?since=next` for them. */
  truncated?: true
  /** With `truncated`: the seq of this page's last event, to reconnect with. */
  next?: number
}

/** Where a replay reads. */
export interface ReplaySources {
  recent: RecentEvents
  /** The journal directory and its segments, oldest first; absent: memory only. */
  disk?: { dir: string; segments: readonly Segment[] }
}

/**
 * Works out which events follow `since` up to `until` (the newest now), capped to one page
 * of {@link MAX_REPLAY}. Pure: the journal's seqs are consecutive, so the first kept seq
 * and the newest say it all.
 * @param oldest the seq of the oldest event kept (on disk, else in memory); undefined when none is.
 */
export function planReplay(since: number, until: number, oldest: number | undefined): ReplayPlan {
  if (oldest === undefined || until <= since) return { since, count: 0, missed: Math.max(0, until - since) }
  const start = Math.max(since + 1, oldest)
  const end = Math.min(until, start + MAX_REPLAY - 1)
  const page = { since, count: Math.max(0, end - start + 1), missed: start - since - 1 }
  return end < until ? { ...page, truncated: true, next: end } : page
}

/**
 * One client's replay: its plan, and its events a batch at a time. From the memory window
 * while it holds them, else from the segments on disk (one chunk at a time, asynchronously).
 * A batch is about {@link CHUNK_BYTES}: the caller sends it and waits for the client to take
 * it before asking for the next, so a replay holds one batch, however many run at once.
 */
export class JournalReplay {
  readonly plan: ReplayPlan
  readonly #sources: ReplaySources
  #next: number
  readonly #end: number
  #disk: SegmentCursor | undefined

  constructor(plan: ReplayPlan, sources: ReplaySources) {
    this.plan = plan
    this.#sources = sources
    this.#next = plan.since + plan.missed + 1
    this.#end = plan.since + plan.missed + plan.count
  }

  /** Lines skipped because they were not valid events (a torn write, anything else): for the log. */
  get skippedLines(): number {
    return this.#disk?.skippedLines ?? 0
  }

  /**
   * The next batch, oldest first; empty once the page is sent. Throws
   * {@link ReplayBehindError} when the events to send next are no longer kept (the client
   * was slower than the journal's rotation), and the file system's error when a read fails.
   */
  async read(): Promise<OomwatchEvent[]> {
    if (this.#next > this.#end) return []
    const events = this.#disk === undefined ? this.#fromMemory() : undefined
    const batch = events ?? (await this.#fromDisk())
    const last = batch.at(-1)
    this.#next = last === undefined ? this.#end + 1 : last.seq + 1
    return batch
  }

  /** Closes the segment being read. Idempotent. */
  async close(): Promise<void> {
    this.#next = this.#end + 1
    await this.#disk?.close()
  }

  /** A batch from the memory window, or undefined when it no longer starts at the next seq. */
  #fromMemory(): OomwatchEvent[] | undefined {
    const batch = this.#sources.recent.range(this.#next, this.#end, CHUNK_BYTES)
    return batch[0]?.seq === this.#next ? batch : undefined
  }

  #fromDisk(): Promise<OomwatchEvent[]> {
    const disk = this.#sources.disk
    if (disk === undefined) throw new ReplayBehindError(`events after seq ${this.#next - 1} left the memory window during the replay`)
    if (this.#disk === undefined) {
      // From the newest segment that starts at or before the next seq.
      let from = 0
      for (let at = 0; at < disk.segments.length; at++) if (disk.segments[at]!.firstSeq <= this.#next) from = at
      this.#disk = new SegmentCursor(disk.dir, disk.segments.slice(from))
    }
    return this.#disk.read(this.#next, this.#end)
  }
}
