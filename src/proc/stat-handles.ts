import { closeSync, openSync, readSync, statfsSync } from 'node:fs'
import type { ProcStat } from '../types.js'
import { errnoOf, ProcReadError } from './errors.js'
import type { ProcReader } from './reader.js'
import { parseStat } from './stat.js'

const PROC_SUPER_MAGIC = 0x9fa0
const VANISHED: ReadonlySet<string | undefined> = new Set(['ENOENT', 'ESRCH'])
// A stat line is ~300 bytes (52 fields, a 15-byte comm); a full buffer means "read it whole".
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
  readonly #buffer = Buffer.alloc(STAT_BUFFER_BYTES)
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
    const path = this.#proc.path(pid, 'stat')
    let length: number
    try {
      let fd = this.#fds.get(pid)
      if (fd === undefined) {
        fd = openSync(path, 'r')
        this.#fds.set(pid, fd)
      }
      length = readSync(fd, this.#buffer, 0, this.#buffer.length, 0)
    } catch (err) {
      this.forget(pid)
      if (VANISHED.has(errnoOf(err))) return undefined
      throw new ProcReadError(path, err)
    }
    if (length === this.#buffer.length) return this.#proc.stat(pid)
    return parseStat(this.#buffer.toString('utf8', 0, length))
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
