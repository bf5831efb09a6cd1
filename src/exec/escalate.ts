import { setTimeout as sleep } from 'node:timers/promises'

/** How a kill escalation ended: `gone` before any signal, `terminated` within the grace, `killed` by SIGKILL. */
export type KillOutcome = 'gone' | 'terminated' | 'killed'

/** What {@link escalateKill} acts on: a child's process group, or a process known by pid and start time. */
export interface KillTarget {
  /** Sends `signal`; false when there is nothing left to send it to. */
  kill: (signal: NodeJS.Signals) => boolean
  /** Aborted once the target has ended: the grace is cut short, and no SIGKILL follows. */
  gone: AbortSignal
}

/**
 * SIGTERM, then SIGKILL if the target has not ended `graceMs` later. The grace is a timer
 * that `gone` cancels (as execa's lib/kill.js does), never a poll: the caller says how it
 * learns of the end (a child's `close`, a pid's disappearance).
 */
export async function escalateKill(target: KillTarget, graceMs: number): Promise<KillOutcome> {
  if (!target.kill('SIGTERM')) return 'gone'
  try {
    await sleep(graceMs, undefined, { signal: target.gone })
  } catch (error) {
    /* c8 ignore next */ if (!target.gone.aborted) throw error // the timer rejects only on its signal
    return 'terminated'
  }
  return target.kill('SIGKILL') ? 'killed' : 'terminated'
}
