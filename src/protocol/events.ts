import type {
  CaptureError,
  Culprit,
  FlamegraphError,
  MemoryLimit,
  PyspyInfo,
  PythonIdentity,
  PyThread,
  Risk,
  RlimitTable,
  RlimitValue,
  TriggerReason,
} from './values.js'

/**
 * The protocol: every event that reaches a WebSocket client, the log and (later) the
 * journal. Names here are the stable contract of shared/DESIGN.md.
 */

/** A watched Python process, as first seen. */
export interface ProcessInfo {
  pid: number
  /** Parent pid: 0 for a container's entrypoint seen from a shared PID namespace. */
  ppid: number
  /** Start time in clock ticks after boot: (pid, startTime) names one process across pid reuse. */
  startTime: number
  cmdline: string[]
  exe?: string
  /** Its container: the name `oomwatch inject` gave it, else its cgroup's id or name; `''` when unknown. */
  container?: string
  python: PythonIdentity
  /** The full rlimit table. */
  rlimits: RlimitTable
  memory: {
    rssBytes?: number
    /** The limit the OOM killer will enforce on it, and where that figure came from. */
    limit: MemoryLimit
    /** The container's memory cgroup, when one was found. */
    cgroup?: { version: 1 | 2; dir: string; via: 'proc-root' | 'agent-mount'; usageBytes?: number }
  }
}

export interface HelloPayload {
  type: 'hello'
  version: string
  /** When this agent started (ISO 8601): a new value with a lower seq means a restart without a journal. */
  startedAt: string
  /** The effective configuration; secrets are replaced by whether they are set. */
  config: Record<string, unknown>
  pyspy: PyspyInfo
  /** The agent's own cost, as pidusage last measured it (CPU over the last 10 s). */
  agent: AgentUsage
  watching: ProcessInfo[]
  /** With `?since=SEQ`: what follows this hello before the live stream. */
  replay?: ReplaySummary
}

/**
 * What a replay sends: `count` events, seq `since + missed + 1` onwards, then the live stream.
 * A replay longer than one page is `truncated`: the page is sent, then the connection is
 * closed (1000), and the client reconnects with `?since=<next>` for the following page.
 */
export interface ReplaySummary {
  since: number
  /** Events that follow the hello. */
  count: number
  /** Events after `since` no longer kept (rotated away): the replay starts after them. */
  missed: number
  /** Present when more events follow this page: no live stream on this connection. */
  truncated?: true
  /** With `truncated`: the seq of this page's last event; reconnect with `?since=<next>`. */
  next?: number
}

/** Sent to one client that sent something the protocol does not define. */
export interface ClientErrorPayload {
  type: 'error'
  code: 'CLIENT_MESSAGE_UNSUPPORTED'
  message: string
}

export interface AgentUsage {
  pid: number
  cpuPercent?: number
  rssBytes?: number
}

export interface ProcessPayload extends ProcessInfo {
  type: 'process'
}

export interface RiskPayload extends Risk {
  type: 'risk'
  pid: number
  cmdline: string[]
}

/** Memory figures at the trigger. `secondsToLimit` is null when memory is not growing. */
export interface IncidentMemory {
  rssBytes?: number
  usageBytes: number
  limitBytes: number
  limitSource: MemoryLimit['source']
  limitPath?: string
  fractionOfLimit: number
  growthBytesPerSec: number
  secondsToLimit: number | null
  /** A `memory-high` incident's stall: the mark, how long the cgroup was held there, its throttling events and (PSI) the share of time its tasks stalled. */
  high?: { highBytes: number; stalledMs: number; throttleEvents: number; stallFraction?: number }
}

/** The process at the trigger, from /proc/<pid>/status. */
export interface IncidentProcess {
  threads?: number
  /** Peak RSS (VmHWM). */
  hwmBytes?: number
  swapBytes?: number
}

export interface IncidentPayload {
  type: 'incident'
  id: string
  pid: number
  cmdline: string[]
  reason: TriggerReason
  /** The whole story in one sentence: frame, growth, limit, and the rlimit that explains it. */
  summary: string
  memory: IncidentMemory
  process: IncidentProcess
  /** The rlimit table read at the trigger. */
  rlimits: RlimitTable
  /** Risks of this process's rlimits: the likely explanation. */
  risks: Risk[]
  threads: PyThread[]
  culprit?: Culprit
  capture: {
    /** From the trigger to the parsed stack, ms. */
    triggerToStackMs: number
    pyspyMs: number
    error?: CaptureError
  }
}

export interface ExitPayload {
  type: 'exit'
  pid: number
  cmdline: string[]
  /** True when the container cgroup's oom_kill count rose: the kernel's OOM killer took it. */
  oomKilled: boolean
  lastIncidentId?: string
  peakRssBytes?: number
  /**
   * How long it lived, ms: from its start (as /proc/<pid>/stat tells it; where /proc has no
   * uptime, from its first sighting) to the tick that found it gone, which for a steady
   * process may be up to the refresh interval after its end.
   */
  livedMs?: number
  /** When the kernel took it: the story in one place, for the person who arrives after the kill. */
  postMortem?: PostMortem
  /**
   * Killed with its whole container (cgroup v2's `memory.oom.group`, which the kubelet sets)
   * because another process ran away: that one, and the `group-kill` event that tells it.
   */
  killedWith?: { pid: number; cmdline: string[]; incidentId?: string }
}

