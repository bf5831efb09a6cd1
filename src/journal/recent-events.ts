import type { OomwatchEvent } from '../protocol/events.js'

/**
 * The newest events, bounded by their serialised size, so a replay to a client that
 * was away for a moment costs no disk read, and a flood of events costs bounded memory.
 */
export class RecentEvents {
  readonly #events: { event: OomwatchEvent; bytes: number }[] = []
  #head = 0
  #bytes = 0

  /** @param maxBytes serialised bytes kept at most (the newest event is always kept). */
  constructor(readonly maxBytes: number) {}

  add(event: OomwatchEvent, bytes: number): void {
    this.#events.push({ event, bytes })
    this.#bytes += bytes
    while (this.#bytes > this.maxBytes && this.#events.length - this.#head > 1) {
      this.#bytes -= this.#events[this.#head]!.bytes
      this.#head++
    }
    // Compact now and then instead of shifting on every eviction.
    if (this.#head > 1024 && this.#head * 2 > this.#events.length) {
      this.#events.splice(0, this.#head)
      this.#head = 0
    }
  }

  /**
   * Events with seq in [from, to], oldest first, up to about `maxBytes` of them (at least
   * one when any is kept): a replay takes the window a batch at a time, so it never pins
   * more of it than one batch.
   */
  range(from: number, to: number, maxBytes: number): OomwatchEvent[] {
    // The kept events are in seq order: find the first at or after `from` by bisection.
    let low = this.#head
    let high = this.#events.length
    while (low < high) {
      const mid = (low + high) >>> 1
      if (this.#events[mid]!.event.seq < from) low = mid + 1
      else high = mid
    }
    const out: OomwatchEvent[] = []
    let bytes = 0
    for (let at = low; at < this.#events.length && bytes < maxBytes; at++) {
      const { event, bytes: size } = this.#events[at]!
      if (event.seq > to) break
      out.push(event)
      bytes += size
    }
    return out
  }

  /** The seq of the oldest event kept; undefined when none is. */
  get oldestSeq(): number | undefined {
    return this.#events[this.#head]?.event.seq
  }

  get bytes(): number {
    return this.#bytes
  }
}
