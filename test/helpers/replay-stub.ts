import type { ReplayStream } from '../../src/stream/greeting.js'
import type { OomwatchEvent, ReplaySummary } from '../../src/protocol/events.js'

/** A replay of `events` in batches of `batch`, for a greeting stand-in; `closed` tells whether it was closed. */
export function arrayReplay(events: OomwatchEvent[], plan?: Partial<ReplaySummary>, batch = 2): ReplayStream & { closed: boolean } {
  let at = 0
  return {
    plan: { since: 0, count: events.length, missed: 0, ...plan },
    skippedLines: 0,
    closed: false,
    read() {
      const out = events.slice(at, at + batch)
      at += out.length
      return Promise.resolve(out)
    },
    close() {
      this.closed = true
      return Promise.resolve()
    },
  }
}
