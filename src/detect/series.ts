import type { Sample } from '../types.js'

/**
 * A bounded series of memory samples, oldest first. Bounded so that a process
 * watched for weeks costs the same memory as one watched for a minute.
 */
export class Series {
  readonly #samples: Sample[] = []

  /** @param capacity the most samples kept (default 256: > 5 s at the 20 ms fast tick). */
  constructor(readonly capacity = 256) {}

  push(sample: Sample): void {
    this.#samples.push(sample)
    if (this.#samples.length > this.capacity) this.#samples.shift()
  }

  get length(): number {
    return this.#samples.length
  }

  /** The newest sample, if any. */
  last(): Sample | undefined {
    return this.#samples[this.#samples.length - 1]
  }

  /** A read-only view, oldest first. */
  samples(): readonly Sample[] {
    return this.#samples
  }
}
