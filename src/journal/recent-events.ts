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

  /** Events with seq above `since`, oldest first. */
  after(since: number): OomwatchEvent[] {
    const out: OomwatchEvent[] = []
    for (let at = this.#events.length - 1; at >= this.#head; at--) {
      const { event } = this.#events[at]!
      if (event.seq <= since) break
      out.push(event)
    }
    return out.reverse()
  }

  get bytes(): number {
    return this.#bytes
  }
}
