import type { EventHub } from '../hub.js'
import type { AgentUsage, HelloPayload, MemoryFrame, MemoryPayload, OomwatchEvent } from '../protocol/events.js'
import type { AgentStatus } from '../status.js'

/** Where the stream server gets the frames that are for one client only. */
export interface Greeting {
  /**
   * The frames a new client gets before the live stream: its `hello`, then with
   * `?since=SEQ` every kept event after SEQ. Called synchronously on connection, so no
   * live event can fall between them: no gap, no duplicate.
   */
  greet(since: number | undefined): OomwatchEvent[]
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
  journal: { since(since: number): { events: OomwatchEvent[]; missed: number } }
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

  greet(since: number | undefined): OomwatchEvent[] {
    const { hub, journal, hello, status, usage } = this.#sources
    const replay = since === undefined ? undefined : journal.since(since)
    const greeting = hub.greet({
      type: 'hello',
      version: hello.version,
      startedAt: hello.startedAt,
      config: hello.config,
      pyspy: hello.pyspy,
      agent: usage.current,
      watching: status.processes(),
      ...(replay && since !== undefined && { replay: { since, count: replay.events.length, missed: replay.missed } }),
    })
    return [greeting, ...(replay?.events ?? [])]
  }

  clientError(message: string): OomwatchEvent {
    return this.#sources.hub.greet({ type: 'error', code: 'CLIENT_MESSAGE_UNSUPPORTED', message })
  }

  memoryHistory(): MemoryFrame | undefined {
    const { history } = this.#sources
    return history && this.#sources.hub.greet(history.history())
  }
}
