/** One journal line in, one event (or nothing) out: pure, for the reader at start and for replays. */
import { isJournalEvent } from './event-check.js'
import type { OomwatchEvent } from '../protocol/events.js'

/**
 * The tail the journal writes last on every line: `JSON.stringify` keeps the payload's keys
 * first, then `seq` and `ts`, as the hub stamps them.
 */
const TAIL_SEQ = /"seq":(\d{1,16}),"ts":"[^"\\]*"\}$/

/**
 * The seq of a line as the journal writes it, read from its tail without parsing the rest,
 * so that a replay skips the lines before its start cheaply; undefined for any other shape
 * (the line is then parsed in full).
 */
export function tailSeq(line: string): number | undefined {
  const match = TAIL_SEQ.exec(line)
  return match ? Number(match[1]) : undefined
}

/** The event on one line, or undefined when the line is not JSON (a torn write) or not a valid event. */
export function parseLine(line: string): OomwatchEvent | undefined {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    return undefined
  }
  return isJournalEvent(value) ? value : undefined
}

/** What {@link splitLines} found in one chunk. */
export interface SplitLines {
  /** The complete lines, without their newline; empty ones left out. */
  lines: string[]
  /** The bytes after the last newline: the start of the next chunk's first line. */
  rest: Buffer
}

/**
 * Splits `chunk`, after the `rest` of the previous one, into complete lines. On bytes, not
 * text: a newline byte never occurs inside a UTF-8 sequence, and a chunk may end inside one.
 */
export function splitLines(rest: Buffer, chunk: Buffer): SplitLines {
  const data = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk
  const lines: string[] = []
  let start = 0
  for (let nl = data.indexOf(10); nl !== -1; nl = data.indexOf(10, start)) {
    if (nl > start) lines.push(data.toString('utf8', start, nl))
    start = nl + 1
  }
  // A copy: the caller reuses its read buffer.
  return { lines, rest: Buffer.from(data.subarray(start)) }
}
