import type { Watched } from './watched.js'

/** One watched container's memory now: what its metrics gauges show. */
export interface ContainerReading {
  /** Its name, as its processes' `container` tells it. */
  container: string
  /** Its cgroup's usage; absent without a cgroup (only its members' RSS is known then). */
  usageBytes?: number
  limitBytes: number
  /** Predicted seconds to the limit at the current growth; absent while it is not growing. */
  secondsToLimit?: number
}

/** The containers of the watched processes, one reading each (a container is a group: one memory limit). */
export function containerReadings(watched: Iterable<Watched>): ContainerReading[] {
  const readings = new Map<object, ContainerReading>()
  for (const { group, info } of watched) {
    if (readings.has(group)) continue
    const usage = group.hasUsage ? group.series.lastBytes() : undefined
    const verdict = group.verdict
    const growing =
      verdict !== undefined && verdict.state !== 'steady' && verdict.bytesPerSec > 0 && Number.isFinite(verdict.secondsToLimit)
    readings.set(group, {
      container: info.container ?? '',
      ...(usage !== undefined && { usageBytes: usage }),
      limitBytes: group.limit.bytes,
      ...(growing && { secondsToLimit: verdict.secondsToLimit }),
    })
  }
  return [...readings.values()]
}
