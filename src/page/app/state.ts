import type {
  ExitPayload,
  FlamegraphPayload,
  HelloPayload,
  IncidentPayload,
  MemoryFrame,
  OomKillPayload,
  OomwatchEvent,
  ProcessInfo,
  RiskPayload,
} from '../../protocol/events.js'

/** How much memory history the charts keep and show: five minutes. */
export const WINDOW_MS = 5 * 60 * 1000
/** Incidents listed, newest first. */
export const MAX_INCIDENTS = 10
/** Cards of processes that are gone, kept after the live ones. */
export const MAX_GONE = 6

/** What arrives on the page's WebSocket: events, and (`?memory=1`) memory frames. */
export type PageMessage = OomwatchEvent | MemoryFrame
/** An incident as sent, with its time. */
export type IncidentEvent = IncidentPayload & { seq: number; ts: string }
/** A kill of a process oomwatch did not watch, as sent, with its time. */
export type OomKillEvent = OomKillPayload & { seq: number; ts: string }

/** A process the page has heard of; `gone` once it exited or a later hello no longer lists it. */
export interface KnownProcess {
  info: ProcessInfo
  gone: boolean
}

/** One process's RSS points, `[epoch ms, bytes]`, within WINDOW_MS of the newest. */
export interface MemorySeries {
  limit: number
  points: [number, number][]
}

/** Everything the page draws, built from the stream alone. */
export interface PageState {
  hello: HelloPayload | null
  /** The seq of the last event (memory frames aside): a reconnect asks for what followed it. */
  lastSeq: number | null
  processes: Map<number, KnownProcess>
  memory: Map<number, MemorySeries>
  /** Keyed by `pid rule`. */
  risks: Map<string, RiskPayload>
  incidents: IncidentEvent[]
  flamegraphs: Map<string, FlamegraphPayload>
  exits: Map<number, ExitPayload>
  /** Kills of processes oomwatch did not watch, newest first: shown among the incidents. */
  unseenKills: OomKillEvent[]
}

/** An empty state, before the first frame. */
export function newState(): PageState {
  return {
    hello: null,
    lastSeq: null,
    processes: new Map(),
    memory: new Map(),
    risks: new Map(),
    incidents: [],
    flamegraphs: new Map(),
    exits: new Map(),
    unseenKills: [],
  }
}

/** Folds one message into the state. */
export function handle(state: PageState, event: PageMessage): void {
  if (event.type !== 'memory') state.lastSeq = event.seq
  switch (event.type) {
    case 'hello': {
      // After a reconnect: what the agent no longer lists is gone.
      for (const [pid, p] of state.processes) if (!event.watching.some(w => w.pid === pid)) p.gone = true
      for (const p of event.watching) state.processes.set(p.pid, { info: p, gone: false })
      state.hello = event
      break
    }
    case 'process':
      state.processes.set(event.pid, { info: event, gone: false })
      state.exits.delete(event.pid)
      break
    case 'exit': {
      state.exits.set(event.pid, event)
      const known = state.processes.get(event.pid)
      if (known) known.gone = true
      break
    }
    case 'oom-kill':
      state.unseenKills = [event, ...state.unseenKills.filter(k => k.seq !== event.seq)].slice(0, MAX_INCIDENTS)
      break
    case 'group-kill':
      break // told by its exits' post-mortems, each linked to the runaway: the page shows those
    case 'risk':
      state.risks.set(`${event.pid} ${event.rule}`, event)
      break
    case 'incident':
      state.incidents = [event, ...state.incidents.filter(i => i.id !== event.id)].slice(0, MAX_INCIDENTS)
      break
    case 'flamegraph':
      state.flamegraphs.set(event.incidentId, event)
      break
    case 'memory':
      for (const p of event.processes) addPoints(state, p)
      break
    case 'action':
    case 'error':
      break // the page shows neither
  }
}

function addPoints(state: PageState, p: MemoryFrame['processes'][number]): void {
  const kept = state.memory.get(p.pid) ?? { limit: p.limitBytes, points: [] }
  kept.limit = p.limitBytes
  kept.points = kept.points.concat(p.points)
  const newest = kept.points[kept.points.length - 1]
  if (newest) kept.points = kept.points.filter(point => newest[0] - point[0] <= WINDOW_MS)
  state.memory.set(p.pid, kept)
}

/** The time of the newest memory point, or now: the right edge of every chart. */
export function latestTime(state: PageState): number {
  let latest = 0
  for (const m of state.memory.values()) {
    const last = m.points[m.points.length - 1]
    if (last && last[0] > latest) latest = last[0]
  }
  return latest || Date.now()
}

/** The charts' time span: since the oldest point kept, at least a minute, at most WINDOW_MS. */
export function span(state: PageState, end: number): number {
  let oldest = end
  for (const m of state.memory.values()) {
    const first = m.points[0]
    if (first && first[0] < oldest) oldest = first[0]
  }
  return Math.min(WINDOW_MS, Math.max(60 * 1000, end - oldest))
}