/**
 * The kernel OOM-killed a watched container as a whole (cgroup v2's `memory.oom.group=1`,
 * the kubelet's setting): one account of it, naming the process that ran away. The exits
 * that follow link to it (`killedWith`); only the runaway's own exit tells its post-mortem.
 */
export interface GroupKillPayload {
  type: 'group-kill'
  /** The container's memory cgroup, as this agent reaches it. */
  cgroup: { version: 1 | 2; dir: string }
  limit: MemoryLimit
  /** The process that ran the container out of memory: the one with an incident, else the largest. */
  runaway: {
    pid: number
    cmdline: string[]
    peakRssBytes: number
    incidentId?: string
    culprit?: { function: string; file: string; line: number }
  }
  /** The watched processes killed with it (the runaway first). */
  killed: number[]
  /** `oom_group_kill` of `memory.events`, where the kernel counts it (newer kernels; absent on older ones). */
  groupKills?: number
  /** The story in one line. */
  summary: string
}

/**
 * The kernel's OOM killer took a process oomwatch was not watching, in a container where it
 * watches (or watched until moments ago) a Python process: one that is not Python, or one
 * born and killed between two looks. No OOM kill in a watched container goes untold.
 */
export interface OomKillPayload {
  type: 'oom-kill'
  /** How many kills the container's oom_kill count rose by that no watched process's exit explains. */
  kills: number
  /** The container's memory cgroup, as this agent reaches it. */
  cgroup: { version: 1 | 2; dir: string }
  limit: MemoryLimit
  /** The container's highest usage oomwatch saw in the last 10 s, bytes: a spike between two looks is not in it. */
  peakUsageSeenBytes?: number
  /** The watched processes of the container still alive. */
  survivors: number[]
  /** The last watched process of the container to exit, when one did within the last minute: a daemon's launcher, say. */
  lastExit?: { pid: number; cmdline: string[]; agoMs: number }
  /** The story in one line. */
  summary: string
}

/** What an OOM kill's `exit` carries: the last incident's culprit, the peak, the limit, the likely cause. */
export interface PostMortem {
  summary: string
  culprit?: { function: string; file: string; line: number }
  peakRssBytes: number
  limitBytes: number
  limitSource: MemoryLimit['source']
  /** How long the process lived, ms. */
  livedMs: number
  /** The risk that explains it (an rlimit), in words. */
  explanation?: string
}

/** Something oomwatch did (only when enabled): what, to which pid, why, and the result. */
export interface ActionPayload {
  type: 'action'
  action: 'clamp-rlimit' | 'stop' | 'freeze' | 'release'
  pid: number
  cmdline: string[]
  reason: string
  /** `skipped`: a rule kept it from acting (PID 1, an entrypoint, no longer a runaway). */
  result: 'done' | 'refused' | 'failed' | 'skipped'
  detail?: string
  remedy?: string
  incidentId?: string
  rlimit?: { name: string; from: { soft: RlimitValue; hard: RlimitValue }; to: { soft: number; hard: number } }
  /** For a clamp: how long after the process started it was done, ms. */
  afterStartMs?: number
}

/**
 * Follows an incident whose process was still alive after the dump: a short `py-spy
 * record` as an SVG flame graph at `url` (a path on this agent), or why there is none.
 */
export interface FlamegraphPayload {
  type: 'flamegraph'
  incidentId: string
  pid: number
  /** `/incidents/<id>/flamegraph.svg`; absent when `error` is set. */
  url?: string
  /** How long py-spy recorded, ms (less than asked when the process died meanwhile). */
  durationMs?: number
  error?: FlamegraphError
}

/**
 * Not an event: a per-client frame for the live page (`?memory=1`), never journaled or
 * logged. Each watched process's RSS points since the last frame (in the first frame,
 * the history kept), as `[epoch ms, bytes]`, with its memory limit.
 */
export interface MemoryPayload {
  type: 'memory'
  processes: { pid: number; limitBytes: number; points: [number, number][] }[]
}

/** A memory frame as sent: stamped at the current seq, like a hello. */
export type MemoryFrame = MemoryPayload & { seq: number; ts: string }

export type EventPayload =
  | HelloPayload
  | ClientErrorPayload
  | ProcessPayload
  | RiskPayload
  | IncidentPayload
  | ExitPayload
  | OomKillPayload
  | GroupKillPayload
  | ActionPayload
  | FlamegraphPayload

/** Events for one client only; they carry the current seq without taking one. */
export type PerClient = HelloPayload | ClientErrorPayload

/** An event as sent: the payload with its sequence number and ISO 8601 time. */
export type OomwatchEvent = EventPayload & { seq: number; ts: string }
