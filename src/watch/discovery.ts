import { basename } from 'node:path'
import { ProcReadError } from '../proc/errors.js'
import { identifyPython, isPythonExecutable } from '../proc/python.js'
import type { ProcReader } from '../proc/reader.js'
import type { PythonIdentity, RlimitTable } from '../protocol/values.js'

/** What missing ptrace rights cost: said once, when reading processes is refused. */
export const NO_PTRACE = 'without ptrace rights (CAP_SYS_PTRACE), Python is recognised by its command line, and py-spy will be refused'
/** What discovery reads of a pid. */
export type DiscoveryReads = Pick<ProcReader, 'exe' | 'cmdline' | 'maps' | 'stat' | 'limits'> &
  Partial<Pick<ProcReader, 'injectedContainerName'>>

/** A Python process found by a scan, with what was read of it. */
export interface Found {
  pid: number
  ppid: number
  startTime: number
  cmdline: string[]
  /** The executable, or argv[0] when the `exe` link cannot be read. */
  exe: string
  python: PythonIdentity
  rlimits: RlimitTable
  rssPages: number
  /** The container name `oomwatch inject` set in its environment. */
  injectedContainer?: string
  /** When it was seen to become Python, where an earlier look found another program (a wrapper that exec'd it). */
  execSeenAt?: number
}

/**
 * A wrapper (a pyenv shim, `sh -c 'exec python ...'`) becomes Python by exec without
 * changing pid: a pid judged not-Python is looked at again, at every scan interval, for this
 * long after it was first seen. Older ones are looked at only at the slower `late` recheck
 * (an entrypoint script that waits for a database, then execs the app), one `readlink` each.
 */
const RECHECK_MS = 5000

/** Which ignored pids a {@link Discovery.recheck} looks at again. */
export type Recheck = 'young' | 'recent' | 'late'

/**
 * A pid born since the last scan that is not (yet) Python is looked at again every tick
 * for this long: a fork execs its program within milliseconds of its birth, no new pid
 * tells of that exec, and a first-instant leak leaves no time to wait for one.
 */
const YOUNG_MS = 1000

/** Bounds the per-tick rechecks on a host that forks thousands of processes a second. */
const MAX_YOUNG = 256

/** A pid found not to be Python (or not matched): what its `exe` was, and since when. */
interface Ignored {
  exe: string | undefined
  firstSeen: number
}

/**
 * Finds the Python processes among the pids of a scan. Remembers the ones that are not
 * (or not matched), so a pid costs one `readlink` per recheck while it may still exec
 * Python, and nothing after.
 */
export class Discovery {
  readonly #ignored = new Map<number, Ignored>()
  /** Ignored pids born since a scan, rechecked every tick for {@link YOUNG_MS}. */
  readonly #young = new Set<number>()

  constructor(
    private readonly proc: DiscoveryReads,
    private readonly match: RegExp | undefined,
    private readonly onReadError: (pid: number, error: ProcReadError) => void,
  ) {}

