import { readFileSync } from 'node:fs'
import type { ProcStat } from '../types.js'
import { parseStat } from './stat.js'

/**
 * One process across pid reuse: its pid and its start time (clock ticks after boot, field
 * 22 of `/proc/<pid>/stat`). A pid alone may name a newer process by the time it is used.
 */
export interface ProcessIdentity {
  pid: number
  startTime: number
}

/**
 * Whether a process whose stat reads `stat` (undefined: no such pid) still runs: not a
 * zombie (`Z`), not dead (`X`), whose memory and stack are gone already. With
 * `startTime`, also whether it is still that process and not a newer one on a reused pid.
 * Pure: the watcher, which reads its stats through kept descriptors, calls this one.
 */
export function isStillRunning(stat: Pick<ProcStat, 'state' | 'startTime'> | undefined, startTime?: number): boolean {
  if (stat === undefined) return false
  if (startTime !== undefined && stat.startTime !== startTime) return false
  return stat.state !== 'Z' && stat.state !== 'X'
}

/**
 * Reads `<procRoot>/<pid>/stat` and applies {@link isStillRunning}. A stat that cannot be
 * read or parsed counts as gone: every caller is about to signal or record the process,
 * and one it cannot see is one it must leave alone.
 */
export function isRunning(procRoot: string, pid: number, startTime?: number): boolean {
  let stat: ProcStat
  try {
    stat = parseStat(readFileSync(`${procRoot}/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
  return isStillRunning(stat, startTime)
}
