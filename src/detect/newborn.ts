import { measureGrowth } from './growth.js'
import type { Samples } from './series.js'
import type { Verdict } from './trigger.js'

/*
 * A process's start-up and a first-instant leak look alike for their first ~70 ms: both
 * are an interpreter reaching ~20 MiB. Measured here (test/fixtures/python/heavy_startup.py:
 * 208 stdlib modules and a warm cache, 13 -> 63 MiB; the seed's leak into 256 MiB;
 * sampled every 1 ms, 2026-12-02):
 *
 *   fastest growth over   20 ms     50 ms     100 ms
 *   start-up              560       440       320 MiB/s   (then it stops)
 *   leak                  1330-1710           1160-1350 MiB/s  (until the kill)
 *
 * The usual time-to-limit horizon (3 s) calls both a runaway in a small container. So,
 * while a process starts, a time-to-limit trigger stands only when the rise is faster
 * than any start-up, or the limit is imminent; otherwise it waits for the start-up to end.
 */

/** How long a process counts as starting, ms: it is read every tick, and judged by the rules below. */
export const STARTUP_MS = 2000

/** Growth faster than this over {@link BURST_WINDOW_MS} is no start-up: 1.6 x the fastest measured (440 MiB/s over 50 ms). */
export const STARTUP_MAX_BYTES_PER_SEC = 700 * 2 ** 20

/** The span of the recent growth compared with {@link STARTUP_MAX_BYTES_PER_SEC}: three fast ticks. */
export const BURST_WINDOW_MS = 60

/**
 * A limit this close (seconds, at the present rate) is a race whatever the process's age:
 * a capture takes tens of ms, and waiting out the start-up would lose it.
 */
export const IMMINENT_SECONDS = 0.2

/**
 * A verdict on a process `ageMs` old, whose own RSS is `own`: while it starts, a
 * `time-to-limit` trigger is held back (the verdict stays `rising`, so the process is
 * still read every tick) unless its RSS grows faster than any start-up or the limit is
 * {@link IMMINENT_SECONDS} away. The hold lasts until the detector's window (`windowMs`)
 * no longer reaches back into the start-up, whose growth it would otherwise still average
 * in. `limit-fraction` always stands: near the limit and rising is a race at any age.
 */
export function judgeStarting(verdict: Verdict, ageMs: number, own: Samples, windowMs: number): Verdict {
  if (verdict.reason !== 'time-to-limit' || ageMs >= STARTUP_MS + windowMs) return verdict
  if (verdict.secondsToLimit <= IMMINENT_SECONDS) return verdict
  if (measureGrowth(own, BURST_WINDOW_MS, 1 << 20).bytesPerSec >= STARTUP_MAX_BYTES_PER_SEC) return verdict
  const { reason: _held, ...rest } = verdict
  return { ...rest, state: 'rising' }
}
