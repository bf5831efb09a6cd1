import type { ProcessInfo } from './protocol/events.js'
import type { ContainerReading } from './watch/containers.js'

/**
 * What the sinks (the stream server, the metrics) may read of the agent besides its
 * events: read-only, implemented by the agent. A sink reads it; it never calls back.
 */
export interface AgentStatus {
  /** True once the first scan is done; `/readyz` answers 503 before. */
  readonly ready: boolean
  /** False once the agent is stopping, or its watch loop has stalled: `/livez` answers 503. */
  readonly live: boolean
  /** Said in `/readyz`'s body (py-spy missing, say) without failing it. */
  readonly readyNote: string | undefined
  /** The processes watched now, with their latest RSS. */
  processes(): ProcessInfo[]
  /** Their containers: usage, limit, and predicted seconds to the limit. */
  containers(): ContainerReading[]
}
