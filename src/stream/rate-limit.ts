/** What a kind has done since its last line: when that line was written, and how many were held back since. */
interface KindState {
  lastAt: number
  suppressed: number
}

/**
 * Decides which of a stream of repeated occurrences get a log line: at most one per kind
 * per window, each carrying how many were held back before it. Pure: the caller passes
 * the time, so the tests need no clock.
 */
export class RateLimiter {
  readonly #windowMs: number
  readonly #kinds = new Map<string, KindState>()

  /** @param windowMs - the least time between two lines of one kind (10 000 ms in the agent) */
  constructor(windowMs: number) {
    this.#windowMs = windowMs
  }

  /**
   * One occurrence of `kind` at time `now` (ms). Returns the count held back since the
   * last line when this one is to be written, or undefined when it is held back (and counted).
   */
  take(kind: string, now: number): number | undefined {
    const state = this.#kinds.get(kind)
    if (state !== undefined && now - state.lastAt < this.#windowMs) {
      state.suppressed++
      return undefined
    }
    const suppressed = state?.suppressed ?? 0
    this.#kinds.set(kind, { lastAt: now, suppressed: 0 })
    return suppressed
  }

  /**
   * The kinds with occurrences held back whose window has passed (every one when `all`),
   * with their counts, which are reset: so a flood that stops is still summed up.
   */
  drain(now: number, all = false): [kind: string, suppressed: number][] {
    const out: [string, number][] = []
    for (const [kind, state] of this.#kinds) {
      if (!all && now - state.lastAt < this.#windowMs) continue
      if (state.suppressed > 0) {
        // The summary is a line of its own: the window starts again from it.
        out.push([kind, state.suppressed])
        this.#kinds.set(kind, { lastAt: now, suppressed: 0 })
      } else {
        // A kind that went quiet is forgotten: its next occurrence is logged at once.
        this.#kinds.delete(kind)
      }
    }
    return out
  }
}
