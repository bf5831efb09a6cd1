import { CgroupCounters, type MemoryCgroup } from '../cgroup/memory-cgroup.js'
import { Series } from '../detect/series.js'
import { HighStall, nearHigh, type HighStallFigures } from '../detect/high-stall.js'
import { noiseFloor, type Verdict } from '../detect/trigger.js'
import type { MemoryLimit } from '../protocol/values.js'

/** A cgroup's counters, read every tick: `CgroupCounters`, or a fake in unit tests. */
export type GroupCounters = Pick<CgroupCounters, 'usage' | 'oomKills' | 'close'> &
  Partial<Pick<CgroupCounters, 'groupKill' | 'high' | 'highPressure'>>

/** How often `memory.high` is read again: the kubelet (MemoryQoS) or a person may change it. */
const HIGH_REFRESH_MS = 5000

/** A group kill under way: the exits that follow it link to its runaway. */
export interface GroupKillRecord {
  /** When its first exit was found (monotonic ms). */
  at: number
  runaway: { pid: number; cmdline: string[]; incidentId?: string }
}

/**
 * The processes that share one memory limit: a container's cgroup, or (without one)
 * the configured or host limit. Its usage is the cheap signal read every tick.
 */
export class Group {
  readonly series = new Series()
  readonly members = new Set<number>()
  /** The latest judgement: of the usage, or (without one) the most urgent of the members'. */
  verdict: Verdict | undefined
  /** True when the last read found usage fallen by the noise floor (at most 4 MiB): a member may have exited. */
  fell = false
  /** When every member's RSS was last read (monotonic ms). */
  membersReadAt = -Infinity
  /** When its last member left (monotonic ms); undefined while it has members. It lingers a while, to tell of kills of processes born in it after. */
  emptySince: number | undefined
  /** While the cgroup is held at its `memory.high` for long enough: the figures of that stall. */
  highStall: HighStallFigures | undefined
  readonly #highTracker = new HighStall()
  #high: { bytes: number | undefined; readAt: number } | undefined
  /** The group kill under way, once its first exit was found. */
  groupKill: GroupKillRecord | undefined
  /** The last member to exit, and when (monotonic ms). */
  lastExit: { pid: number; cmdline: string[]; at: number } | undefined
  #counters: GroupCounters | undefined
  /** oom_kill count already explained by an exit (or there before we looked). */
  #oomKillsSeen: number
  /** When kills no exit explained were first counted; undefined while there are none. */
  #unexplainedSince: number | undefined
  /** Why the cgroup's counters could not be opened, to be reported once; members are then judged one by one. */
  readonly openError: Error | undefined
  /** A usage change this large is kept at once (see {@link sample}). */
  readonly #moveBytes: number
  /** A fall this large may be an exit: the noise floor, at most 4 MiB (an idle interpreter's anonymous memory). */
  readonly #exitBytes: number

  constructor(
    readonly key: string,
    readonly limit: MemoryLimit,
    readonly cgroup: MemoryCgroup | undefined,
    open: (cgroup: MemoryCgroup) => GroupCounters = cg => new CgroupCounters(cg),
  ) {
    try {
      this.#counters = cgroup ? open(cgroup) : undefined
    } catch (error) {
      this.openError = error as Error
    }
    this.#oomKillsSeen = this.#readOomKills() ?? 0
    this.#moveBytes = noiseFloor(limit.bytes) / 4
    this.#exitBytes = Math.min(noiseFloor(limit.bytes), 4 << 20)
  }

  /** True when the group's usage can be read in one go (a cgroup); else members are judged one by one. */
  get hasUsage(): boolean {
    return this.#counters !== undefined
  }

