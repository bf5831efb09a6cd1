import { setTimeout as sleep } from 'node:timers/promises'
import { isRunning, type ProcessIdentity } from './identity.js'

/** The first pause between two looks, ms; it doubles up to {@link MAX_PAUSE_MS}. */
const FIRST_PAUSE_MS = 5
const MAX_PAUSE_MS = 100

/**
 * Watches `target` (a process that is not the agent's child) until it has ended or its pid
 * names another process: `gone` then aborts. `stop` is the undo, ending the watch early.
 *
 * Why this looks again and again: for a process that is not its child, Linux tells of its
 * end only through a pidfd (pidfd_open(2), which Node does not expose) or ptrace, and procfs
 * sends no change notifications (inotify does not see /proc). So its stat is read with a
 * backoff, 5 ms doubling to 100 ms: an end soon after SIGTERM is seen within a few ms, and a
 * process that takes its whole grace costs about 10 reads a second, not 100.
 */
export function watchGone(procRoot: string, target: ProcessIdentity): { gone: AbortSignal; stop: () => void } {
  const gone = new AbortController()
  const stopping = new AbortController()
  const look = async () => {
    for (let pause = FIRST_PAUSE_MS; !stopping.signal.aborted; pause = Math.min(pause * 2, MAX_PAUSE_MS)) {
      if (!isRunning(procRoot, target.pid, target.startTime)) return gone.abort()
      try {
        await sleep(pause, undefined, { signal: stopping.signal })
      } catch {
        return // stopped: the caller no longer waits for it
      }
    }
  }
  void look()
  return { gone: gone.signal, stop: () => stopping.abort() }
}
