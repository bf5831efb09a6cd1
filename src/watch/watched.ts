import type { MemoryCgroup } from '../cgroup/memory-cgroup.js'
import { containerName } from '../proc/container-name.js'
import { CaptureGate } from '../detect/cooldown.js'
import { findRisks } from '../detect/rlimit-rules.js'
import { Series } from '../detect/series.js'
import type { Redactor } from '../format/redact-secrets.js'
import type { Found } from './discovery.js'
import type { Group } from './group.js'
import type { MemoryReading } from './memory-reading.js'
import type { Risk } from '../protocol/values.js'
import type { IncidentPayload, ProcessInfo } from '../protocol/events.js'

/** One watched process: what the watch step keeps of it between ticks. */
export interface Watched {
  info: ProcessInfo
  group: Group
  series: Series
  gate: CaptureGate
  risks: Risk[]
  peakRss: number
  /** When it started, on the monotonic clock (its first sighting where /proc has no uptime). */
  bornAt: number
  /** When its interpreter started: `bornAt`, or when a wrapper was seen to exec it. Start-up runs from here. */
  startedAt: number
  /** When the agent first saw it, on the monotonic clock. */
  seenAt: number
  /** When its RSS was last read. */
  readAt: number
  /** Its RSS when its start-up was first seen to pause; undefined until then. */
  settledBytes?: number
  /** Set by the shell once an incident of it is out: an OOM kill's post-mortem tells of it. */
  lastIncident?: IncidentPayload
}

/** What {@link watchedFrom} needs beside the process and its group. */
export interface WatchedOptions {
  now: number
  pageSize: number
  /** When it started, on the monotonic clock. */
  bornAt: number
  /** Its memory cgroup, as reached through its own root (a group's first member may reach it by another path). */
  cgroup: MemoryCgroup | undefined
  cooldownMs: number
  nofileRisk: number
  /**
   * Applied here, where a command line enters the core: every event, log line and journal
   * entry about the process is built from this info, so none holds the secrets it hides.
   */
  redactor: Redactor
}

/** A process found by discovery, as the step keeps it: its info (as its `process` event tells it), first sample, risks and gate. */
export function watchedFrom(found: Found, group: Group, options: WatchedOptions): Watched {
  const { now, bornAt } = options
  const rssBytes = found.rssPages * options.pageSize
  const { cgroup } = options
  const usage = group.series.lastBytes()
  const info: ProcessInfo = {
    pid: found.pid,
    ppid: found.ppid,
    startTime: found.startTime,
    cmdline: options.redactor.cmdline(found.cmdline),
    // argv[0] where the exe link is unreadable, and a path the program chose in any case.
    exe: options.redactor.text(found.exe),
    container: containerName(found.injectedContainer, cgroup?.path),
    python: found.python,
    rlimits: found.rlimits,
    memory: {
      rssBytes,
      limit: group.limit,
      ...(cgroup && {
        cgroup: { version: cgroup.version, dir: cgroup.dir, via: cgroup.via, ...(usage !== undefined && { usageBytes: usage }) },
      }),
    },
  }
  const series = new Series()
  series.push({ t: now, bytes: rssBytes })
  const risks = findRisks(found.rlimits, { nofileRisk: options.nofileRisk })
  const startedAt = found.execSeenAt ?? bornAt
  const gate = new CaptureGate(options.cooldownMs)
  return { info, group, series, gate, risks, peakRss: rssBytes, bornAt, startedAt, seenAt: now, readAt: now }
}

/** Its `process` info with its last RSS. */
export function infoNow(w: Watched): ProcessInfo {
  return { ...w.info, memory: { ...w.info.memory, rssBytes: w.series.lastBytes() ?? 0 } }
}

/** Its last RSS and limit: a point of the live page's chart. */
export function memoryReading(w: Watched): MemoryReading {
  return { pid: w.info.pid, rssBytes: w.series.lastBytes() ?? 0, limitBytes: w.group.limit.bytes }
}