  /**
   * Reads the cgroup's usage, every tick. It goes into the series when it moved by a
   * quarter of the noise floor since the last sample kept, or `everyMs` after it: a rise
   * is seen at the tick's resolution, while a steady container keeps a series that spans
   * as much time as before (the detector's window and slow leaks need that span).
   * On failure the group falls back to judging its members one by one, and the error is
   * returned to be reported once.
   *
   * @returns whether a sample was kept, or the error
   */
  sample(now: number, everyMs: number): boolean | Error {
    if (!this.#counters) return false
    this.fell = false
    let usage: number
    try {
      usage = this.#counters.usage()
    } catch (error) {
      this.#counters.close()
      this.#counters = undefined
      return error as Error
    }
    const n = this.series.length
    const change = n > 0 ? usage - this.series.bytes(n - 1) : 0
    this.fell = change <= -this.#exitBytes
    if (n > 0 && now - this.series.t(n - 1) < everyMs && Math.abs(change) < this.#moveBytes) return false
    this.series.push({ t: now, bytes: usage })
    this.#sampleHigh(now, usage)
    return true
  }

  /** Near its `memory.high`, the throttling count and PSI are read too: a stall there is a runaway of its own kind. */
  #sampleHigh(now: number, usage: number): void {
    const counters = this.#counters
    this.highStall = undefined
    if (counters?.high === undefined) return
    try {
      if (this.#high === undefined || now - this.#high.readAt >= HIGH_REFRESH_MS) this.#high = { bytes: counters.high(), readAt: now }
      const high = this.#high.bytes
      const pressure = high !== undefined && nearHigh(usage, high) ? counters.highPressure?.() : undefined
      if (high === undefined || pressure === undefined) return this.#highTracker.reset()
      this.highStall = this.#highTracker.observe({ t: now, usage, high, ...pressure })
    } catch {
      this.#highTracker.reset() // read again at the next sample; the usage, read above, is what matters most
    }
  }

  /**
   * Whether an exit just now was the kernel's OOM killer: the cgroup's oom_kill count
   * rose past what earlier exits already explained. Each kill explains one exit.
   */
  takeOomKill(): boolean {
    const kills = this.#readOomKills()
    if (kills === undefined || kills <= this.#oomKillsSeen) return false
    this.#oomKillsSeen++
    return true
  }

  /**
   * Whether the OOM kill just claimed took the whole cgroup: `memory.oom.group` is 1 (the
   * kubelet's setting on cgroup v2), with the kernel's count of group kills where it keeps one.
   * Undefined on v1, without counters, or with the setting off.
   */
  readGroupKill(): { groupKills?: number } | undefined {
    try {
      const read = this.#counters?.groupKill?.()
      if (!read?.group) return undefined
      return read.groupKills === undefined ? {} : { groupKills: read.groupKills }
    } catch {
      return undefined
    }
  }

  /** True while kills are counted that no exit explained yet: members are read each tick until one does, or the grace ends. */
  get killPending(): boolean {
    return this.#unexplainedSince !== undefined
  }

  /**
   * The kills of processes no exit explained (not watched: not Python, or born and killed
   * between two looks), once they stayed unexplained for `graceMs`: the kernel counts the
   * kill as it sends SIGKILL, and a watched victim's exit may be found a tick later, when
   * it claims its kill first. Those returned count as explained.
   *
   * @returns how many to tell of now
   */
  takeUnexplainedKills(now: number, graceMs: number): number {
    const kills = this.#readOomKills()
    if (kills === undefined || kills <= this.#oomKillsSeen) {
      this.#unexplainedSince = undefined
      return 0
    }
    this.#unexplainedSince ??= now
    if (now - this.#unexplainedSince < graceMs) return 0
    this.#unexplainedSince = undefined
    const unexplained = kills - this.#oomKillsSeen
    this.#oomKillsSeen = kills
    return unexplained
  }

  /** The highest usage among the samples taken since `since` (monotonic ms); undefined without any. */
  peakUsageSince(since: number): number | undefined {
    let peak: number | undefined
    for (let i = this.series.length - 1; i >= 0 && this.series.t(i) >= since; i--) peak = Math.max(peak ?? 0, this.series.bytes(i))
    return peak
  }

  close(): void {
    this.#counters?.close()
    this.#counters = undefined
  }

  #readOomKills(): number | undefined {
    try {
      return this.#counters?.oomKills()
    } catch {
      return undefined
    }
  }
}
