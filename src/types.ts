/**
 * Data shapes shared by the readers, the detector, the capturer and the sinks.
 * Byte figures are integers; an unlimited rlimit is the string `"unlimited"`.
 */

/** One rlimit value: a number in the row's units, or `"unlimited"` (RLIM_INFINITY). */
export type RlimitValue = number | 'unlimited'

/** One row of `/proc/<pid>/limits`. */
export interface Rlimit {
  soft: RlimitValue
  hard: RlimitValue
  /** As the kernel prints it: `bytes`, `files`, `processes`, `seconds`, `us`, `signals`, `locks`, or `""`. */
  units: string
}

/**
 * The full rlimit table of a process, keyed by the names `prlimit(1)` and Python's
 * `resource` module use (`NOFILE`, `AS`, `NPROC`, ...). A row the kernel adds in a
 * later version keeps its printed title as key, so nothing is dropped.
 */
export type RlimitTable = Record<string, Rlimit>

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

/** How a process was recognised as Python. */
export interface PythonIdentity {
  /**
   * `exe`: the interpreter binary itself; `libpython`: an embedding host (uwsgi, ...) with
   * libpython mapped; `cmdline`: the interpreter's name in argv[0], when `exe` and `maps`
   * cannot be read (a sidecar without CAP_SYS_PTRACE) — the weakest of the three.
   */
  via: 'exe' | 'libpython' | 'cmdline'
  /** The executable path, mapped libpython path or argv[0] that decided it. */
  detail: string
}

/** Where a memory limit figure came from. */
export type LimitSource = 'cgroup-v2' | 'cgroup-v1' | 'env' | 'host'

/**
 * The memory limit that applies to a process, and where it was found. `path` is the
 * file read (for cgroups) or the variable name (for `env`); `via` says how the cgroup
 * was reached: through the target's own root (`/proc/<pid>/root`, as in a pod) or
 * through this agent's view of the cgroup mount.
 */
export interface MemoryLimit {
  bytes: number
  source: LimitSource
  path?: string
  via?: 'proc-root' | 'agent-mount'
}

/** One point of a memory series. `t` is a monotonic clock in milliseconds. */
export interface Sample {
  t: number
  bytes: number
}
