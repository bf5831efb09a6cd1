import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { escalateKill, type KillOutcome } from '../exec/escalate.js'
import { isRunning, isStillRunning } from '../proc/identity.js'
import { parseStat } from '../proc/stat.js'
import { watchGone } from '../proc/watch-gone.js'

/**
 * Sends `signal` to `pid` only if it is still the process that started at `startTime`:
 * a pid reused in between must never receive another process's signal.
 * @returns false when the process is gone or is another one.
 */
export function signalSame(procRoot: string, pid: number, startTime: number, signal: NodeJS.Signals): boolean {
  if (!isRunning(procRoot, pid, startTime)) return false
  try {
    process.kill(pid, signal)
    return true
  } catch {
    return false
  }
}

/**
 * SIGTERM, then SIGKILL if it is still there after `graceMs` (one escalation, {@link escalateKill},
 * with the runner's). A stopped (frozen) process is continued after SIGTERM so that it can act on it.
 * @returns how it ended: `terminated` by SIGTERM, `killed` by SIGKILL, or `gone` before any signal.
 */
export async function stopProcess(procRoot: string, pid: number, startTime: number, graceMs: number): Promise<KillOutcome> {
  const kill = (signal: NodeJS.Signals): boolean => {
    if (!signalSame(procRoot, pid, startTime, signal)) return false
    if (signal === 'SIGTERM') signalSame(procRoot, pid, startTime, 'SIGCONT')
    return true
  }
  const watch = watchGone(procRoot, { pid, startTime })
  try {
    return await escalateKill({ kill, gone: watch.gone }, graceMs)
  } finally {
    watch.stop()
  }
}

/** How a freeze went: `stopped` (state T), `pending` (signalled, not stopped yet: `state` says where it is), or `gone`. */
export type FreezeOutcome = { outcome: 'stopped'; afterMs: number } | { outcome: 'pending'; state: string } | { outcome: 'gone' }

/**
 * SIGSTOP, then waits up to `confirmMs` for the process to be stopped. The signal takes
 * effect only when the process next leaves the kernel: a runaway inside memory reclaim
 * (state D) may take a while, and "frozen" is only reported once it is true.
 */
export async function freezeProcess(procRoot: string, pid: number, startTime: number, confirmMs: number): Promise<FreezeOutcome> {
  if (!signalSame(procRoot, pid, startTime, 'SIGSTOP')) return { outcome: 'gone' }
  const started = performance.now()
  let state = stateOf(procRoot, pid, startTime)
  // 1 ms first (the usual case: stopped at once), doubling to 50 ms: a cheap wait either way.
  for (let pause = 1; state !== undefined && !isStopped(state); pause = Math.min(pause * 2, 50)) {
    const left = confirmMs - (performance.now() - started)
    if (left <= 0) return { outcome: 'pending', state }
    await sleep(Math.min(pause, left))
    state = stateOf(procRoot, pid, startTime)
  }
  if (state === undefined) return { outcome: 'gone' }
  return { outcome: 'stopped', afterMs: Math.round(performance.now() - started) }
}

/** T is stopped by a signal; t is stopped while traced (py-spy or gdb attached at that moment). */
function isStopped(state: string): boolean {
  return state === 'T' || state === 't'
}

/** The process's state letter, or undefined when it is gone, a zombie, or another process on the pid. */
function stateOf(procRoot: string, pid: number, startTime: number): string | undefined {
  try {
    const stat = parseStat(readFileSync(`${procRoot}/${pid}/stat`, 'utf8'))
    return isStillRunning(stat, startTime) ? stat.state : undefined
  } catch {
    return undefined
  }
}
