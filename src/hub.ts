import type { EventPayload, OomwatchEvent, PerClient } from './protocol/events.js'

/** Something that consumes every event: the stream, the log. */
export type Sink = (event: OomwatchEvent) => void

/**
 * Stamps events with an increasing `seq` and `ts`, and hands each to every sink in
 * order. A `hello` is per client: it carries the seq of the last broadcast event
 * without taking a new one, so no other client sees a gap that was only someone
 * else's greeting, and the greeted client knows the next event is `seq + 1`.
 */
export class EventHub {
  #seq: number
  readonly #sinks: Sink[] = []

  /** @param lastSeq the seq to continue after (the journal's newest, across restarts). */
  constructor(lastSeq = 0) {
    this.#seq = lastSeq
  }

  /** Adds a sink; returns its remover. */
  subscribe(sink: Sink): () => void {
    this.#sinks.push(sink)
    return () => {
      const at = this.#sinks.indexOf(sink)
      if (at >= 0) this.#sinks.splice(at, 1)
    }
  }

  /** The seq of the last broadcast event. */
  get lastSeq(): number {
    return this.#seq
  }

  /** Stamps and broadcasts one event. */
  emit<P extends Exclude<EventPayload, PerClient>>(payload: P): P & { seq: number; ts: string } {
    const event = { ...payload, seq: ++this.#seq, ts: new Date().toISOString() }
    for (const sink of this.#sinks) sink(event)
    return event
  }

  /** Stamps a greeting (or an error) for one client, at the current seq. */
  greet<P extends PerClient>(payload: P): P & { seq: number; ts: string } {
    return { ...payload, seq: this.#seq, ts: new Date().toISOString() }
  }
}
