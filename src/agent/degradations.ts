import type { Logger } from 'pino'

/** Why a start could not finish: `oomwatch_degraded{reason}` in a fail-open start. */
export type DegradeReason = 'config' | 'token' | 'journal' | 'pyspy-missing' | 'proc-unreadable' | 'listen'

/**
 * What a fail-open start (`--fail-open`) went on without, each said loudly once in the log
 * and kept for `/readyz`'s body and `oomwatch_degraded{reason}`.
 */
export class Degradations {
  readonly #found = new Map<DegradeReason, string>()

  constructor(readonly logger: Logger) {}

  /** Records that the agent goes on without what `reason` names; `message` says what and how to fix it. */
  add(reason: DegradeReason, message: string): void {
    this.#found.set(reason, message)
    this.logger.error({ degraded: reason }, `oomwatch runs degraded (${reason}): ${message}`)
  }

  reasons(): DegradeReason[] {
    return [...this.#found.keys()]
  }

  /** One line per degradation, for `/readyz`'s body. */
  notes(): string[] {
    return [...this.#found].map(([reason, message]) => `degraded (${reason}): ${message}`)
  }
}
