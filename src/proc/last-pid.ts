import { closeSync, openSync, readlinkSync } from 'node:fs'
import { ProcParseError, ProcReadError } from './errors.js'
import { PreadWhole } from './pread-whole.js'

/**
 * The last pid the kernel allocated, from the fifth field of `/proc/loadavg`
 * ("0.68 0.21 0.07 1/83 4057"): allocated in the *reader's* PID namespace, so a
 * sidecar sharing the pod's namespace sees every birth in the pod. Thread ids come from
 * the same counter, so a new thread moves it too.
 *
 * @returns the pid, or `undefined` when the text does not end in one
 */
export function parseLastPid(text: string): number | undefined {
  const match = /\s(\d+)\s*$/.exec(text)
  return match ? Number(match[1]) : undefined
}

/**
 * Whether anything was born since the last look: one pread of `/proc/loadavg` per tick
 * through a descriptor kept open, instead of listing `/proc`.
 *
 * The figure is of the reader's own PID namespace, whatever procfs is mounted at the
 * root: when the root is not this agent's own procfs (a host `/proc` mounted into a
 * container, a fixture tree), there is no signal and {@link BirthSignal.available} is
 * false; the caller then lists `/proc` on a timer.
 */
export class BirthSignal {
  readonly #path: string
  readonly #reader = new PreadWhole(128)
  #fd: number | undefined
  #last: number | undefined
  /** True when the root is this process's own procfs, whose `loadavg` tells its births. */
  readonly available: boolean

  /**
   * @param root - the procfs mount (`/proc`)
   * @param ownPid - this process's pid, as its own PID namespace numbers it
   */
  constructor(root: string, ownPid: number) {
    this.#path = `${root}/loadavg`
    this.available = isOwnProcfs(root, ownPid)
    if (!this.available) return
    try {
      this.#fd = openSync(this.#path, 'r')
    } catch (err) {
      throw new ProcReadError(this.#path, err)
    }
  }

  /**
   * True when a pid was allocated since the last call (the first call: true). Any
   * change counts, so a wrap of the pid counter is a birth too.
   *
   * @throws {ProcReadError} when the file cannot be read, {@link ProcParseError} when it
   *   does not end in a pid (a procfs that is not Linux's)
   */
  moved(): boolean {
    if (this.#fd === undefined) return false
    let text: string
    try {
      text = this.#reader.read(this.#fd)
    } catch (err) {
      throw new ProcReadError(this.#path, err)
    }
    const last = parseLastPid(text)
    if (last === undefined) throw new ProcParseError('loadavg', `no last pid at the end of ${JSON.stringify(text.slice(0, 80))}`)
    const moved = last !== this.#last
    this.#last = last
    return moved
  }

  /** Closes the descriptor. Idempotent. */
  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd)
    this.#fd = undefined
  }
}

/** `<root>/self` names this process only in a procfs of its own PID namespace. */
function isOwnProcfs(root: string, ownPid: number): boolean {
  try {
    return readlinkSync(`${root}/self`) === String(ownPid)
  } catch {
    return false
  }
}
