import { readFileSync } from 'node:fs'
import { parseLimits } from '../proc/limits.js'
import type { RlimitValue } from '../protocol/values.js'

/** The cap on connections, and why it is what it is (for the start's log line). */
export interface ConnectionCap {
  maxConnections: number
  /** `setting`: --max-connections; `nofile`: half the soft NOFILE limit, which was lower. */
  source: 'setting' | 'nofile'
}

/**
 * The cap on open connections: the setting, but never more than half the agent's soft
 * NOFILE limit. The other half is kept for the watch, whose own use grows with what it
 * watches (a stat handle per process, two cgroup counters per container, the journal,
 * py-spy's pipes, node's own): a fixed reserve would be too small in a pod of many
 * processes and leave no room for connections at a low limit. The limit is read once:
 * nothing in the agent changes it.
 */
export function connectionCap(configured: number, nofileSoft: RlimitValue | undefined): ConnectionCap {
  if (nofileSoft === undefined || nofileSoft === 'unlimited') return { maxConnections: configured, source: 'setting' }
  const half = Math.max(1, Math.floor(nofileSoft / 2))
  return half < configured ? { maxConnections: half, source: 'nofile' } : { maxConnections: configured, source: 'setting' }
}

/** This process's soft NOFILE limit, from `/proc/self/limits`; undefined when it cannot be read (no cap then but the setting). */
export function ownNofileSoft(path = '/proc/self/limits'): RlimitValue | undefined {
  try {
    return parseLimits(readFileSync(path, 'utf8')).NOFILE?.soft
  } catch {
    return undefined
  }
}
