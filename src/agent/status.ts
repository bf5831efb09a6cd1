import type { ProcessInfo } from '../protocol/events.js'
import type { PyspyInfo } from '../protocol/values.js'
import type { AgentStatus } from '../status.js'
import type { ContainerReading } from '../watch/containers.js'

/** What the status reads of the watch loop. */
export interface WatchState {
  readonly ready: boolean
  readonly alive: boolean
  processes(): ProcessInfo[]
  containers(): ContainerReading[]
}

/** The agent's state as the sinks read it: the watch loop's, and whether the agent is stopping. */
export class Status implements AgentStatus {
  /** Set when stop() begins: `/livez` then answers 503. */
  stopping = false
  readonly #watch: WatchState

  constructor(
    watch: WatchState,
    readonly readyNote: string,
  ) {
    this.#watch = watch
  }

  get ready(): boolean {
    return this.#watch.ready
  }

  get live(): boolean {
    return !this.stopping && this.#watch.alive
  }

  processes(): ProcessInfo[] {
    return this.#watch.processes()
  }

  containers(): ContainerReading[] {
    return this.#watch.containers()
  }
}

/** What `/readyz` says of py-spy: where it is, or why incidents will carry no stack. */
export function readyNote(pyspy: PyspyInfo): string {
  if ('path' in pyspy) return `py-spy ${pyspy.version} at ${pyspy.path}`
  return `py-spy missing: ${pyspy.error}; incidents will carry no stack (${pyspy.remedy})`
}
