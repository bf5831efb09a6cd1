import type { Sample } from '../types.js'

/** Memory samples, oldest first, read by index: what the detector judges. */
export interface Samples {
  readonly length: number
  /** Time of sample `i` (monotonic ms). */
  t(i: number): number
  /** Bytes of sample `i`. */
  bytes(i: number): number
}

/**
 * A bounded series of memory samples, oldest first. Bounded so that a process watched for
 * weeks costs the same memory as one watched for a minute; kept in a ring of numbers, not
 * objects (200 processes x 256 samples: 0.8 MiB, against ~2.5 MiB of sample objects that
 * lived long enough to burden the old generation).
 */
export class Series implements Samples {
  readonly #times: Float64Array
  readonly #bytes: Float64Array
  #start = 0
  #length = 0

  /** @param capacity the most samples kept (default 256: > 5 s at the 20 ms fast tick). */
  constructor(readonly capacity = 256) {
    this.#times = new Float64Array(capacity)
    this.#bytes = new Float64Array(capacity)
  }

  /** A series holding `samples` (and room for at least 256). */
  static of(samples: readonly Sample[]): Series {
    const series = new Series(Math.max(256, samples.length))
    for (const sample of samples) series.push(sample)
    return series
  }

  push(sample: Sample): void {
    if (this.#length === this.capacity) {
      this.#start = (this.#start + 1) % this.capacity
      this.#length--
    }
    const at = (this.#start + this.#length) % this.capacity
    this.#times[at] = sample.t
    this.#bytes[at] = sample.bytes
    this.#length++
  }

  /** Drops the samples taken before `t`. */
  dropBefore(t: number): void {
    while (this.#length > 0 && this.#times[this.#start]! < t) {
      this.#start = (this.#start + 1) % this.capacity
      this.#length--
    }
  }

  get length(): number {
    return this.#length
  }

  t(i: number): number {
    return this.#times[(this.#start + i) % this.capacity]!
  }

  bytes(i: number): number {
    return this.#bytes[(this.#start + i) % this.capacity]!
  }

  /** The newest sample's bytes, if any (no object made: read every second per process). */
  lastBytes(): number | undefined {
    return this.#length === 0 ? undefined : this.bytes(this.#length - 1)
  }

  /** Every sample, oldest first, as objects (for tests and reports, not the hot path). */
  toArray(): Sample[] {
    return Array.from({ length: this.#length }, (_, i) => ({ t: this.t(i), bytes: this.bytes(i) }))
  }
}
