import type { MemoryCgroup } from '../cgroup/memory-cgroup.js'
import { Group, type GroupCounters } from './group.js'
import { unexplainedKillOf } from './post-mortem.js'
import type { MemoryLimit } from '../protocol/values.js'
import type { OomKillPayload } from '../protocol/events.js'

/** How long a kill no exit explains waits for a watched victim's exit to be found (it is counted as SIGKILL is sent). */
const KILL_GRACE_MS = 500
/** How long a container is still watched for kills after its last watched process left: a daemon's launcher exits before the daemon leaks. */
const LINGER_MS = 60_000

/**
 * The containers watched, by key, and their lifecycle: made at their first member, kept a
 * minute after their last one (with a kill count), let go after. Every OOM kill in one of
 * them is told: by a watched member's `exit`, or else by an `oom-kill` of its own.
 */
export class Groups {
  readonly #groups = new Map<string, Group>()

  /**
   * @param open - opens a cgroup's counters
   * @param intervalMs - how far apart a quiet pod is looked at, for the `oom-kill` story
   */
  constructor(
    readonly open: (cgroup: MemoryCgroup) => GroupCounters,
    readonly intervalMs: number,
  ) {}

  values(): IterableIterator<Group> {
    return this.#groups.values()
  }

  /** The group of `key`, made (and `made` called with it) when there is none yet. */
  join(key: string, limit: MemoryLimit, cgroup: MemoryCgroup | undefined, made: (group: Group) => void): Group {
    let group = this.#groups.get(key)
    if (group) group.emptySince = undefined
    else {
      group = new Group(key, limit, cgroup, this.open)
      this.#groups.set(key, group)
      made(group)
    }
    return group
  }

  /**
   * Member `pid` left `group` (its exit already took its kill). An emptied group with a kill
   * count lingers: a process born in it after (a daemon whose launcher just left) is still
   * accounted for. Without one it is let go at once.
   */
  leave(group: Group, pid: number, cmdline: string[], now: number): OomKillPayload | undefined {
    group.members.delete(pid)
    group.lastExit = { pid, cmdline, at: now }
    if (group.members.size > 0) return undefined
    if (!group.hasUsage) return this.#forget(group, now)
    group.emptySince ??= now
    return undefined
  }

  /**
   * After a tick's reads of `group`: the kills no exit explained, once past their grace (a
   * kill shows as a fall, or, born, grown and killed between two ticks, at the refresh), and
   * the end of its lingering.
   */
  afterTick(group: Group, now: number, refreshAll: boolean): OomKillPayload | undefined {
    if (group.emptySince !== undefined && now - group.emptySince >= LINGER_MS) return this.#forget(group, now)
    if (!group.hasUsage || !(refreshAll || group.fell || group.killPending)) return undefined
    return this.#unexplained(group, now, KILL_GRACE_MS)
  }

  /** Closes every group's counters. */
  close(): void {
    for (const group of this.#groups.values()) group.close()
    this.#groups.clear()
  }

  #unexplained(group: Group, now: number, graceMs: number): OomKillPayload | undefined {
    const kills = group.takeUnexplainedKills(now, graceMs)
    return kills > 0 ? unexplainedKillOf(group, kills, now, this.intervalMs) : undefined
  }

  /** Lets an empty group go; a kill still unexplained is told now, as nobody is left to claim it. */
  #forget(group: Group, now: number): OomKillPayload | undefined {
    const told = group.hasUsage ? this.#unexplained(group, now, 0) : undefined
    group.close()
    this.#groups.delete(group.key)
    return told
  }
}
