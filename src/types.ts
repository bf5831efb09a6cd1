/**
 * Data shapes shared by the readers, the detector, the capturer and the sinks.
 * Byte figures are integers; an unlimited rlimit is the string `"unlimited"`.
 */

/** Fields of `/proc/<pid>/status` that oomwatch uses. Absent fields are `undefined`. */
export interface ProcStatus {
  name: string
  /** Resident set size, bytes (VmRSS). */
  rssBytes?: number
  /** Peak resident set size, bytes (VmHWM). */
  hwmBytes?: number
  /** Swapped-out anonymous memory, bytes (VmSwap). */
  swapBytes?: number
  threads?: number
  ppid?: number
  /** Real uid (first column of `Uid:`). */
  uid?: number
}

/** Fields of `/proc/<pid>/stat` that oomwatch uses. */
export interface ProcStat {
  pid: number
  /** The command name between the parentheses (may hold spaces and parentheses). */
  comm: string
  state: string
  ppid: number
  /** Start time in clock ticks after boot: with the pid, it identifies a process across pid reuse. */
  startTime: number
  /** Resident set size in pages (field 24). */
  rssPages: number
}

/** One point of a memory series. `t` is a monotonic clock in milliseconds. */
export interface Sample {
  t: number
  bytes: number
}
