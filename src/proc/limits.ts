import { ProcParseError } from './errors.js'
import type { RlimitTable, RlimitValue } from '../protocol/values.js'

/**
 * Kernel row titles (fs/proc/base.c `lnames`) mapped to the names `prlimit(1)` and
 * Python's `resource` module use, so a report reads the same as the tools people know.
 */
const TITLE_TO_NAME: ReadonlyMap<string, string> = new Map([
  ['Max cpu time', 'CPU'],
  ['Max file size', 'FSIZE'],
  ['Max data size', 'DATA'],
  ['Max stack size', 'STACK'],
  ['Max core file size', 'CORE'],
  ['Max resident set', 'RSS'],
  ['Max processes', 'NPROC'],
  ['Max open files', 'NOFILE'],
  ['Max locked memory', 'MEMLOCK'],
  ['Max address space', 'AS'],
  ['Max file locks', 'LOCKS'],
  ['Max pending signals', 'SIGPENDING'],
  ['Max msgqueue size', 'MSGQUEUE'],
  ['Max nice priority', 'NICE'],
  ['Max realtime priority', 'RTPRIO'],
  ['Max realtime timeout', 'RTTIME'],
])

/** Every unit word the kernel prints; none is a prefix of another one. */
const KERNEL_UNITS = new Set(['seconds', 'bytes', 'processes', 'files', 'signals', 'locks', 'us'])

/*
 * The kernel prints `%-25s %-20s %-20s %-10s\n`, but matching on tokens rather than
 * columns keeps working if a title ever outgrows its 25 characters. The title is taken
 * lazily and the line is anchored at both ends, so the two values are the last two
 * numbers before the optional units word. The header line fails to match (its
 * "values" are words) and is skipped like any other malformed row.
 */
const ROW = /^(\S.*?)\s+(unlimited|\d+)\s+(unlimited|\d+)(?:\s+(\S+))?\s*$/

/**
 * Parses the text of `/proc/<pid>/limits` into a table keyed by prlimit names
 * (`NOFILE`, `AS`, ...); a title this table does not know keeps its printed title.
 *
 * A row that is truncated or malformed is skipped. The kernel ends every row with a
 * newline, so a last row without one is kept only if it ends in a complete unit word:
 * a read cut short inside a number would otherwise pass for a smaller limit.
 * Values above 2^53 (never printed for RLIM_INFINITY, which shows as `unlimited`)
 * lose precision, which is harmless for limits that large.
 *
 * @throws {ProcParseError} when no row at all is valid.
 */
export function parseLimits(text: string): RlimitTable {
  const table: RlimitTable = {}
  let rows = 0
  // Text past the last newline is empty for complete kernel output.
  const end = text.lastIndexOf('\n') + 1
  for (const line of text.slice(0, end).split('\n')) {
    if (addRow(table, line, false)) rows++
  }
  if (addRow(table, text.slice(end), true)) rows++
  if (rows === 0) throw new ProcParseError('limits', 'no limit rows')
  return table
}

/** Adds one row to `table`; returns whether the line was a valid row. */
function addRow(table: RlimitTable, line: string, unterminated: boolean): boolean {
  const m = ROW.exec(line)
  if (m === null) return false
  const [, title = '', soft = '', hard = '', units = ''] = m
  if (unterminated && !KERNEL_UNITS.has(units)) return false
  table[TITLE_TO_NAME.get(title) ?? title] = {
    soft: toValue(soft),
    hard: toValue(hard),
    units,
  }
  return true
}

function toValue(token: string): RlimitValue {
  return token === 'unlimited' ? 'unlimited' : Number(token)
}
