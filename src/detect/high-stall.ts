/**
 * A container held at its `memory.high` (cgroup v2): past it the kernel reclaims and
 * throttles every allocation, so a runaway there does not reach its hard limit, and no OOM
 * kill comes for a long time: the app stalls instead. Pure: fed one reading at a time.
 */

/** One look at the cgroup near its high mark. */
export interface HighReading {
  /** Monotonic ms. */
  t: number
  usage: number
  /** `memory.high`, bytes. */
  high: number
  /** `high` of `memory.events`: how often usage went past the mark and reclaim was forced. */
  events: number
  /** `some total=` of `memory.pressure`, µs: time some task of the cgroup stalled on memory; absent without PSI. */
  stallUs?: number
}

/** A stall at the high mark, once it lasted. */
export interface HighStallFigures {
  highBytes: number
  /** Since the first throttling seen near the mark, ms. */
  stalledMs: number
  /** Throttling events over that time. */
  throttleEvents: number
  /** Share of that time some task stalled on memory (PSI); absent without PSI. */
  stallFraction?: number
}

/** A stall shorter than this is reclaim doing its job. */
export const HIGH_STALL_MS = 1000
/** Without a new event for this long, the container is no longer held. */
const QUIET_MS = 500
/** With PSI, tasks must stall this share of the time: page cache reclaimed at the mark costs the app little. */
export const MIN_STALL_FRACTION = 0.05

/** Near the mark: within 1% of it (at least 1 MiB), or past it. */
export function nearHigh(usage: number, high: number): boolean {
  return usage >= high - Math.max(1 << 20, high / 100)
}

/**
 * Tracks whether a container is held at its high mark: near it, with the throttling count
 * still rising (no gap over {@link QUIET_MS}), for {@link HIGH_STALL_MS} at least, and, where
 * PSI is read, its tasks stalled {@link MIN_STALL_FRACTION} of that time at least.
 */
export class HighStall {
  #held: { since: number; first: HighReading } | undefined
  #last: HighReading | undefined
  #lastThrottleAt = -Infinity

  /** @returns the stall's figures while it lasts past {@link HIGH_STALL_MS}; undefined otherwise */
  observe(reading: HighReading): HighStallFigures | undefined {
    const last = this.#last
    this.#last = reading
    if (!nearHigh(reading.usage, reading.high) || last === undefined) {
      this.#held = undefined
      return undefined
    }
    if (reading.events > last.events) {
      this.#lastThrottleAt = reading.t
      this.#held ??= { since: last.t, first: last }
    } else if (reading.t - this.#lastThrottleAt > QUIET_MS) {
      this.#held = undefined
    }
    const held = this.#held
    if (held === undefined || reading.t - held.since < HIGH_STALL_MS) return undefined
    const elapsedUs = (reading.t - held.first.t) * 1000
    const stallFraction =
      reading.stallUs !== undefined && held.first.stallUs !== undefined && elapsedUs > 0
        ? Math.min(1, (reading.stallUs - held.first.stallUs) / elapsedUs)
        : undefined
    if (stallFraction !== undefined && stallFraction < MIN_STALL_FRACTION) return undefined
    return {
      highBytes: reading.high,
      stalledMs: reading.t - held.since,
      throttleEvents: reading.events - held.first.events,
      ...(stallFraction !== undefined && { stallFraction }),
    }
  }

  /** Forgets what it saw (the mark was lifted, or the counters could not be read). */
  reset(): void {
    this.#held = undefined
    this.#last = undefined
  }
}
