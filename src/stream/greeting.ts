import type { EventHub } from '../hub.js'
import type { AgentUsage, HelloPayload, MemoryFrame, MemoryPayload, OomwatchEvent, ReplaySummary } from '../protocol/events.js'
import type { AgentStatus } from '../status.js'

/**
 * A replay's events, read a batch at a time (the journal's `JournalReplay` is one): the
 * client sends a batch and waits for its socket to take it before it asks for the next.
 */
export interface ReplayStream {
  /** What the hello says of it. */
  readonly plan: ReplaySummary
  /** The next batch, oldest first; empty at the end. Rejects when the events can no longer be read. */
  read(): Promise<OomwatchEvent[]>
  /** Releases what it reads from. Idempotent. */
  close(): Promise<void>
  /** Lines skipped as not valid events, so far: for the log. */
  readonly skippedLines: number
}

/** What a new client gets before the live stream. */
export interface Greeted {
  hello: OomwatchEvent
  /** With `?since=SEQ` and events to send: streamed after the hello, live events held until its end. */
  replay?: ReplayStream
}

/** Where the stream server gets the frames that are for one client only. */
export interface Greeting {
  /**
   * What a new client gets before the live stream: its `hello`, then with `?since=SEQ`
   * a replay of the kept events after SEQ up to the hello's seq. Called synchronously on
   * connection, so that every later event is live for it: no gap, no duplicate.
   */
  greet(since: number | undefined): Greeted
  /** An error frame for one client (stamped at the current seq). */
  clientError(message: string): OomwatchEvent
  /** The memory history a page client (`?memory=1`) gets after its greeting; absent: none. */
  memoryHistory?(): MemoryFrame | undefined
}

/** What a {@link Greeter} reads. */
export interface GreeterSources {
  /** Stamps the frames at the current seq. */
  hub: Pick<EventHub, 'greet'>
  /** The kept events (the journal). */
  journal: { replay(since: number): ReplayStream }
  /** What the hello says that does not change while the agent runs. */
  hello: Pick<HelloPayload, 'version' | 'startedAt' | 'config' | 'pyspy'>
  /** The processes watched now. */
  status: Pick<AgentStatus, 'processes'>
  /** The agent's own cost, as last measured. */
  usage: { readonly current: AgentUsage }
  /** The live page's memory history; absent: a page client gets none. */
  history?: { history(): MemoryPayload }
}

/** The agent's {@link Greeting}: a hello from its status, a replay from its journal. */
export class Greeter implements Greeting {
  readonly #sources: GreeterSources

  constructor(sources: GreeterSources) {
    this.#sources = sources
  }

  greet(since: number | undefined): Greeted {
    const { hub, journal, hello, status, usage } = this.#sources
    const replay = since === undefined ? undefined : journal.replay(since)
    const greeting = hub.greet({
      type: 'hello',
      version: hello.version,
      startedAt: hello.startedAt,
      config: hello.config,
      pyspy: hello.pyspy,
      agent: usage.current,
      watching: status.processes(),
      ...(replay && { replay: replay.plan }),
    })
    if (replay === undefined || replay.plan.count > 0) return { hello: greeting, ...(replay && { replay }) }
    // Nothing to send: nothing to hold open.
    void replay.close()
    return { hello: greeting }
  }

  clientError(message: string): OomwatchEvent {
    return this.#sources.hub.greet({ type: 'error', code: 'CLIENT_MESSAGE_UNSUPPORTED', message })
  }

  memoryHistory(): MemoryFrame | undefined {
    const { history } = this.#sources
    return history && this.#sources.hub.greet(history.history())
  }
}
