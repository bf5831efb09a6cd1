import { STARTUP_MS } from '../detect/newborn.js'
import { assess, type TriggerOptions, type Verdict } from '../detect/trigger.js'
import type { Group } from './group.js'
import type { Watched } from './watched.js'

/**
 * A cgroup's verdict on its usage: a limit near (the detector's), or else, held at its
 * `memory.high` long enough, a runaway of the `memory-high` kind (throttled, it may never
 * reach its limit: the app stalls instead of being killed).
 */
export function judgeUsage(group: Group, trigger: TriggerOptions): Verdict {
  const verdict = assess(group.series, group.limit.bytes, trigger)
  const high = group.highStall
  if (high === undefined || verdict.state === 'runaway') return verdict
  return { ...verdict, state: 'runaway', reason: 'memory-high', high }
}

/** True when a verdict says memory moves (rising or a runaway): the group's members are then read every tick. */
export function isRising(verdict: Verdict | undefined): boolean {
  return verdict !== undefined && verdict.state !== 'steady'
}

const URGENCY = { steady: 0, rising: 1, runaway: 2 } as const

/** The verdict to act on first: a runaway over a rise over a steady one, then the one nearer its limit. */
export function mostUrgent(a: Verdict | undefined, b: Verdict): Verdict {
  if (!a) return b
  const order = URGENCY[b.state] - URGENCY[a.state]
  return order > 0 || (order === 0 && b.fraction > a.fraction) ? b : a
}

/** How {@link fastestGrowing} picks. */
export interface CulpritRule {
  /** The detector's growth window, ms. */
  windowMs: number
  /** Growth over the window must exceed this (bytes). */
  minGrowth: number
  /** Only among members whose start-up ({@link STARTUP_MS}) is out of the window: the elder fallback. */
  settledOnly?: boolean
}

/**
 * The culprit of a group's runaway: the member whose RSS grew most over the window, by
 * more than `minGrowth`. Its baseline is its last sample before the window (a cold member
 * was read only every refresh), or its first when all of them are inside it.
 */
export function fastestGrowing(members: Iterable<Watched>, now: number, rule: CulpritRule): Watched | undefined {
  let best: Watched | undefined
  let bestGrowth = rule.minGrowth
  for (const w of members) {
    if (rule.settledOnly && now - w.startedAt < STARTUP_MS + rule.windowMs) continue
    const { series } = w
    if (series.length === 0) continue
    let inWindow = series.length
    while (inWindow > 0 && now - series.t(inWindow - 1) <= rule.windowMs) inWindow--
    const baseline = inWindow === series.length ? 0 : Math.max(0, inWindow - 1)
    const growth = series.bytes(series.length - 1) - series.bytes(baseline)
    if (growth > bestGrowth) [best, bestGrowth] = [w, growth]
  }
  return best
}
