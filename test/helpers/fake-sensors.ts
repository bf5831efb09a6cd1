import { buildIncident } from '../../src/capture/incident.js'
import type { MemoryCgroup } from '../../src/cgroup/memory-cgroup.js'
import type { GroupCounters } from '../../src/watch/group.js'
import { DEFAULTS } from '../../src/config.js'
import type { ProcStat } from '../../src/types.js'
import type { Births, Sensors } from '../../src/watch/sensors.js'
import type { Watched } from '../../src/watch/watched.js'
import type { Decision, TickResult } from '../../src/watch/decisions.js'
import { WatchStep, type StepConfig } from '../../src/watch/step.js'
import type { MemoryLimit, RlimitTable } from '../../src/protocol/values.js'

export const MiB = 1 << 20
export const PAGE = 4096

/** The monotonic time at which the fake machine booted: uptime is `now - BOOT`. */
const BOOT = -10_000_000

/** One process of the fake tree. */
export interface FakeProcess {
  exe: string
  /** Its arguments after argv[0] (`/app/<pid>.py` unless spawned with others). */
  args: string[]
  startTime: number
  rssBytes: number
  state: string
  cgroup: string | undefined
  rlimits: RlimitTable
}

/** A process to start: its RSS (20 MiB), cgroup (none), age (0), executable (python3.11) and rlimits. */
export interface SpawnOptions {
  rssBytes?: number
  cgroup?: string
  ageMs?: number
  exe?: string
  args?: string[]
  rlimits?: RlimitTable
}

/** A cgroup of the fake tree: its usage and oom_kill count, as its files would say. */
export interface FakeCgroup {
  usage: number
  oomKills: number
  limit: number
  /** `memory.oom.group`: the kernel kills the whole cgroup on an OOM. */
  oomGroup?: boolean
  /** `oom_group_kill` of `memory.events`, where the kernel counts it. */
  groupKills?: number
  /** `memory.high`, bytes; unset: `max`. */
  high?: number
  /** `high` of `memory.events`. */
  highEvents?: number
  /** `some total=` of `memory.pressure`, µs; unset: no PSI. */
  stallUs?: number
}

export const PLAIN_LIMITS: RlimitTable = { NOFILE: { soft: 1024, hard: 1024, units: 'files' } }
export const HUGE_NOFILE: RlimitTable = { NOFILE: { soft: 1024, hard: 1073741816, units: 'files' } }

/**
 * A /proc and cgroupfs in memory, on a synthetic clock: the test moves `now`, spawns,
 * grows and kills processes, and the step reads them through the {@link Sensors} port as
 * it would read the real files.
 */
export class FakeTree implements Sensors {
  now = 0
  readonly processes = new Map<number, FakeProcess>()
  readonly cgroups = new Map<string, FakeCgroup>()
  /** The limit of processes outside any cgroup (the `env` source). */
  envLimit = 256 * MiB
  /** Pids whose stat handle was forgotten, in order. */
  readonly forgotten: number[] = []
  /** Cgroups whose counters were closed, in order. */
  readonly closedCgroups: string[] = []

  readonly proc: Sensors['proc'] = {
    listPids: () => [...this.processes.keys()].sort((a, b) => a - b),
    exe: pid => this.processes.get(pid)?.exe,
    cmdline: pid => {
      const p = this.processes.get(pid)
      return p && [p.exe, ...p.args]
    },
    maps: () => '',
    stat: pid => this.#stat(pid),
    limits: pid => this.processes.get(pid)?.rlimits,
    uptimeSeconds: () => (this.now - BOOT) / 1000,
  }

  readonly stats: Sensors['stats'] = {
    read: pid => this.#stat(pid),
    forget: pid => void this.forgotten.push(pid),
  }

  /** Process `pid`, which the test expects to be there. */
  process(pid: number): FakeProcess {
    const p = this.processes.get(pid)
    if (!p) throw new Error(`no process ${pid} in the fake tree`)
    return p
  }

  /** Cgroup `id`, which the test expects to be there. */
  group(id: string): FakeCgroup {
    const cgroup = this.cgroups.get(id)
    if (!cgroup) throw new Error(`no cgroup ${id} in the fake tree`)
    return cgroup
  }

  /** A cgroup with `usage` bytes in use. */
  cgroup(id: string, usage: number, limit = 256 * MiB): FakeCgroup {
    const cgroup = { usage, oomKills: 0, limit }
    this.cgroups.set(id, cgroup)
    return cgroup
  }

