import { escalateKill, type KillOutcome } from '../exec/escalate.js'
import { isRunning } from '../proc/identity.js'
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
