/**
 * Decides whether a process may be captured now: one capture at a time per process,
 * and at most one incident per trigger reason per cooldown, so a slow leak yields a few
 * incidents, not one per tick. A `time-to-limit` after a `limit-fraction` is a new
 * reason, so the more urgent stack is still taken.
 */
export class CaptureGate {
  #busy = false
  readonly #lastAt = new Map<string, number>()

  /** @param cooldownMs minimum time between two incidents of the same reason. */
  constructor(readonly cooldownMs: number) {}

  /** Claims the gate for `reason` at monotonic time `now`; false when busy or cooling down. */
  tryEnter(reason: string, now: number): boolean {
    if (this.#busy) return false
    const last = this.#lastAt.get(reason)
    if (last !== undefined && now - last < this.cooldownMs) return false
    this.#busy = true
    this.#lastAt.set(reason, now)
    return true
  }

  /** Releases the gate after a capture, whatever its outcome. */
  leave(): void {
    this.#busy = false
  }

  get busy(): boolean {
    return this.#busy
  }
}
