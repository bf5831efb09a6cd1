import type { Triggered } from '../detect/trigger.js'
import { formatBytes } from '../format/bytes.js'
import type { StackCapture } from './capture.js'
import type { MemoryLimit, Risk, RlimitTable } from '../protocol/values.js'
import type { IncidentPayload, IncidentProcess } from '../protocol/events.js'

/** Everything an incident is made of, gathered by the agent at the trigger. */
export interface IncidentParts {
  id: string
  pid: number
  cmdline: string[]
  verdict: Triggered
  rssBytes?: number
  limit: MemoryLimit
  rlimits: RlimitTable
  risks: Risk[]
  process: IncidentProcess
  stack: StackCapture
  triggerToStackMs: number
}

/** Builds the `incident` event: the figures, the stack, and one sentence that tells it all. */
export function buildIncident(parts: IncidentParts): IncidentPayload {
  const { verdict, stack } = parts
  const ttl = Number.isFinite(verdict.secondsToLimit) ? round(verdict.secondsToLimit, 2) : null
  return {
    type: 'incident',
    id: parts.id,
    pid: parts.pid,
    cmdline: parts.cmdline,
    reason: verdict.reason,
    summary: summarize(parts),
    memory: {
      ...(parts.rssBytes !== undefined && { rssBytes: parts.rssBytes }),
      usageBytes: verdict.usage,
      limitBytes: verdict.limit,
      limitSource: parts.limit.source,
      ...(parts.limit.path !== undefined && { limitPath: parts.limit.path }),
      fractionOfLimit: round(verdict.fraction, 3),
      growthBytesPerSec: Math.round(verdict.bytesPerSec),
      secondsToLimit: ttl,
      ...(verdict.high && {
        high: { ...verdict.high, ...(verdict.high.stallFraction !== undefined && { stallFraction: round(verdict.high.stallFraction, 3) }) },
      }),
    },
    process: parts.process,
    rlimits: parts.rlimits,
    risks: parts.risks,
    threads: stack.threads,
    ...(stack.culprit && { culprit: stack.culprit }),
    capture: {
      triggerToStackMs: round(parts.triggerToStackMs, 1),
      pyspyMs: stack.pyspyMs,
      ...(stack.error && { error: stack.error }),
    },
  }
}

/**
 * `fd_set_from_limit (/app/leak.py:12) is growing memory: 180 MiB of 256 MiB (70%,
 * cgroup-v2), +41 MiB/s, limit in 1.9 s. Likely cause: NOFILE hard limit 1073741816 ...`
 */
function summarize(parts: IncidentParts): string {
  const { verdict, stack } = parts
  const where = stack.culprit
    ? `${stack.culprit.function} (${stack.culprit.file}:${stack.culprit.line})`
    : `pid ${parts.pid} (no stack: ${stack.error?.code ?? 'no Python thread'})`
  const ttl = Number.isFinite(verdict.secondsToLimit) ? `, limit in ${round(verdict.secondsToLimit, 1)} s` : ''
  const memory =
    `${formatBytes(verdict.usage)} of ${formatBytes(verdict.limit)} (${Math.round(verdict.fraction * 100)}%, ${parts.limit.source}), ` +
    `+${formatBytes(Math.round(verdict.bytesPerSec))}/s${ttl}`
  const risk = parts.risks[0]
  const explanation = risk ? ` Likely cause: ${risk.message}` : ''
  const high = verdict.high
  if (high) {
    const stalled = high.stallFraction === undefined ? '' : `, its tasks stalled ${Math.round(high.stallFraction * 100)}% of the time`
    return (
      `${where} is held at memory.high: ${formatBytes(verdict.usage)} at a mark of ${formatBytes(high.highBytes)} ` +
      `(limit ${formatBytes(verdict.limit)}, ${parts.limit.source}), throttled for ${round(high.stalledMs / 1000, 1)} s ` +
      `(${high.throttleEvents} reclaim events${stalled}): the app stalls rather than being OOM-killed.${explanation}`
    )
  }
  return `${where} is growing memory: ${memory}.${explanation}`
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits
  return Math.round(value * scale) / scale
}