  /**
   * Examines `pid` unless it is known not to be Python; undefined when it is not (or
   * vanished). `born`: the pid is new since the last scan, so it may exec Python any moment.
   */
  examine(pid: number, now: number, born = false, late = false): Found | undefined {
    const seen = this.#ignored.get(pid)
    if (seen && !late && now - seen.firstSeen > RECHECK_MS) return undefined
    // A kernel thread (no exe) never execs anything.
    if (seen && late && seen.exe === undefined) return undefined
    try {
      const exe = this.#exe(pid)
      if (exe === undefined) {
        // Gone, or a kernel thread: either way nothing will exec here.
        this.#young.delete(pid)
        if (!seen) this.#ignored.set(pid, { exe: undefined, firstSeen: now })
        return undefined
      }
      if (seen && seen.exe === exe.path) return undefined
      const found = this.#read(pid, exe)
      if (found) {
        this.#forget(pid)
        // Seen as something else first: its interpreter starts now, whatever its pid's age.
        return seen ? { ...found, execSeenAt: now } : found
      }
      this.#ignored.set(pid, { exe: exe.path, firstSeen: seen?.firstSeen ?? now })
      if (born && this.#young.size < MAX_YOUNG) this.#young.add(pid)
      return undefined
    } catch (error) {
      /* c8 ignore next */ if (!(error instanceof ProcReadError)) throw error // parse errors are bugs to see
      this.#young.delete(pid)
      this.#ignored.set(pid, { exe: undefined, firstSeen: seen?.firstSeen ?? now })
      this.onReadError(pid, error)
      return undefined
    }
  }

  /** True while a pid born lately awaits its exec: the watch then ticks fast. */
  hasYoung(now: number): boolean {
    for (const pid of this.#young) {
      if (now - (this.#ignored.get(pid)?.firstSeen ?? -Infinity) <= YOUNG_MS) return true
      this.#young.delete(pid)
    }
    return false
  }

  /**
   * Examines again the ignored pids that may have exec'd Python since, one `readlink` each:
   * `young` (every tick), the ones born within {@link YOUNG_MS}; `recent` (every scan
   * interval), every one still within {@link RECHECK_MS}, for a wrapper that execs later;
   * `late` (every refresh), every one, for a script that execs Python long after its start.
   */
  recheck(now: number, which: Recheck): Found[] {
    if (which === 'young' && this.#young.size === 0) return []
    const within = which === 'young' ? YOUNG_MS : which === 'recent' ? RECHECK_MS : Infinity
    const found: Found[] = []
    for (const pid of which === 'young' ? [...this.#young] : [...this.#ignored.keys()]) {
      const seen = this.#ignored.get(pid)
      if (!seen || now - seen.firstSeen > within) {
        this.#young.delete(pid)
        continue
      }
      const python = this.examine(pid, now, false, which === 'late')
      if (python) found.push(python)
    }
    return found
  }

  /** Forgets pids that are gone, so a reused pid is examined afresh. */
  prune(present: ReadonlySet<number>): void {
    for (const pid of this.#ignored.keys()) if (!present.has(pid)) this.#forget(pid)
  }

  #forget(pid: number): void {
    this.#ignored.delete(pid)
    this.#young.delete(pid)
  }

  /**
   * The `exe` link; without ptrace rights over the process (EACCES), its argv[0] instead,
   * since `cmdline`, `stat` and `limits` stay readable: a sidecar without CAP_SYS_PTRACE
   * still sees the process, its rlimits and its memory, and its incidents say why py-spy failed.
   */
  #exe(pid: number): { path: string; via: 'exe' | 'cmdline'; cmdline?: string[] } | undefined {
    try {
      const path = this.proc.exe(pid)
      return path === undefined ? undefined : { path, via: 'exe' }
    } catch (error) {
      if (!(error instanceof ProcReadError) || error.code !== 'PROC_ACCESS') throw error
      this.onReadError(pid, error)
      const cmdline = this.proc.cmdline(pid)
      return cmdline?.[0] === undefined ? undefined : { path: cmdline[0], via: 'cmdline', cmdline }
    }
  }

  #read(pid: number, exe: { path: string; via: 'exe' | 'cmdline'; cmdline?: string[] }): Found | undefined {
    // py-spy maps no libpython, but an embedding host does: only those need the maps read.
    if (basename(exe.path).startsWith('py-spy')) return undefined
    const python =
      exe.via === 'cmdline'
        ? isPythonExecutable(exe.path)
          ? { via: 'cmdline' as const, detail: exe.path }
          : undefined
        : (identifyPython(exe.path, undefined) ?? identifyPython(exe.path, this.proc.maps(pid)))
    if (!python) return undefined
    const cmdline = exe.cmdline ?? this.proc.cmdline(pid)
    if (!cmdline || cmdline.length === 0) return undefined
    if (this.match && !this.match.test(cmdline.join(' '))) return undefined
    const stat = this.proc.stat(pid)
    const rlimits = this.proc.limits(pid)
    if (!stat || !rlimits) return undefined
    const injectedContainer = this.proc.injectedContainerName?.(pid)
    return {
      pid,
      ppid: stat.ppid,
      startTime: stat.startTime,
      cmdline,
      exe: exe.path,
      python,
      rlimits,
      rssPages: stat.rssPages,
      ...(injectedContainer !== undefined && { injectedContainer }),
    }
  }
}
