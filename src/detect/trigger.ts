import type { Samples } from './series.js'
import { measureGrowth, secondsToLimit } from './growth.js'
import type { TriggerReason } from '../protocol/values.js'
import type { HighStallFigures } from './high-stall.js'

/** When a growing series counts as a runaway. */
export interface TriggerOptions {
  /** Fraction of the limit that, while growing, triggers (default 0.9). */
  fraction: number
  /** Predicted seconds to the limit that trigger (default 3). */
  seconds: number
  /** Window of the growth rate, ms (default 2000). */
  windowMs: number
}

/** The figures of a verdict, whatever its state. */
export interface Reading {
  usage: number
  limit: number
  fraction: number
  bytesPerSec: number
  secondsToLimit: number
}

/**
 * The detector's reading of one memory series against its limit, keyed on `state`:
 * `rising` is up by more than noise since the last fall; `runaway` is a trigger that
 * fired, and only it carries a `reason`.
 */
export type Verdict = (Reading & { state: 'steady' | 'rising'; reason?: undefined }) | Triggered

/** A verdict whose trigger fired: what a capture is started with. */
export type Triggered = Reading & { state: 'runaway'; reason: TriggerReason; high?: HighStallFigures }

/** Samples a rise must span (two intervals) before it may trigger: one jump is not a trend. */
const MIN_RUN_SAMPLES = 3

/**
 * Changes smaller than this are noise: 1% of the limit, at least 1 MiB. It is also the
 * dip a rise may take without ending (a GC pass during a leak).
 */
export function noiseFloor(limit: number): number {
  return Math.max(1 << 20, Math.floor(limit / 100))
}

/**
 * Judges a memory series against its limit. A trigger needs a sustained rise (at least
 * two rising intervals, more than noise in all), and then either the predicted time to
 * the limit is within `seconds`, or usage is past `fraction` of the limit. Steady usage,
 * however high, never triggers: there is nothing to catch in the act.
 */
export function assess(samples: Samples, limit: number, options: TriggerOptions): Verdict {
  const usage = samples.length > 0 ? samples.bytes(samples.length - 1) : 0
  const noise = noiseFloor(limit)
  const growth = measureGrowth(samples, options.windowMs, noise)
  const ttl = secondsToLimit(usage, limit, growth.bytesPerSec)
  const base = { usage, limit, fraction: usage / limit, bytesPerSec: growth.bytesPerSec, secondsToLimit: ttl }
  if (growth.risen < noise || growth.bytesPerSec <= 0) return { state: 'steady', ...base }
  if (growth.runLength < MIN_RUN_SAMPLES) return { state: 'rising', ...base }
  if (ttl <= options.seconds) return { state: 'runaway', reason: 'time-to-limit', ...base }
  if (base.fraction >= options.fraction) return { state: 'runaway', reason: 'limit-fraction', ...base }
  return { state: 'rising', ...base }
}

/**
 * The next tick's delay: `fastMs` while memory rises, easing from `baseMs` at half the
 * limit down to `fastMs` at the trigger fraction, so the race is watched closely only
 * when there is one.
 */
export function nextIntervalMs(verdict: Verdict | undefined, baseMs: number, fastMs: number, triggerFraction: number): number {
  if (!verdict) return baseMs
  if (verdict.state !== 'steady') return fastMs
  const span = Math.max(triggerFraction - 0.5, 0.01)
  const urgency = Math.min(1, Math.max(0, (verdict.fraction - 0.5) / span))
  return Math.round(baseMs - (baseMs - fastMs) * urgency)
}
