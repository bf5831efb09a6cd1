/** Values that events carry: rlimits, limits, stacks, errors. Imports nothing. */

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

/** One Python frame, as py-spy reports it. */
export interface Frame {
  function: string
  file: string
  line: number
}

/** One Python thread; `frames` innermost first. */
export interface PyThread {
  id: number
  osThreadId?: number
  name?: string
  /** py-spy's view: running (not idle in a wait or sleep). */
  active: boolean
  ownsGil: boolean
  frames: Frame[]
}

/** The frame most likely to be allocating, and the thread it is in. */
export interface Culprit extends Frame {
  threadId: number
  threadName?: string
  /** Why this frame was chosen, in words. */
  why: string
}

/** A failure of the capture, with a stable code and what to do about it. */
export interface CaptureError {
  code: 'PYSPY_MISSING' | 'PTRACE_DENIED' | 'NOT_PYTHON' | 'TARGET_EXITED' | 'PYSPY_TIMEOUT' | 'PYSPY_BAD_OUTPUT' | 'PYSPY_FAILED'
  message: string
  remedy: string
}

/** Why an incident has no flame graph: py-spy's own failure codes, or (`FLAMEGRAPH_*`) why it was not run. */
export interface FlamegraphError {
  code: CaptureError['code'] | 'FLAMEGRAPH_BUSY' | 'FLAMEGRAPH_NO_DIR' | 'FLAMEGRAPH_TARGET_GONE'
  message: string
  remedy: string
}

/** The py-spy binary in use, or why there is none. */
export type PyspyInfo = { path: string; version: string; source: 'config' | 'project' | 'path' } | { error: string; remedy: string }

/** A setting known to turn ordinary code into a memory bomb, found before any growth. */
export interface Risk {
  /** Stable rule id, e.g. `nofile-hard-huge`. */
  rule: string
  /** The rlimit concerned (`NOFILE`, ...). */
  rlimit: string
  value: RlimitValue
  threshold: number
  /** The reason in words, for the person on call. */
  message: string
}

/** Why a capture was triggered: a limit near (`time-to-limit`, `limit-fraction`), or a container held at its cgroup v2 `memory.high` (`memory-high`). */
export type TriggerReason = 'time-to-limit' | 'limit-fraction' | 'memory-high'

/**
 * The variable `oomwatch inject` sets on each app container: its name, which the kernel
 * does not know. oomwatch reads it from a process's environment to label its metrics.
 */
export const CONTAINER_NAME_VARIABLE = 'OOMWATCH_CONTAINER_NAME'
