import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseStat } from '../proc/stat.js'

/**
 * Sends `signal` to `pid` only if it is still the process that started at `startTime`:
 * a pid reused in between must never receive another process's signal.
 * @returns false when the process is gone or is another one.
 */
export function signalSame(procRoot: string, pid: number, startTime: number, signal: NodeJS.Signals): boolean {
  if (!isSame(procRoot, pid, startTime)) return false
  try {
    process.kill(pid, signal)
    return true
  } catch {
    return false
  }
}

/** True while `pid` is the process that started at `startTime` and has not exited. */
export function isSame(procRoot: string, pid: number, startTime: number): boolean {
  try {
    const stat = parseStat(readFileSync(`${procRoot}/${pid}/stat`, 'utf8'))
    return stat.startTime === startTime && stat.state !== 'Z' && stat.state !== 'X'
  } catch {
    return false
  }
}

/**
 * SIGTERM, then SIGKILL if it is still there after `graceMs`. A stopped (frozen) process
 * is continued after SIGTERM so that it can act on it.
 * @returns how it ended: `terminated` by SIGTERM, `killed` by SIGKILL, or `gone` before any signal.
 */
export async function stopProcess(procRoot: string, pid: number, startTime: number, graceMs: number): Promise<'terminated' | 'killed' | 'gone'> {
  if (!signalSame(procRoot, pid, startTime, 'SIGTERM')) return 'gone'
  signalSame(procRoot, pid, startTime, 'SIGCONT')
  const until = performance.now() + graceMs
  while (performance.now() < until) {
    if (!isSame(procRoot, pid, startTime)) return 'terminated'
    await sleep(10)
  }
  return signalSame(procRoot, pid, startTime, 'SIGKILL') ? 'killed' : 'terminated'
}
