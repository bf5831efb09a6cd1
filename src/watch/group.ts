import { CgroupCounters, type MemoryCgroup } from '../cgroup/memory-cgroup.js'
import { Series } from '../detect/series.js'
import { noiseFloor, type Verdict } from '../detect/trigger.js'
import type { MemoryLimit } from '../protocol/values.js'

/** A cgroup's counters, read every tick: `CgroupCounters`, or a fake in unit tests. */
export type GroupCounters = Pick<CgroupCounters, 'usage' | 'oomKills' | 'close'>

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
  #counters: GroupCounters | undefined
  /** oom_kill count already explained by an exit (or there before we looked). */
  #oomKillsSeen: number
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
    return true
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
