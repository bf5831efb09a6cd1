import { formatBytes } from '../format/bytes.js'
import { commandName } from '../format/command-name.js'
import type { Watched } from './watched.js'
import type { Group } from './group.js'
import type { ExitPayload, IncidentPayload, OomKillPayload, PostMortem } from '../protocol/events.js'

/**
 * The story of an OOM kill, from the last incident (when there was one) and the process's
 * figures. A process killed before any stack was caught says how long it lived and how
 * soon it was seen: a first-instant leak that won the race is told as one, never as silence.
 */
export function postMortem(w: Watched, last: IncidentPayload | undefined, now: number): PostMortem {
  const culprit = last?.culprit
  const explanation = (last?.risks ?? w.risks)[0]?.message
  const livedMs = Math.round(now - w.bornAt)
  const where = culprit
    ? `${culprit.function} (${culprit.file}:${culprit.line}) was growing memory`
    : `no stack was caught before the kill (it lived ${formatMs(livedMs)}, ` +
      `seen ${formatMs(w.seenAt - w.bornAt)} after its start${last ? '' : ', no incident'})`
  const limit = w.group.limit
  return {
    summary:
      `pid ${w.info.pid} was OOM-killed: ${where}; ` +
      `peak RSS ${formatBytes(w.peakRss)}, limit ${formatBytes(limit.bytes)} (${limit.source})` +
      (explanation ? `. Likely cause: ${explanation}` : ''),
    ...(culprit && { culprit: { function: culprit.function, file: culprit.file, line: culprit.line } }),
    peakRssBytes: w.peakRss,
    limitBytes: limit.bytes,
    limitSource: limit.source,
    livedMs,
    ...(explanation && { explanation }),
  }
}

/**
 * The `exit` event of a watched process that is gone; `oomKilled`: its cgroup's oom_kill count
 * rose for it. `killedWith`: it was killed with its whole container because that process ran
 * away, and its post-mortem says so instead of looking for a stack of its own.
 */
export function exitOf(w: Watched, oomKilled: boolean, now: number, killedWith?: ExitPayload['killedWith']): ExitPayload {
  const last = w.lastIncident
  return {
    type: 'exit',
    pid: w.info.pid,
    cmdline: w.info.cmdline,
    oomKilled,
    ...(last && { lastIncidentId: last.id }),
    peakRssBytes: w.peakRss,
    livedMs: Math.round(now - w.bornAt),
    ...(oomKilled && { postMortem: killedWith ? collateralPostMortem(w, killedWith, now) : postMortem(w, last, now) }),
    ...(killedWith && { killedWith }),
  }
}

/** The post-mortem of a process killed with its container because another ran away: no stack of its own to look for. */
function collateralPostMortem(w: Watched, runaway: NonNullable<ExitPayload['killedWith']>, now: number): PostMortem {
  const limit = w.group.limit
  const incident = runaway.incidentId ? `, incident ${runaway.incidentId}` : ''
  return {
    summary:
      `pid ${w.info.pid} was killed with its container (memory.oom.group) because pid ${runaway.pid} ` +
      `(${commandName(runaway.cmdline)}) ran away${incident}; its own peak RSS ${formatBytes(w.peakRss)}, ` +
      `limit ${formatBytes(limit.bytes)} (${limit.source})`,
    peakRssBytes: w.peakRss,
    limitBytes: limit.bytes,
    limitSource: limit.source,
    livedMs: Math.round(now - w.bornAt),
  }
}

/** How far back an unexplained kill's peak usage is looked for: the kill came since the last look at its kill count, at most a refresh ago. */
const PEAK_LOOKBACK_MS = 10_000

/**
 * The `oom-kill` event of kills in `group` that no watched exit explains, at `now`. A group
 * reaches here only with a cgroup (the kill count is the cgroup's). `intervalMs` is how far
 * apart a quiet pod is looked at: the longest a process can live unseen.
 */
export function unexplainedKillOf(group: Group, kills: number, now: number, intervalMs: number): OomKillPayload {
  const cgroup = { version: group.cgroup!.version, dir: group.cgroup!.dir }
  const peakUsageSeenBytes = group.peakUsageSince(now - PEAK_LOOKBACK_MS)
  const last = group.lastExit
  const lastExit = last && { pid: last.pid, cmdline: last.cmdline, agoMs: Math.round(now - last.at) }
  const victims = kills === 1 ? 'a process' : `${kills} processes`
  return {
    type: 'oom-kill',
    kills,
    cgroup,
    limit: group.limit,
    ...(peakUsageSeenBytes !== undefined && { peakUsageSeenBytes }),
    survivors: [...group.members],
    ...(lastExit && { lastExit }),
    summary:
      `the kernel OOM-killed ${victims} oomwatch was not watching, in the container ${cgroup.dir} ` +
      `(limit ${formatBytes(group.limit.bytes)}, ${group.limit.source}): not a Python process, or one born and killed ` +
      `between two looks (${intervalMs} ms apart in a quiet pod; --interval shortens it)` +
      (peakUsageSeenBytes !== undefined ? `; the highest usage seen in it was ${formatBytes(peakUsageSeenBytes)}` : '') +
      (lastExit
        ? `; pid ${lastExit.pid} (${commandName(lastExit.cmdline)}) had left it ${formatMs(lastExit.agoMs)} before: a process it started may be the one`
        : ''),
  }
}

/** 180 ms, 2.4 s, 3 min: a lifetime as a person reads it. */
export function formatMs(ms: number): string {
  const rounded = Math.max(0, Math.round(ms))
  if (rounded < 1000) return `${rounded} ms`
  if (rounded < 60_000) return `${(rounded / 1000).toFixed(1)} s`
  if (rounded < 3_600_000) return `${Math.round(rounded / 60_000)} min`
  return `${(rounded / 3_600_000).toFixed(1)} h`
}
