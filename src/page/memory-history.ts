import { Series } from '../detect/series.js'
import type { HubEvent } from '../hub.js'
import type { MemoryPayload } from '../protocol/events.js'
import type { MemoryReading } from '../watch/memory-reading.js'

/** How far back the live page's charts go, and how often a point is taken. */
export const HISTORY_MS = 5 * 60_000
export const SAMPLE_MS = 1000

/**
 * The recent RSS of each watched process, for the live page: sampled every
 * {@link SAMPLE_MS}, kept for {@link HISTORY_MS}, forgotten when the process is gone
 * (the page keeps what it already drew). Points live in a {@link Series} each, a ring of
 * numbers: 200 processes over 5 minutes are 60,000 points, 1 MiB this way, ~5 MiB as arrays.
 * Subscribe {@link MemoryHistory.sink} to the hub (`subscribeAll`): it keeps each memory frame.
 */
export class MemoryHistory {
  readonly #kept = new Map<number, { limitBytes: number; points: Series }>()
  readonly #keepMs: number
  readonly #capacity: number

  constructor(keepMs = HISTORY_MS) {
    this.#keepMs = keepMs
    this.#capacity = Math.ceil(keepMs / SAMPLE_MS) + 1
  }

  /** The hub's sink: keeps the points of each memory frame, ignores the events. */
  readonly sink = (event: HubEvent): void => {
    if (event.type === 'memory') this.add(event)
  }

  /** Keeps one point per process at `nowMs` (epoch ms), and forgets the processes not in `readings`. */
  record(readings: readonly MemoryReading[], nowMs: number): void {
    this.add(memoryFrame(readings, nowMs))
  }

  /** Keeps the points of a frame, and forgets the processes not in it. */
  add(frame: MemoryPayload): void {
    const present = new Set<number>()
    for (const { pid, limitBytes, points } of frame.processes) {
      present.add(pid)
      let kept = this.#kept.get(pid)
      if (!kept) this.#kept.set(pid, (kept = { limitBytes, points: new Series(this.#capacity) }))
      kept.limitBytes = limitBytes
      for (const [t, bytes] of points) {
        kept.points.push({ t, bytes })
        kept.points.dropBefore(t - this.#keepMs)
      }
    }
    for (const pid of this.#kept.keys()) if (!present.has(pid)) this.#kept.delete(pid)
  }

  /** Every kept point: the first frame a page gets. */
  history(): MemoryPayload {
    return {
      type: 'memory',
      processes: [...this.#kept].map(([pid, kept]) => ({
        pid,
        limitBytes: kept.limitBytes,
        points: kept.points.toArray().map(({ t, bytes }): [number, number] => [t, bytes]),
      })),
    }
  }
}

/** The frame a page gets each second: one point per process. */
export function memoryFrame(readings: readonly MemoryReading[], nowMs: number): MemoryPayload {
  return { type: 'memory', processes: readings.map(({ pid, rssBytes, limitBytes }) => ({ pid, limitBytes, points: [[nowMs, rssBytes]] })) }
}