  /** Starts a process `ageMs` before now (its start time in clock ticks, as /proc says it). */
  spawn(pid: number, options: SpawnOptions = {}): FakeProcess {
    const startTime = Math.round((this.now - (options.ageMs ?? 0) - BOOT) / 10)
    const process: FakeProcess = {
      exe: options.exe ?? '/usr/bin/python3.11',
      args: options.args ?? [`/app/${pid}.py`],
      startTime,
      rssBytes: options.rssBytes ?? 20 * MiB,
      state: 'S',
      cgroup: options.cgroup,
      rlimits: options.rlimits ?? PLAIN_LIMITS,
    }
    this.processes.set(pid, process)
    return process
  }

  locate(pid: number): { cgroup: MemoryCgroup | undefined; limit: MemoryLimit } {
    const id = this.processes.get(pid)?.cgroup
    const cgroup = id === undefined ? undefined : this.cgroups.get(id)
    if (id === undefined || !cgroup) {
      return { cgroup: undefined, limit: { bytes: this.envLimit, source: 'env', path: 'OOMWATCH_MEMORY_LIMIT' } }
    }
    const dir = `/sys/fs/cgroup/${id}`
    return {
      cgroup: { id, version: 2, dir, via: 'proc-root', chain: [dir], path: '/' },
      limit: { bytes: cgroup.limit, source: 'cgroup-v2', path: `${dir}/memory.max` },
    }
  }

  counters(cg: MemoryCgroup): GroupCounters {
    const cgroup = this.group(cg.id)
    return {
      usage: () => cgroup.usage,
      oomKills: () => cgroup.oomKills,
      groupKill: () => ({ group: cgroup.oomGroup === true, ...(cgroup.groupKills !== undefined && { groupKills: cgroup.groupKills }) }),
      high: () => cgroup.high,
      highPressure: () => ({ events: cgroup.highEvents ?? 0, ...(cgroup.stallUs !== undefined && { stallUs: cgroup.stallUs }) }),
      close: () => void this.closedCgroups.push(cg.id),
    }
  }

  #stat(pid: number): ProcStat | undefined {
    const p = this.processes.get(pid)
    return p && { pid, comm: 'python3', state: p.state, ppid: 1, startTime: p.startTime, rssPages: Math.round(p.rssBytes / PAGE) }
  }
}

/** A birth signal the test moves by hand. */
export class FakeBirths implements Births {
  pending = false
  failure: Error | undefined
  closed = false
  moved(): boolean {
    if (this.failure) throw this.failure
    const moved = this.pending
    this.pending = false
    return moved
  }
  close(): void {
    this.closed = true
  }
}

/** The defaults' settings: intervals 100 / 20 ms, refresh 5 s, scan 500 ms, window 2 s, cooldown 60 s. */
export const CONFIG: StepConfig = { ...DEFAULTS, match: undefined }

/** A step over `tree`, with a birth signal (or none). */
export function stepOver(tree: FakeTree, births: Births | undefined = new FakeBirths(), config: Partial<StepConfig> = {}): WatchStep {
  return new WatchStep({ config: { ...CONFIG, ...config }, sensors: tree, pageSize: PAGE, ownPids: new Set([1]), births, fastScan: false })
}

/** Runs ticks every `everyMs` until `untilMs`, calling `between` before each, and gathers every decision. */
export function run(
  step: WatchStep,
  tree: FakeTree,
  everyMs: number,
  untilMs: number,
  between: (now: number) => void = () => {},
): { decisions: Decision[]; last: TickResult } {
  const decisions: Decision[] = []
  let last: TickResult = { decisions: [], delayMs: everyMs }
  while (tree.now + everyMs <= untilMs) {
    tree.now += everyMs
    between(tree.now)
    last = step.tick(tree.now)
    decisions.push(...last.decisions)
  }
  return { decisions, last }
}

/** The decisions of one kind. */
export function only<K extends Decision['kind']>(decisions: readonly Decision[], kind: K): Extract<Decision, { kind: K }>[] {
  return decisions.filter((d): d is Extract<Decision, { kind: K }> => d.kind === kind)
}

/**
 * The incident the shell would set on a captured process: `id`, and a stack whose culprit is
 * `fd_table` (/app/leak.py:12). The capture's gate is left, as the shell leaves it.
 */
export function setCaughtIncident(capture: Extract<Decision, { kind: 'capture' }>, id: string): Watched {
  const w = capture.watched
  w.lastIncident = buildIncident({
    id,
    pid: w.info.pid,
    cmdline: w.info.cmdline,
    verdict: capture.verdict,
    limit: w.group.limit,
    rlimits: w.info.rlimits,
    risks: w.risks,
    process: {},
    stack: {
      threads: [{ id: 1, active: true, ownsGil: true, frames: [{ function: 'fd_table', file: '/app/leak.py', line: 12 }] }],
      culprit: { function: 'fd_table', file: '/app/leak.py', line: 12, threadId: 1, why: 'innermost' },
      pyspyMs: 30,
    },
    triggerToStackMs: 40,
  })
  w.gate.leave()
  return w
}
