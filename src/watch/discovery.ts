import { basename } from 'node:path'
import { ProcReadError } from '../proc/errors.js'
import { identifyPython } from '../proc/python.js'
import type { ProcReader } from '../proc/reader.js'
import type { PythonIdentity, RlimitTable } from '../types.js'

/** A Python process found by a scan, with what was read of it. */
export interface Found {
  pid: number
  startTime: number
  cmdline: string[]
  exe: string
  python: PythonIdentity
  rlimits: RlimitTable
  rssPages: number
}

/**
 * A wrapper (a pyenv shim, `sh -c 'exec python ...'`) becomes Python by exec without
 * changing pid: a pid judged not-Python is looked at again for this long after it was
 * first seen. Older ones are taken as settled, which keeps scans cheap on busy hosts.
 */
const RECHECK_MS = 5000

/**
 * Finds the Python processes among the pids of a scan. Remembers the ones that are not
 * (or not matched), so each pid costs one `readlink` while young and nothing after.
 */
export class Discovery {
  readonly #ignored = new Map<number, { exe: string | undefined; firstSeen: number }>()

  constructor(
    private readonly proc: ProcReader,
    private readonly match: RegExp | undefined,
    private readonly onReadError: (pid: number, error: ProcReadError) => void,
  ) {}

  /** Examines `pid` unless it is known not to be Python; undefined when it is not (or vanished). */
  examine(pid: number, now: number): Found | undefined {
    const seen = this.#ignored.get(pid)
    if (seen && now - seen.firstSeen > RECHECK_MS) return undefined
    try {
      const exe = this.proc.exe(pid)
      if (seen && seen.exe === exe) return undefined
      const found = exe === undefined ? undefined : this.#read(pid, exe)
      if (!found) this.#ignored.set(pid, { exe, firstSeen: seen?.firstSeen ?? now })
      else this.#ignored.delete(pid)
      return found
    } catch (error) {
      /* c8 ignore next */ if (!(error instanceof ProcReadError)) throw error // parse errors are bugs to see
      this.#ignored.set(pid, { exe: undefined, firstSeen: seen?.firstSeen ?? now })
      this.onReadError(pid, error)
      return undefined
    }
  }

  /** Forgets pids that are gone, so a reused pid is examined afresh. */
  prune(present: ReadonlySet<number>): void {
    for (const pid of this.#ignored.keys()) if (!present.has(pid)) this.#ignored.delete(pid)
  }

  #read(pid: number, exe: string): Found | undefined {
    // py-spy maps no libpython, but an embedding host does: only those need the maps read.
    if (basename(exe).startsWith('py-spy')) return undefined
    const python = identifyPython(exe, undefined) ?? identifyPython(exe, this.proc.maps(pid))
    if (!python) return undefined
    const cmdline = this.proc.cmdline(pid)
    if (!cmdline || cmdline.length === 0) return undefined
    if (this.match && !this.match.test(cmdline.join(' '))) return undefined
    const stat = this.proc.stat(pid)
    const rlimits = this.proc.limits(pid)
    if (!stat || !rlimits) return undefined
    return { pid, startTime: stat.startTime, cmdline, exe, python, rlimits, rssPages: stat.rssPages }
  }
}
