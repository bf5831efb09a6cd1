import { CgroupCounters, findMemoryCgroup, type MemoryCgroup } from '../cgroup/memory-cgroup.js'
import { chooseLimit } from '../limit.js'
import type { BirthSignal } from '../proc/last-pid.js'
import type { ProcReader } from '../proc/reader.js'
import { StatHandles } from '../proc/stat-handles.js'
import type { GroupCounters } from './group.js'
import type { MemoryLimit } from '../protocol/values.js'

/**
 * The reads a watch step makes, and nothing else: the thin I/O between the step's
 * decisions and /proc and cgroupfs. {@link ProcSensors} is the real one; unit tests use it
 * over a fake procfs tree, or fake it outright.
 */
export interface Sensors {
  /** Pid lists, and what discovery reads of a pid (exe, cmdline, maps, stat, limits), and the uptime. */
  readonly proc: Pick<ProcReader, 'listPids' | 'exe' | 'cmdline' | 'maps' | 'stat' | 'limits' | 'uptimeSeconds'>
  /** A process's stat, through a handle kept open (its RSS is read every fast tick); `forget` once it is gone. */
  readonly stats: Pick<StatHandles, 'read' | 'forget'>
  /** The memory cgroup of `pid` (undefined without one) and the limit that applies to it. */
  locate(pid: number): { cgroup: MemoryCgroup | undefined; limit: MemoryLimit }
  /** Opens a cgroup's usage and oom_kill counters; throws when they cannot be. */
  counters(cgroup: MemoryCgroup): GroupCounters
}

/** Tells of births: whether a pid was allocated since the last call (see `BirthSignal`). */
export type Births = Pick<BirthSignal, 'moved' | 'close'>

/** {@link Sensors} over a real procfs root and cgroupfs. */
export class ProcSensors implements Sensors {
  readonly stats: StatHandles

  /**
   * @param proc - the procfs reader
   * @param memoryLimit - the configured limit (bytes), which overrides discovery
   * @param hostMemoryBytes - the last fallback limit
   */
  constructor(
    readonly proc: ProcReader,
    private readonly memoryLimit: number | undefined,
    private readonly hostMemoryBytes: number,
  ) {
    this.stats = new StatHandles(proc)
  }

  locate(pid: number): { cgroup: MemoryCgroup | undefined; limit: MemoryLimit } {
    const cgroup = findMemoryCgroup(this.proc.root, pid)
    return { cgroup, limit: chooseLimit(cgroup, this.memoryLimit, this.hostMemoryBytes) }
  }

  counters(cgroup: MemoryCgroup): GroupCounters {
    return new CgroupCounters(cgroup)
  }

  /** Closes every stat handle. */
  close(): void {
    this.stats.closeAll()
  }
}
