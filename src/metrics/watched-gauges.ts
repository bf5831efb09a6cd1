import { Gauge, type Registry } from 'prom-client'
import { commandName } from '../format/command-name.js'
import type { ProcessInfo } from '../protocol/events.js'
import type { AgentStatus } from '../status.js'

/** Labels of a per-process series: container and command, and pid when asked for. */
export type ProcessLabels = { container: string; command: string; pid?: string }

/** What the processes that share one set of labels add up to. */
export interface ProcessAggregate {
  labels: ProcessLabels
  count: number
  rssBytes: number
  /** The highest hard NOFILE among them (+Inf when one is unlimited); absent when none has one. */
  nofileHard?: number
}

/**
 * The watched processes grouped by their labels. Without `withPid`, the workers of one pool
 * (gunicorn, celery) are one series, however often they are recycled: their count, summed
 * RSS and highest NOFILE, as kube-state-metrics keeps per-object series stable.
 */
export function aggregateProcesses(processes: readonly ProcessInfo[], withPid: boolean): ProcessAggregate[] {
  const byKey = new Map<string, ProcessAggregate>()
  for (const p of processes) {
    const labels: ProcessLabels = { container: p.container ?? '', command: commandName(p.cmdline), ...(withPid && { pid: String(p.pid) }) }
    const key = `${labels.container}\0${labels.command}\0${labels.pid ?? ''}`
    const hard = p.rlimits.NOFILE?.hard
    const nofile = hard === 'unlimited' ? Infinity : hard
    const entry = byKey.get(key)
    if (entry === undefined) {
      byKey.set(key, { labels, count: 1, rssBytes: p.memory.rssBytes ?? 0, ...(nofile !== undefined && { nofileHard: nofile }) })
      continue
    }
    entry.count++
    entry.rssBytes += p.memory.rssBytes ?? 0
    if (nofile !== undefined) entry.nofileHard = Math.max(entry.nofileHard ?? -Infinity, nofile)
  }
  return [...byKey.values()]
}

/**
 * The gauges of what is watched now, read from the agent's status at each scrape (an exited
 * process or a container without one is gone from the next): per container, its memory, and
 * per container and command, the processes.
 */
export function registerWatchedGauges(registry: Registry, status: Pick<AgentStatus, 'processes' | 'containers'>, withPid: boolean): void {
  const registers = [registry]
  const processLabels = withPid ? (['container', 'command', 'pid'] as const) : (['container', 'command'] as const)
  const perProcess = (name: string, help: string, value: (a: ProcessAggregate) => number | undefined) =>
    new Gauge({
      name,
      help,
      labelNames: processLabels,
      registers,
      collect() {
        this.reset()
        for (const aggregate of aggregateProcesses(status.processes(), withPid)) {
          const v = value(aggregate)
          if (v !== undefined) this.set(aggregate.labels, v)
        }
      },
    })
  perProcess('oomwatch_watched_processes', 'Python processes watched now.', a => a.count)
  perProcess('oomwatch_process_resident_memory_bytes', 'Resident set size of the watched Python processes, summed, bytes.', a => a.rssBytes)
  perProcess(
    'oomwatch_process_nofile_hard_limit',
    'Highest hard RLIMIT_NOFILE among them, in files (+Inf when unlimited).',
    a => a.nofileHard,
  )

  const perContainer = (name: string, help: string, value: (c: ReturnType<AgentStatus['containers']>[number]) => number | undefined) =>
    new Gauge({
      name,
      help,
      labelNames: ['container'],
      registers,
      collect() {
        this.reset()
        for (const c of status.containers()) {
          const v = value(c)
          if (v !== undefined) this.set({ container: c.container }, v)
        }
      },
    })
  perContainer('oomwatch_container_memory_usage_bytes', "A watched container's memory cgroup usage, bytes.", c => c.usageBytes)
  perContainer(
    'oomwatch_container_memory_limit_bytes',
    "The limit the OOM killer enforces on a watched container (its cgroup's, else the configured or host memory), bytes.",
    c => c.limitBytes,
  )
  perContainer(
    'oomwatch_container_memory_seconds_to_limit',
    "Predicted seconds until a watched container's memory reaches its limit at its current growth; absent while it is not growing.",
    c => c.secondsToLimit,
  )
}
