import { ProcReadError } from '../proc/errors.js'
import { processAgeMs } from '../proc/uptime.js'

/**
 * When processes were born, on the monotonic clock. The uptime is read once a tick, however
 * many processes are found in it.
 */
export class BirthClock {
  readonly #readUptime: () => number | undefined
  readonly #onError: (error: ProcReadError) => void
  #uptime: { at: number; seconds: number | undefined } | undefined

  /** @param onError - told of an unreadable uptime; ages are then counted from the first sighting. */
  constructor(readUptime: () => number | undefined, onError: (error: ProcReadError) => void) {
    this.#readUptime = readUptime
    this.#onError = onError
  }

  /** When a process that started `startTime` clock ticks after boot was born; never after `now`. */
  bornAt(startTime: number, now: number): number {
    if (this.#uptime?.at !== now) {
      let seconds: number | undefined
      try {
        seconds = this.#readUptime()
      } catch (error) {
        /* c8 ignore next */ if (!(error instanceof ProcReadError)) throw error
        this.#onError(error)
      }
      this.#uptime = { at: now, seconds }
    }
    const { seconds } = this.#uptime
    return seconds === undefined ? now : now - processAgeMs(startTime, seconds)
  }
}
