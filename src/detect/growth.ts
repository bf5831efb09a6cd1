import type { Samples } from './series.js'

/** How a memory series is moving now. */
export interface Growth {
  /** Bytes per second over the recent part of the current rise; 0 when not rising. */
  bytesPerSec: number
  /** Bytes gained since the current rise began. */
  risen: number
  /** How many samples the current rise spans (1 when the newest sample ended a fall). */
  runLength: number
}

/**
 * Measures the current rise: the longest suffix of the series in which no sample is
 * lower than its predecessor by more than `dropTolerance` bytes. A sawtooth that frees
 * memory restarts its rise at every drop, so it never accumulates the history of a
 * runaway; small dips (a GC, a freed buffer) do not break a real leak's rise.
 * The rate is taken over the last `windowMs` of the rise, so an accelerating leak is
 * judged by its present speed, not its average.
 */
export function measureGrowth(samples: Samples, windowMs: number, dropTolerance: number): Growth {
  const end = samples.length - 1
  if (end < 0) return { bytesPerSec: 0, risen: 0, runLength: 0 }
  const lastT = samples.t(end)
  const lastBytes = samples.bytes(end)
  let start = end
  for (let later = lastBytes; start > 0; start--) {
    const earlier = samples.bytes(start - 1)
    if (earlier - later > dropTolerance) break
    later = earlier
  }
  // Back from the newest: the window holds a few samples, the rise may hold hundreds.
  let from = end
  while (from > start && lastT - samples.t(from - 1) <= windowMs) from--
  const seconds = (lastT - samples.t(from)) / 1000
  const bytesPerSec = seconds > 0 ? Math.max(0, (lastBytes - samples.bytes(from)) / seconds) : 0
  return { bytesPerSec, risen: lastBytes - samples.bytes(start), runLength: samples.length - start }
}

/** Seconds until `usage` reaches `limit` at `bytesPerSec`; Infinity when not growing. */
export function secondsToLimit(usage: number, limit: number, bytesPerSec: number): number {
  if (usage >= limit) return 0
  return bytesPerSec > 0 ? (limit - usage) / bytesPerSec : Infinity
}
