import type { MemoryCgroup } from './cgroup/memory-cgroup.js'
import type { MemoryLimit } from './protocol/values.js'

/**
 * The limit that matters, in the order of shared/DESIGN.md: the container's memory
 * cgroup (its own limit or a parent's), then the configured limit (the Downward API's
 * `limits.memory`), then the host's memory. The figure always names its source.
 */
export function chooseLimit(cgroup: MemoryCgroup | undefined, configured: number | undefined, hostBytes: number): MemoryLimit {
  if (cgroup?.limit) {
    return { bytes: cgroup.limit.bytes, source: cgroup.version === 2 ? 'cgroup-v2' : 'cgroup-v1', path: cgroup.limit.path, via: cgroup.via }
  }
  if (configured !== undefined) return { bytes: configured, source: 'env', path: 'OOMWATCH_MEMORY_LIMIT' }
  return { bytes: hostBytes, source: 'host', path: '/proc/meminfo' }
}
