import type { Logger } from 'pino'
import { RateLimiter } from './rate-limit.js'

/** The kinds of refusal the stream logs, each at its own bounded rate. */
export type RefusalKind = 'capacity' | 'host' | 'unauthorized' | 'origin' | 'clients'

/** Least time between two log lines of one kind of refusal. */
export const REFUSAL_LOG_WINDOW_MS = 10_000

/**
 * Warnings about refused connections, at most one line per kind per window: a flood of
 * refusals must not become a flood of log lines (the log is shipped off the node). Each
 * line carries `kind` and `suppressed`, the refusals of that kind held back before it, so
 * the count of lines plus the sum of `suppressed` is the number of refusals. What is held
 * back is summed up in a line of its own (`summary: true`, not itself a refusal) when the
 * window passes, and at `close()`.
 */
export class RefusalLog {
  readonly #logger: Logger
  readonly #limiter: RateLimiter
  readonly #now: () => number
  readonly #messages = new Map<string, string>()
  readonly #timer: NodeJS.Timeout
  #closed = false

  constructor(logger: Logger, windowMs = REFUSAL_LOG_WINDOW_MS, now: () => number = () => performance.now()) {
    this.#logger = logger
    this.#limiter = new RateLimiter(windowMs)
    this.#now = now
    this.#timer = setInterval(() => this.#flush(false), windowMs).unref()
  }

  /** One refusal of `kind`: logged now with `fields`, or counted into the next line of its kind. */
  note(kind: RefusalKind, fields: Record<string, unknown>, message: string): void {
    if (this.#closed) return
    this.#messages.set(kind, message)
    const suppressed = this.#limiter.take(kind, this.#now())
    if (suppressed === undefined) return
    this.#logger.warn({ ...fields, kind, suppressed }, suppressed > 0 ? `${message} (and ${suppressed} more before it)` : message)
  }

  /** Writes what is held back and stops the timer. Idempotent. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#timer)
    this.#flush(true)
  }

  #flush(all: boolean): void {
    for (const [kind, suppressed] of this.#limiter.drain(this.#now(), all)) {
      this.#logger.warn({ kind, suppressed, summary: true }, `${suppressed} more: ${this.#messages.get(kind) ?? kind}`)
    }
  }
}
