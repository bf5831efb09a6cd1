/**
 * Every figure the live page writes, as text: pure and free of the DOM, so a unit test can
 * hold it against the server's text mode. The formatting itself is src/format/'s, shared
 * with the server: the page and `?format=text` cannot drift apart.
 */
import { formatBytes } from '../../format/bytes.js'
import { commandName } from '../../format/command-name.js'
import { formatPercent, formatRlimitValue, formatSeconds } from '../../format/figures.js'
import type { ExitPayload, FlamegraphPayload, HelloPayload, IncidentMemory, IncidentPayload, ProcessInfo } from '../../protocol/events.js'
import type { RlimitTable } from '../../protocol/values.js'

/** The rlimits an incident shows: the ones that size memory, and any a risk names. */
const MEMORY_RLIMITS = ['NOFILE', 'AS', 'DATA']
const DOT = ' \u00b7 '

/** A process's name on its card, its risks and its incidents: the server's `commandName`. */
export const processName: (cmdline: readonly string[]) => string = commandName

/** A byte count, or `?` where the stream has none. */
export function bytesText(n: number | undefined): string {
  return n === undefined ? '?' : formatBytes(n)
}

/** `pid 42 worker.py`, under a risk's rule. */
export function riskSubtitle(pid: number, cmdline: readonly string[]): string {
  return `pid ${pid} ${processName(cmdline)}`
}

/** `RSS 9 MiB of 256 MiB (4%, cgroup-v2) · NOFILE hard 1024 · peak 12 MiB`, under a process's chart. */
export function processFigures(info: ProcessInfo, rss: number | undefined, limit: number, exit: ExitPayload | undefined): string {
  const share = rss === undefined ? '' : `${formatPercent(rss / limit)}, `
  const nofile = info.rlimits.NOFILE ? `${DOT}NOFILE hard ${info.rlimits.NOFILE.hard}` : ''
  const peak = exit && !exit.oomKilled && exit.peakRssBytes ? `${DOT}peak ${bytesText(exit.peakRssBytes)}` : ''
  return `RSS ${bytesText(rss)} of ${bytesText(limit)} (${share}${info.memory.limit.source})${nofile}${peak}`
}

/** `142.1 MiB of 256 MiB (56%, cgroup-v1) · +38.1 MiB/s · limit in 2.99 s` */
export function incidentFigures(m: IncidentMemory): string {
  const ttl = m.secondsToLimit === null ? '' : `${DOT}limit in ${m.secondsToLimit} s`
  const usage = `${bytesText(m.usageBytes)} of ${bytesText(m.limitBytes)} (${formatPercent(m.fractionOfLimit)}, ${m.limitSource})`
  return `${usage}${DOT}+${bytesText(m.growthBytesPerSec)}/s${ttl}`
}

/** `NOFILE 20000 · AS unlimited · DATA 1 GiB / unlimited` (soft / hard where they differ), or '' when none was read. */
export function rlimitsLine(incident: Pick<IncidentPayload, 'rlimits' | 'risks'>): string {
  const table: RlimitTable = incident.rlimits
  const names = [...new Set([...MEMORY_RLIMITS, ...incident.risks.map(r => r.rlimit)])]
  return names
    .flatMap(name => {
      const row = table[name]
      if (!row) return []
      const show = (v: typeof row.soft) => formatRlimitValue(v, row.units)
      return [`${name} ${row.soft === row.hard ? show(row.hard) : `${show(row.soft)} / ${show(row.hard)}`}`]
    })
    .join(DOT)
}

/** ` (3.0 s of samples after the incident)`, beside a flame graph's link. */
export function flamegraphNote(fg: FlamegraphPayload): string {
  return ` (${formatSeconds(fg.durationMs ?? 0)} of samples after the incident)`
}

/** `last 45 s`, `last 5 min`: a chart's span. */
export function spanText(spanMs: number): string {
  return `last ${spanMs >= 120 * 1000 ? `${Math.round(spanMs / 60000)} min` : `${Math.round(spanMs / 1000)} s`}`
}

/** `agent 0.1.0 · py-spy 0.4.2 · host:port · event #12`, in the header. */
export function agentLine(hello: HelloPayload, host: string, lastSeq: number | null): string {
  const pyspy = 'path' in hello.pyspy ? `py-spy ${hello.pyspy.version}` : 'py-spy missing: incidents carry no stack'
  return `agent ${hello.version}${DOT}${pyspy}${DOT}${host}${lastSeq !== null ? `${DOT}event #${lastSeq}` : ''}`
}
