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
  /** Share of the last second some task of the cgroup stalled on memory (PSI). */
  stallFraction: number
}

/** A stall shorter than this is reclaim doing its job. */
export const HIGH_STALL_MS = 1000
/** Without a new event for this long, the container is no longer held. */
const QUIET_MS = 500
/**
 * The share of the last second its tasks must have stalled on memory (PSI). Measured in the
 * v2 guest (BENCHMARKS.md, section P): a leak held at the mark stalls 42-72% of the time, a
 * healthy reader whose page cache fills to the mark 12-15%; the `high` count alone cannot
 * tell them apart (114-153 events/s for the reader, 169-252 for the leak).
 */
export const MIN_STALL_FRACTION = 0.25
/** The stall share is measured over this much of the latest readings. */
const STALL_WINDOW_MS = 1000

/** Near the mark: within 1% of it (at least 1 MiB), or past it. */
export function nearHigh(usage: number, high: number): boolean {
  return usage >= high - Math.max(1 << 20, high / 100)
}

/**
 * Tracks whether a container is held at its high mark: near it, with the throttling count
 * still rising (no gap over {@link QUIET_MS}), for {@link HIGH_STALL_MS} at least, its tasks
 * stalled {@link MIN_STALL_FRACTION} of the last second at least. Without PSI there is no
 * telling a stall from a busy page cache: nothing is reported.
 */
export class HighStall {
  #held: { since: number; first: HighReading } | undefined
  /** The readings since the hold began, the oldest dropped once a window's worth is left. */
  #recent: HighReading[] = []
  #last: HighReading | undefined
  #lastThrottleAt = -Infinity

  /** @returns the stall's figures while it lasts past {@link HIGH_STALL_MS}; undefined otherwise */
  observe(reading: HighReading): HighStallFigures | undefined {
    const last = this.#last
    this.#last = reading
    if (!nearHigh(reading.usage, reading.high) || last === undefined || reading.stallUs === undefined) {
      this.#release()
      return undefined
    }
    if (reading.events > last.events) {
      this.#lastThrottleAt = reading.t
      if (this.#held === undefined) {
        this.#held = { since: last.t, first: last }
        this.#recent = [last]
      }
    } else if (reading.t - this.#lastThrottleAt > QUIET_MS) {
      this.#release()
    }
    const held = this.#held
    if (held === undefined) return undefined
    this.#recent.push(reading)
    while (this.#recent.length > 2 && reading.t - this.#recent[1]!.t >= STALL_WINDOW_MS) this.#recent.shift()
    const from = this.#recent[0]!
    if (reading.t - held.since < HIGH_STALL_MS || from.stallUs === undefined) return undefined
    const stallFraction = Math.min(1, (reading.stallUs - from.stallUs) / ((reading.t - from.t) * 1000))
    if (stallFraction < MIN_STALL_FRACTION) return undefined
    return {
      highBytes: reading.high,
      stalledMs: reading.t - held.since,
      throttleEvents: reading.events - held.first.events,
      stallFraction,
    }
  }

  /** Forgets what it saw (the mark was lifted, or the counters could not be read). */
  reset(): void {
    this.#release()
    this.#last = undefined
  }

  #release(): void {
    this.#held = undefined
    this.#recent = []
  }
}
