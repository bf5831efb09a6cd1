import type { Rlimit, RlimitValue } from '../protocol/values.js'

/** What to do with a runaway once its stack is out. */
export type RunawayAction = 'none' | 'stop' | 'freeze'

/** The new NOFILE limits for a process whose limits exceed `ceiling`, or undefined when within it. */
export function clampTarget(current: Rlimit, ceiling: number): { soft: number; hard: number } | undefined {
  if (!above(current.hard, ceiling) && !above(current.soft, ceiling)) return undefined
  const soft = above(current.soft, ceiling) ? ceiling : (current.soft as number)
  return { soft, hard: ceiling }
}

function above(value: RlimitValue, ceiling: number): boolean {
  return value === 'unlimited' || value > ceiling
}

/**
 * Why a process must be left alone, or undefined when it may be acted on. PID 1, and a
 * container's entrypoint (parent pid 0: its parent lives outside this PID namespace, as
 * every container's first process does in a pod with a shared PID namespace), end the
 * whole container when killed: only when the user says so.
 */
export function protectedReason(pid: number, ppid: number, actOnEntrypoint: boolean): string | undefined {
  if (actOnEntrypoint) return undefined
  if (pid === 1) return 'it is PID 1'
  if (ppid === 0) return "it is a container's entrypoint (its parent is outside this PID namespace)"
  return undefined
}
