import { chmodSync, closeSync, fchmodSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { parseLine } from './lines.js'
import { RecentEvents } from './recent-events.js'
import { JournalReplay, planReplay } from './replay.js'
import type { Segment } from './segment-cursor.js'
import type { OomwatchEvent } from '../protocol/events.js'

export { MAX_REPLAY, type ReplayPlan } from './replay.js'

/** How much the journal keeps. */
export interface JournalOptions {
  /** Directory for the JSON-lines segments (the pod's emptyDir); undefined keeps events in memory only. */
  dir?: string
  /** Bytes on disk at most, over all segments (default 64 MiB). */
  maxBytes: number
  /** Bytes kept in memory for fast replay (default 4 MiB). */
  memoryBytes: number
  /** Writes one line, returning the bytes written (default `fs.writeSync`): a test's way to cut a write short. */
  write?: (fd: number, data: Buffer) => number
}

/** A line reached the disk only in part (a full disk, a quota): it is skipped when read back. */
export class JournalWriteError extends Error {
  readonly code = 'JOURNAL_SHORT_WRITE'
}

/** Segments per journal: rotation drops the oldest quarter at a time. */
const SEGMENTS = 4
const SEGMENT = /^events-(\d{16})\.jsonl$/
/** The journal is the stream's content (command lines, stacks): its owner's alone. */
const DIR_MODE = 0o700
const FILE_MODE = 0o600

/**
 * The event journal: every event is appended (synchronously, before any client sees it)
 * to a bounded in-memory window and, with a directory, to JSON-lines segments on disk
 * that rotate within `maxBytes`. It survives restarts: `lastSeq` continues from the
 * newest event on disk, and replays read the disk, a chunk at a time, when memory no
 * longer has them. The directory is made 0700 and the segments 0600, whatever the umask.
 */
export class Journal {
  readonly #options: JournalOptions
  readonly #recent: RecentEvents
  /** The segments on disk, oldest first: kept here so that a replay lists no directory. */
  #segments: Segment[] = []
  #fd: number | undefined
  #segmentBytes = 0
  #lastSeq = 0
  /** The last write was cut short: the next line starts with a newline, so the torn one ends there. */
  #torn = false
  /** Lines of the newest segment skipped at start: not JSON (a write cut by a crash), or not a valid event. */
  readonly skippedLines: number = 0
  /** Why the directory could not be made 0700 (it is used anyway): for the log. */
  readonly dirModeError: Error | undefined

  constructor(options: JournalOptions) {
    this.#options = options
    this.#recent = new RecentEvents(options.memoryBytes)
    if (options.dir === undefined) return
    mkdirSync(options.dir, { recursive: true, mode: DIR_MODE })
    try {
      // An existing directory (an emptyDir is 0777) keeps its mode through mkdir.
      chmodSync(options.dir, DIR_MODE)
    } catch (error) {
      this.dirModeError = error instanceof Error ? error : new Error(String(error))
    }
    this.#segments = listSegments(options.dir)
    const newest = this.#segments.at(-1)
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

  /**
   * Appends one event; throws when the disk write fails or is cut short (the caller reports
   * it and goes on; after a short write the next line starts on a line of its own).
   */
  append(event: OomwatchEvent): void {
    const line = `${JSON.stringify(event)}\n`
    this.#lastSeq = event.seq
    this.#recent.add(event, line.length)
    if (this.#options.dir === undefined) return
    const bytes = Buffer.byteLength(line)
    if (this.#fd === undefined || this.#segmentBytes + bytes + 1 > this.#options.maxBytes / SEGMENTS) this.#rotate(event.seq)
    const data = Buffer.from(this.#torn ? `\n${line}` : line)
    const written = (this.#options.write ?? writeSync)(this.#fd!, data)
    this.#segmentBytes += written
    this.#torn = written < data.length
    if (this.#torn) {
      throw new JournalWriteError(
        `short write to the journal: ${written} of ${data.length} bytes of seq ${event.seq} reached ${this.#segments.at(-1)!.name}; ` +
          'that line is skipped when read back, and the journal goes on at the next line (is the volume full?)',
      )
    }
  }

  /**
   * A replay of the events after `since`, up to the newest now: its plan at once (for the
   * hello), its events later, a batch at a time (see {@link JournalReplay}).
   */
  replay(since: number): JournalReplay {
    const dir = this.#options.dir
    const oldest = dir === undefined ? this.#recent.oldestSeq : (this.#segments[0]?.firstSeq ?? this.#recent.oldestSeq)
    return new JournalReplay(planReplay(since, this.#lastSeq, oldest), {
      recent: this.#recent,
      ...(dir !== undefined && { disk: { dir, segments: [...this.#segments] } }),
    })
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
    const name = `events-${String(firstSeq).padStart(16, '0')}.jsonl`
    this.#fd = openSync(join(dir, name), 'a', FILE_MODE)
    // The mode given to open applies only to a new file, and through the umask.
    fchmodSync(this.#fd, FILE_MODE)
    this.#segmentBytes = 0
    this.#torn = false
    this.#segments = [...this.#segments.filter(segment => segment.name !== name), { name, firstSeq }]
    while (this.#segments.length > SEGMENTS) rmSync(join(dir, this.#segments.shift()!.name), { force: true })
  }
}

/** The segment files in `dir`, oldest first. */
function listSegments(dir: string): Segment[] {
  return readdirSync(dir)
    .flatMap(name => {
      const match = SEGMENT.exec(name)
      return match ? [{ name, firstSeq: Number(match[1]) }] : []
    })
    .sort((a, b) => a.firstSeq - b.firstSeq)
}

/**
 * Parses one segment (at start, before the watch runs), skipping and counting the lines that
 * are not valid events: a write cut short by a crash, or valid JSON that is no event.
 */
function readSegment(path: string): { events: OomwatchEvent[]; skipped: number } {
  const events: OomwatchEvent[] = []
  let skipped = 0
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line === '') continue
    const event = parseLine(line)
    if (event !== undefined && event.seq > (events.at(-1)?.seq ?? 0)) events.push(event)
    else skipped++
  }
  return { events, skipped }
}
