import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { RecentEvents } from './recent-events.js'
import type { OomwatchEvent } from '../protocol/events.js'

/** How much the journal keeps. */
export interface JournalOptions {
  /** Directory for the JSON-lines segments (the pod's emptyDir); undefined keeps events in memory only. */
  dir?: string
  /** Bytes on disk at most, over all segments (default 64 MiB). */
  maxBytes: number
  /** Bytes kept in memory for fast replay (default 4 MiB). */
  memoryBytes: number
}

/** Segments per journal: rotation drops the oldest quarter at a time. */
const SEGMENTS = 4
/** A replay sends at most this many events; older ones are counted as missed. */
export const MAX_REPLAY = 10_000
const SEGMENT = /^events-(\d{16})\.jsonl$/

/** What a replay found: the events after `since`, and how many before them are gone. */
export interface Replay {
  events: OomwatchEvent[]
  /** Events after `since` that were rotated away or are beyond MAX_REPLAY. */
  missed: number
}

/**
 * The event journal: every event is appended (synchronously, before any client sees it)
 * to a bounded in-memory window and, with a directory, to JSON-lines segments on disk
 * that rotate within `maxBytes`. It survives restarts: `lastSeq` continues from the
 * newest event on disk, and replays read the disk when memory no longer has them.
 */
export class Journal {
  readonly #options: JournalOptions
  readonly #recent: RecentEvents
  #fd: number | undefined
  #segmentBytes = 0
  #lastSeq = 0
  /** Lines on disk that did not parse (a write cut by a crash), for the log. */
  readonly skippedLines: number = 0

  constructor(options: JournalOptions) {
    this.#options = options
    this.#recent = new RecentEvents(options.memoryBytes)
    if (options.dir === undefined) return
    mkdirSync(options.dir, { recursive: true })
    const segments = this.#segments()
    const newest = segments.at(-1)
    if (newest) {
      const { events, skipped } = readSegment(join(options.dir, newest.name))
      this.skippedLines = skipped
      this.#lastSeq = events.at(-1)?.seq ?? newest.firstSeq - 1
      for (const event of events) this.#recent.add(event, JSON.stringify(event).length + 1)
    }
  }

  /** The seq of the newest event kept; the hub continues after it. */
  get lastSeq(): number {
    return this.#lastSeq
  }

  /** Appends one event; throws when the disk write fails (the caller reports it and goes on). */
  append(event: OomwatchEvent): void {
    const line = `${JSON.stringify(event)}\n`
    this.#lastSeq = event.seq
    this.#recent.add(event, line.length)
    if (this.#options.dir === undefined) return
    if (this.#fd === undefined || this.#segmentBytes + line.length > this.#options.maxBytes / SEGMENTS) this.#rotate(event.seq)
    this.#segmentBytes += writeSync(this.#fd!, line)
  }

  /** The events after `since`, oldest first, at most MAX_REPLAY. */
  since(since: number): Replay {
    const wanted = this.#lastSeq - since
    if (wanted <= 0) return { events: [], missed: 0 }
    let events = this.#recent.after(since)
    if (events[0]?.seq !== since + 1 && this.#options.dir !== undefined) events = this.#readDisk(since)
    if (events.length > MAX_REPLAY) events = events.slice(-MAX_REPLAY)
    return { events, missed: wanted - events.length }
  }

  /** Flushes to disk and closes the segment. Idempotent. */
  close(): void {
    if (this.#fd === undefined) return
    fsyncSync(this.#fd)
    closeSync(this.#fd)
    this.#fd = undefined
  }

  #rotate(firstSeq: number): void {
    this.close()
    const dir = this.#options.dir!
    this.#fd = openSync(join(dir, `events-${String(firstSeq).padStart(16, '0')}.jsonl`), 'a')
    this.#segmentBytes = 0
    const segments = this.#segments()
    for (const old of segments.slice(0, Math.max(0, segments.length - SEGMENTS))) unlinkSync(join(dir, old.name))
  }

  #segments(): { name: string; firstSeq: number }[] {
    return readdirSync(this.#options.dir!)
      .flatMap(name => {
        const match = SEGMENT.exec(name)
        return match ? [{ name, firstSeq: Number(match[1]) }] : []
      })
      .sort((a, b) => a.firstSeq - b.firstSeq)
  }

  /** Reads the segments that may hold events after `since`; bounded by maxBytes. */
  #readDisk(since: number): OomwatchEvent[] {
    const dir = this.#options.dir!
    const segments = this.#segments()
    let from = 0
    segments.forEach((segment, at) => {
      if (segment.firstSeq <= since + 1) from = at
    })
    return segments.slice(from).flatMap(segment => readSegment(join(dir, segment.name)).events.filter(event => event.seq > since))
  }
}

/** Parses one segment, skipping lines that do not parse (a write cut short by a crash). */
function readSegment(path: string): { events: OomwatchEvent[]; skipped: number } {
  if (statSync(path).size === 0) return { events: [], skipped: 0 }
  const events: OomwatchEvent[] = []
  let skipped = 0
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line === '') continue
    try {
      const event = JSON.parse(line) as OomwatchEvent
      if (typeof event.seq === 'number') events.push(event)
      else skipped++
    } catch {
      skipped++
    }
  }
  return { events, skipped }
}
