import type { EventPayload, MemoryFrame, MemoryPayload, OomwatchEvent, PerClient } from './protocol/events.js'

/** Something that consumes every event: the journal, the log, the metrics. */
export type Sink = (event: OomwatchEvent) => void

/**
 * A publication that takes no seq of its own: it is stamped at the current seq, like a
 * hello, so that a client that replays by seq sees no gap. Never journaled or logged.
 * Today: the live page's memory frames.
 */
export type TransientPayload = MemoryPayload
/** A transient publication as handed on. */
export type TransientEvent = MemoryFrame

/** Whatever the hub hands on: the events, and the transient frames between them. */
export type HubEvent = OomwatchEvent | TransientEvent

/** A sink that takes the transient frames too: the stream, the memory history. */
export type AnySink = (event: HubEvent) => void

type Subscription = { transient: false; sink: Sink } | { transient: true; sink: AnySink }

/**
 * Stamps events with an increasing `seq` and `ts`, and hands each to every sink in
 * order. A `hello` is per client: it carries the seq of the last broadcast event
 * without taking a new one, so no other client sees a gap that was only someone
 * else's greeting, and the greeted client knows the next event is `seq + 1`.
 * Transient frames ({@link EventHub.publish}) are stamped the same way, and reach only
 * the sinks that asked for them ({@link EventHub.subscribeAll}).
 */
export class EventHub {
  #seq: number
  readonly #subscriptions: Subscription[] = []

  /** @param lastSeq the seq to continue after (the journal's newest, across restarts). */
  constructor(lastSeq = 0) {
    this.#seq = lastSeq
  }

  /** Adds a sink of events (not of transient frames); returns its remover. */
  subscribe(sink: Sink): () => void {
    return this.#add({ transient: false, sink })
  }

  /** Adds a sink of events and of transient frames; returns its remover. */
  subscribeAll(sink: AnySink): () => void {
    return this.#add({ transient: true, sink })
  }

  /** The seq of the last broadcast event. */
  get lastSeq(): number {
    return this.#seq
  }

  /** Stamps and broadcasts one event. */
  emit<P extends Exclude<EventPayload, PerClient>>(payload: P): P & { seq: number; ts: string } {
    const event = { ...payload, seq: ++this.#seq, ts: new Date().toISOString() }
    for (const { sink } of this.#subscriptions) sink(event)
    return event
  }

  /** Stamps a transient frame at the current seq and hands it to the sinks that take them. */
  publish(payload: TransientPayload): TransientEvent {
    const frame = this.greet(payload)
    for (const subscription of this.#subscriptions) if (subscription.transient) subscription.sink(frame)
    return frame
  }

  /** Stamps a greeting, an error or a memory history for one client, at the current seq. */
  greet<P extends PerClient | TransientPayload>(payload: P): P & { seq: number; ts: string } {
    return { ...payload, seq: this.#seq, ts: new Date().toISOString() }
  }

  #add(subscription: Subscription): () => void {
    this.#subscriptions.push(subscription)
    return () => {
      const at = this.#subscriptions.indexOf(subscription)
      if (at >= 0) this.#subscriptions.splice(at, 1)
    }
  }
}
