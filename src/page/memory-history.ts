import type { MemoryPayload, ProcessInfo } from '../events.js'

/** How far back the live page's charts go, and how often a point is taken. */
export const HISTORY_MS = 5 * 60_000
export const SAMPLE_MS = 1000

interface Kept {
  limitBytes: number
  points: [number, number][]
}

/**
 * The recent RSS of each watched process, for the live page: sampled every
 * {@link SAMPLE_MS}, kept for {@link HISTORY_MS}, forgotten when the process is gone
 * (the page keeps what it already drew).
 */
export class MemoryHistory {
  readonly #kept = new Map<number, Kept>()
  readonly #keepMs: number

  constructor(keepMs = HISTORY_MS) {
    this.#keepMs = keepMs
  }

  /** Takes one point per process at `nowMs` (epoch ms); returns the frame with just these points. */
  sample(processes: readonly ProcessInfo[], nowMs: number): MemoryPayload {
    const present = new Set<number>()
    const frame: MemoryPayload = { type: 'memory', processes: [] }
    for (const p of processes) {
      present.add(p.pid)
      const point: [number, number] = [nowMs, p.memory.rssBytes ?? 0]
      let kept = this.#kept.get(p.pid)
      if (!kept) this.#kept.set(p.pid, (kept = { limitBytes: p.memory.limit.bytes, points: [] }))
      kept.limitBytes = p.memory.limit.bytes
      kept.points.push(point)
      const old = kept.points.findIndex(([t]) => nowMs - t <= this.#keepMs)
      if (old > 0) kept.points.splice(0, old)
      frame.processes.push({ pid: p.pid, limitBytes: kept.limitBytes, points: [point] })
    }
    for (const pid of this.#kept.keys()) if (!present.has(pid)) this.#kept.delete(pid)
    return frame
  }

  /** Every kept point: the first frame a page gets. */
  history(): MemoryPayload {
    return { type: 'memory', processes: [...this.#kept].map(([pid, kept]) => ({ pid, limitBytes: kept.limitBytes, points: [...kept.points] })) }
  }
}
