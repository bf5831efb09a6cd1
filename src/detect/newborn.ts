import { measureGrowth } from './growth.js'
import type { Samples } from './series.js'
import { noiseFloor, type Verdict } from './trigger.js'

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

/** Growth faster than this over {@link BURST_WINDOW_MS} is no start-up: 1.25 x the fastest measured over 20 ms, 1.6 x over 50 ms. */
export const STARTUP_MAX_BYTES_PER_SEC = 700 * 2 ** 20

/** The span of the recent growth compared with {@link STARTUP_MAX_BYTES_PER_SEC}: three fast ticks. */
export const BURST_WINDOW_MS = 60

/**
 * A limit this close (seconds, at the present rate) is a race whatever the process's age:
 * a capture takes tens of ms, and waiting out the start-up would lose it.
 */
export const IMMINENT_SECONDS = 0.2

/**
 * A start-up is over at its first pause: its own RSS grew by less than
 * {@link SETTLED_BYTES} over this long. A rise after that is no longer start-up.
 */
export const SETTLE_MS = 300

/** See {@link SETTLE_MS}: an idle interpreter's RSS moves by less than this. */
export const SETTLED_BYTES = 1 << 20

/** True when the newest {@link SETTLE_MS} of `own` (spanned to within a tick) grew by less than {@link SETTLED_BYTES}. */
export function hasSettled(own: Samples): boolean {
  const last = own.length - 1
  if (last < 1) return false
  const lastT = own.t(last)
  let from = last
  while (from > 0 && lastT - own.t(from - 1) <= SETTLE_MS) from--
  return lastT - own.t(from) >= SETTLE_MS * 0.8 && own.bytes(last) - own.bytes(from) < SETTLED_BYTES
}

/** What {@link judgeStarting} knows of the process and the detector. */
export interface StartingProcess {
  /** Since its interpreter started, ms. */
  ageMs: number
  /** Its own RSS samples. */
  own: Samples
  /** Its RSS when its start-up was first seen to pause ({@link hasSettled}); undefined while it has not. */
  settledBytes: number | undefined
  /** The detector's growth window, ms. */
  windowMs: number
  /** The fraction of the limit that triggers while rising. */
  triggerFraction: number
}

/**
 * A verdict on a process that may be starting. A `time-to-limit` trigger on it is held
 * back (the verdict stays `rising`, so the process is still read every tick) while it
 * could be start-up growth, or the plateau after it that the detector's window still
 * averages in, which is until that window no longer reaches back into the start-up. It
 * stands when:
 * - the limit is {@link IMMINENT_SECONDS} away, or usage is past the trigger fraction
 *   (whatever reason `assess` gave it first): a race at any age;
 * - its own RSS grows faster than any start-up ({@link STARTUP_MAX_BYTES_PER_SEC});
 * - its start-up paused ({@link hasSettled}) and it has grown by the noise floor since: a
 *   leak after a start-up;
 * - it never paused and is past {@link STARTUP_MS}: no start-up grows that long.
 */
export function judgeStarting(verdict: Verdict, process: StartingProcess): Verdict {
  const { ageMs, own, settledBytes, windowMs, triggerFraction } = process
  if (verdict.reason !== 'time-to-limit' || ageMs >= STARTUP_MS + windowMs) return verdict
  if (verdict.secondsToLimit <= IMMINENT_SECONDS || verdict.fraction >= triggerFraction) return verdict
  const now = own.length > 0 ? own.bytes(own.length - 1) : 0
  if (settledBytes !== undefined ? now - settledBytes >= noiseFloor(verdict.limit) : ageMs >= STARTUP_MS) return verdict
  if (measureGrowth(own, BURST_WINDOW_MS, 1 << 20).bytesPerSec >= STARTUP_MAX_BYTES_PER_SEC) return verdict
  const { reason: _held, ...rest } = verdict
  return { ...rest, state: 'rising' }
}
