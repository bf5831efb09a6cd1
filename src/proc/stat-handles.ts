import { closeSync, openSync, statfsSync } from 'node:fs'
import type { ProcStat } from '../types.js'
import { isVanished, ProcReadError } from './errors.js'
import { PreadWhole } from './pread-whole.js'
import type { ProcReader } from './reader.js'
import { parseStat } from './stat.js'

const PROC_SUPER_MAGIC = 0x9fa0
// A stat line is ~300 bytes (52 fields, a 15-byte comm).
const STAT_BUFFER_BYTES = 1024

/**
 * `/proc/<pid>/stat` of the watched processes, read every refresh through a file
 * descriptor opened once per process: one pread instead of open + read + close, the
 * agent's largest syscall cost at 200 processes (measured: 14-22% of its CPU).
 *
 * Safe on procfs only: there a kept descriptor belongs to the process it was opened for,
 * and reads ESRCH once that process is gone, even if its pid is reused. On any other
 * filesystem (the fixture trees of tests) an open descriptor outlives an unlinked file,
 * so reads go through {@link ProcReader.stat} each time.
 */
export class StatHandles {
  readonly #proc: ProcReader
  readonly #fds = new Map<number, number>()
  readonly #reader = new PreadWhole(STAT_BUFFER_BYTES)
  /** True when descriptors are kept (the root is procfs). */
  readonly keeps: boolean

  constructor(proc: ProcReader) {
    this.#proc = proc
    this.keeps = isProcfs(proc.root)
  }

  /** How many descriptors are open now. */
  get open(): number {
    return this.#fds.size
  }

  /**
   * Parsed `/proc/<pid>/stat`, `undefined` once the process is gone (its descriptor is
   * then closed). Throws like {@link ProcReader.stat}.
   */
  read(pid: number): ProcStat | undefined {
    if (!this.keeps) return this.#proc.stat(pid)
    let text: string
    try {
      let fd = this.#fds.get(pid)
      if (fd === undefined) {
        fd = openSync(this.#proc.path(pid, 'stat'), 'r')
        this.#fds.set(pid, fd)
      }
      text = this.#reader.read(fd)
    } catch (err) {
      this.forget(pid)
      if (isVanished(err)) return undefined
      throw new ProcReadError(this.#proc.path(pid, 'stat'), err)
    }
    return parseStat(text)
  }

  /** Closes the descriptor of `pid`, if one is open: call it when the process leaves the watch. */
  forget(pid: number): void {
    const fd = this.#fds.get(pid)
    if (fd === undefined) return
    this.#fds.delete(pid)
    closeSync(fd)
  }

  /** Closes every descriptor. */
  closeAll(): void {
    for (const pid of [...this.#fds.keys()]) this.forget(pid)
  }
}

function isProcfs(root: string): boolean {
  try {
    return statfsSync(root).type === PROC_SUPER_MAGIC
  } catch {
    return false
  }
}
