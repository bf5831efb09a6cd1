import type { Triggered } from '../detect/trigger.js'
import type { Watched } from './watched.js'
import type { ExitPayload, GroupKillPayload, OomKillPayload } from '../protocol/events.js'

/**
 * One thing a tick decided, in the order it was decided:
 * - `watch`: a new process to announce (its `process` and `risk` events, the actor's first look);
 * - `exit`: a watched process is gone, with its `exit` event (an OOM kill's post-mortem in it);
 * - `group-kill`: the kernel OOM-killed a watched container as a whole, told once before its exits;
 * - `oom-kill`: the kernel killed a process of a watched container that no watched exit explains, with its `oom-kill` event;
 * - `capture`: a runaway to capture; its gate is entered, and the shell must `leave()` it;
 * - `problem`: a failure to log once per `key`; watching goes on.
 */
export type Decision =
  | { kind: 'watch'; watched: Watched }
  | { kind: 'exit'; exit: ExitPayload }
  | { kind: 'group-kill'; groupKill: GroupKillPayload }
  | { kind: 'oom-kill'; oomKill: OomKillPayload }
  | { kind: 'capture'; watched: Watched; verdict: Triggered }
  | { kind: 'problem'; key: string; error: Error; consequence?: string }

/**
 * What a tick returns: its decisions, and when the next tick is due. A tick that failed
 * midway (a bug, descriptors run out) returns the decisions made before the failure, and
 * the `error`: an exit already decided has forgotten its process, and must still be told.
 */
export type TickResult = { decisions: Decision[]; delayMs: number; error?: unknown }
