import { CgroupCounters, type MemoryCgroup } from '../cgroup/memory-cgroup.js'
import { Series } from '../detect/series.js'
import type { Verdict } from '../detect/trigger.js'
import type { MemoryLimit } from '../types.js'

/**
 * The processes that share one memory limit: a container's cgroup, or (without one)
 * the configured or host limit. Its usage is the cheap signal read every tick.
 */
export class Group {
  readonly series = new Series()
  readonly members = new Set<number>()
  verdict: Verdict | undefined
  #counters: CgroupCounters | undefined
  /** oom_kill count already explained by an exit (or there before we looked). */
  #oomKillsSeen: number
  /** Why the cgroup's counters could not be opened, to be reported once; members are then judged one by one. */
  readonly openError: Error | undefined

  constructor(
    readonly key: string,
    readonly limit: MemoryLimit,
    readonly cgroup: MemoryCgroup | undefined,
  ) {
    try {
      this.#counters = cgroup ? new CgroupCounters(cgroup) : undefined
    } catch (error) {
      this.openError = error as Error
    }
    this.#oomKillsSeen = this.#readOomKills() ?? 0
  }

  /** True when the group's usage can be read in one go (a cgroup); else members are judged one by one. */
  get hasUsage(): boolean {
    return this.#counters !== undefined
  }

  /**
   * Reads the cgroup's usage into the series. On failure the group falls back to
   * judging its members one by one, and the error is returned to be reported once.
   */
  sample(now: number): Error | undefined {
    if (!this.#counters) return undefined
    try {
      this.series.push({ t: now, bytes: this.#counters.usage() })
      return undefined
    } catch (error) {
      this.#counters.close()
      this.#counters = undefined
      return error as Error
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
