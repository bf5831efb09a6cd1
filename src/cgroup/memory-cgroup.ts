/**
 * Thin I/O around the cgroup parsers: find a process's memory cgroup directory, read its
 * effective limit, and read its usage and OOM-kill counters cheaply and after the
 * process is gone.
 */
import { closeSync, openSync, readFileSync, statSync } from 'node:fs'
import { posix } from 'node:path'
import { CgroupClosedError, CgroupReadError } from './errors.js'
import { ancestorDirs, locateMemoryCgroup, memoryCgroupPath, type MemoryCgroupLocation } from './locate.js'
import { PreadWhole } from '../proc/pread-whole.js'
import { parseBytes, parseKeyedCounters, parseLimit, parseMountinfo, parsePressureTotal, parseProcCgroup } from './parse.js'
import type { MemoryLimit } from '../protocol/values.js'

/** A located memory cgroup. */
export interface MemoryCgroup {
  /**
   * `${version}:${dev}:${ino}` of the directory: equal for two processes in the same
   * cgroup even when reached through different `/proc/<pid>/root` paths, so they can
   * share one {@link CgroupCounters}.
   */
  id: string
  version: 1 | 2
  /** The cgroup directory, as this agent reaches it. */
  dir: string
  /** `proc-root`: through the target's `/proc/<pid>/root`; `agent-mount`: through this agent's own cgroup mount. */
  via: 'proc-root' | 'agent-mount'
  /** `dir` and its ancestors inside the mount, innermost first: where limits are looked for. */
  chain: string[]
  /** Its path in `/proc/<pid>/cgroup`: a container runtime names the leaf after the container. */
  path: string
  /** The effective limit when located (see {@link readLimit}); absent when nothing in the chain sets one. */
  limit?: { bytes: number; path: string }
}

/** The file operations discovery needs; tests inject failures the root user never sees (EACCES). */
export interface CgroupIo {
  readFile: (path: string) => string
  stat: (path: string) => { dev: number; ino: number }
}

/** {@link CgroupIo} on the real filesystem. */
export const nodeIo: CgroupIo = {
  readFile: path => readFileSync(path, 'utf8'),
  stat: path => statSync(path),
}

/** The process (or the cgroup) no longer exists. */
const GONE = new Set(['ENOENT', 'ESRCH'])
/** No ptrace rights over the target: its root and mount table are closed to us. */
const DENIED = new Set(['EACCES', 'EPERM'])

type Outcome<T> = { ok: T } | { fail: 'gone' | 'denied'; err: unknown }

/** Runs `op` on `path`, sorting gone/denied apart; any other failure is a {@link CgroupReadError}. */
function attempt<T>(path: string, op: (path: string) => T): Outcome<T> {
  try {
    return { ok: op(path) }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? ''
    if (GONE.has(code)) return { fail: 'gone', err }
    if (DENIED.has(code)) return { fail: 'denied', err }
    throw new CgroupReadError(path, err)
  }
}

const limitFile = (version: 1 | 2): string => (version === 2 ? 'memory.max' : 'memory.limit_in_bytes')
const usageFile = (version: 1 | 2): string => (version === 2 ? 'memory.current' : 'memory.usage_in_bytes')
const oomFile = (version: 1 | 2): string => (version === 2 ? 'memory.events' : 'memory.oom_control')

/**
 * Finds the memory cgroup of process `pid`.
 *
 * First through the target's own view: its `mountinfo` and its root
 * (`<procRoot>/<pid>/root`), which is right both on a plain host and from a sidecar
 * sharing the pod's PID namespace. When that view is denied (no ptrace rights) or shows
 * no mount of the cgroup, the same computation runs on this agent's own
 * `<procRoot>/self/mountinfo` without the root prefix.
 *
 * @param procRoot - the procfs mount, `/proc` except in tests
 * @param io - file operations; default the real filesystem
 * @returns `undefined` when the process is gone or no mount shows its memory cgroup
 * @throws {@link CgroupParseError} on malformed files, {@link CgroupReadError} on other read failures
 */
export function findMemoryCgroup(procRoot: string, pid: number, io: CgroupIo = nodeIo): MemoryCgroup | undefined {
  const base = posix.join(procRoot, String(pid))
  const cgroupPath = `${base}/cgroup`
  const cgroupText = attempt(cgroupPath, io.readFile)
  if ('fail' in cgroupText) {
    if (cgroupText.fail === 'gone') return undefined
    throw new CgroupReadError(cgroupPath, cgroupText.err)
  }
  const entries = parseProcCgroup(cgroupText.ok)

  const mountinfo = attempt(`${base}/mountinfo`, io.readFile)
  if ('ok' in mountinfo) {
    const loc = locateMemoryCgroup(entries, parseMountinfo(mountinfo.ok))
    if (loc !== undefined) {
      const chain = ancestorDirs(posix.join(base, 'root', loc.mountPoint), loc.relative)
      const found = attempt(chain[0] as string, io.stat) // ancestorDirs puts the directory itself first
      if ('ok' in found) return build(io, loc, memoryCgroupPath(entries), chain, found.ok, 'proc-root')
      if (found.fail === 'gone') return undefined
    }
  } else if (mountinfo.fail === 'gone') {
    return undefined
  }

  const own = posix.join(procRoot, 'self', 'mountinfo')
  const loc = locateMemoryCgroup(entries, parseMountinfo(readText(io, own)))
  if (loc === undefined) return undefined
  const chain = ancestorDirs(loc.mountPoint, loc.relative)
  const found = attempt(chain[0] as string, io.stat)
  if ('ok' in found) return build(io, loc, memoryCgroupPath(entries), chain, found.ok, 'agent-mount')
  if (found.fail === 'gone') return undefined
  throw new CgroupReadError(chain[0] as string, found.err)
}

/** Reads a file that has no reason to fail (our own mount table): any failure is reported. */
function readText(io: CgroupIo, path: string): string {
  try {
    return io.readFile(path)
  } catch (err) {
    throw new CgroupReadError(path, err)
  }
}

/** Assembles the located cgroup, its identity from the directory's stat, and its limit. */
function build(
  io: CgroupIo,
  { version }: MemoryCgroupLocation,
  path: string,
  chain: string[],
  st: { dev: number; ino: number },
  via: MemoryCgroup['via'],
): MemoryCgroup {
  const cg: MemoryCgroup = { id: `${version}:${st.dev}:${st.ino}`, version, dir: chain[0] as string, via, chain, path }
  const limit = readLimit(cg, io)
  if (limit !== undefined) cg.limit = limit
  return cg
}

/**
 * Reads the effective limit: the smallest one set on the directory or an ancestor inside
 * the mount (Kubernetes may put it on the pod's parent cgroup only). Re-reads every
 * time, since limits can be resized in place. A missing limit file is skipped (the v2
 * root cgroup has none; after the target died its `/proc/<pid>/root` path is gone).
 *
 * @returns the limit and the file that set it (the innermost on a tie), or `undefined`
 *   when no file in the chain sets one
 * @throws {@link CgroupParseError} on a malformed limit file, {@link CgroupReadError} on other read failures
 */
export function readLimit(cg: MemoryCgroup, io: CgroupIo = nodeIo): { bytes: number; path: string } | undefined {
  let best: { bytes: number; path: string } | undefined
  for (const dir of cg.chain) {
    const path = `${dir}/${limitFile(cg.version)}`
    const text = attempt(path, io.readFile)
    if ('fail' in text) {
      if (text.fail === 'gone') continue
      throw new CgroupReadError(path, text.err)
    }
    const bytes = parseLimit(text.ok, cg.version)
    if (bytes !== undefined && (best === undefined || bytes < best.bytes)) best = { bytes, path }
  }
  return best
}

/**
 * The cgroup's limit in the shared {@link MemoryLimit} shape (source `cgroup-v1` or
 * `cgroup-v2`, with the file and how it was reached), or `undefined` without a limit.
 */
export function toMemoryLimit(cg: MemoryCgroup): MemoryLimit | undefined {
  if (cg.limit === undefined) return undefined
  return { bytes: cg.limit.bytes, source: cg.version === 2 ? 'cgroup-v2' : 'cgroup-v1', path: cg.limit.path, via: cg.via }
}

/** A cgroup's open files; the optional ones are absent where the kernel or the version has none. */
interface Descriptors {
  usage: number
  oom: number | undefined
  group: number | undefined
  high: number | undefined
  pressure: number | undefined
}

/** Opening size of the read buffer: every counter file is far smaller; it doubles if not. */
const BUFFER_BYTES = 512

/**
 * Usage and OOM-kill counters of one memory cgroup, for the hot loop.
 *
 * The files are opened once and read with positional reads at offset 0: no path lookup
 * per tick, and the descriptors keep working after the target process died and its
 * `/proc/<pid>/root` vanished, which is when the OOM-kill count matters. Once the
 * cgroup directory itself is removed, reads fail (`ENODEV`). Share one instance per
 * {@link MemoryCgroup.id}; {@link CgroupCounters.close} releases the descriptors.
 */
export class CgroupCounters {
  /** The cgroup directory, for messages. */
  readonly dir: string
  readonly #usagePath: string
  readonly #oomPath: string
  /** `undefined` once closed. `oom` is `undefined` when the cgroup has no event file (v2 root cgroup); `group` without `memory.oom.group` (v1). */
  #fds: Descriptors | undefined
  readonly #groupPath: string
  readonly #highPath: string
  readonly #pressurePath: string
  readonly #reader = new PreadWhole(BUFFER_BYTES)

  /**
   * Opens `memory.current` + `memory.events` (v2) or `memory.usage_in_bytes` +
   * `memory.oom_control` (v1) in `cg.dir`.
   *
   * @throws {@link CgroupReadError} when the usage file cannot be opened, or the event
   *   file cannot for a reason other than being absent
   */
  constructor(cg: MemoryCgroup) {
    this.dir = cg.dir
    this.#usagePath = `${cg.dir}/${usageFile(cg.version)}`
    this.#oomPath = `${cg.dir}/${oomFile(cg.version)}`
    this.#groupPath = `${cg.dir}/memory.oom.group`
    this.#highPath = `${cg.dir}/memory.high`
    this.#pressurePath = `${cg.dir}/memory.pressure`
    let usage: number
    try {
      usage = openSync(this.#usagePath, 'r')
    } catch (err) {
      throw new CgroupReadError(this.#usagePath, err)
    }
    let oom: number | undefined
    try {
      oom = openSync(this.#oomPath, 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        closeSync(usage)
        throw new CgroupReadError(this.#oomPath, err)
      }
    }
    // v2 only, and each may be absent (a root cgroup, an older kernel, PSI off): opened now,
    // since by the time a group kill is told the app's /proc/<pid>/root may be gone.
    const optional = (path: string) => {
      try {
        return cg.version === 2 ? openSync(path, 'r') : undefined
      } catch {
        return undefined
      }
    }
    this.#fds = { usage, oom, group: optional(this.#groupPath), high: optional(this.#highPath), pressure: optional(this.#pressurePath) }
  }

  /**
   * `memory.high` (v2), bytes: past it the kernel throttles the cgroup's allocations.
   * Undefined on v1, when unset (`max`), or without the file.
   *
   * @throws as {@link CgroupCounters.usage}
   */
  high(): number | undefined {
    const fd = this.#open().high
    return fd === undefined ? undefined : parseLimit(this.#read(fd, this.#highPath), 2)
  }

  /**
   * What a stall at `memory.high` is read by: the `high` count of `memory.events` and, where
   * the kernel keeps PSI, the stall time of `memory.pressure` (µs).
   *
   * @throws as {@link CgroupCounters.usage}
   */
  highPressure(): { events: number; stallUs?: number } | undefined {
    const events = this.#events()?.['high']
    if (events === undefined) return undefined
    const pressure = this.#open().pressure
    return pressure === undefined ? { events } : { events, ...this.#stall(pressure) }
  }

  /** PSI's stall time; nothing where the kernel refuses the read (PSI turned off: EOPNOTSUPP). */
  #stall(fd: number): { stallUs?: number } {
    try {
      return { stallUs: parsePressureTotal(this.#read(fd, this.#pressurePath)) }
    } catch {
      return {}
    }
  }

  /**
   * Current memory charged to the cgroup, in bytes.
   *
   * @throws {@link CgroupReadError} when the read fails (`ENODEV` once the cgroup is removed);
   *   `CGROUP_CLOSED` after {@link CgroupCounters.close}
   */
  usage(): number {
    return parseBytes(this.#read(this.#open().usage, this.#usagePath), this.#usagePath)
  }

  /**
   * The cgroup's OOM-kill count (`oom_kill`), or `undefined` where the kernel does not
   * report it (v1 before Linux 4.13, or no event file).
   *
   * @throws as {@link CgroupCounters.usage}
   */
  oomKills(): number | undefined {
    return this.#events()?.['oom_kill']
  }

  /**
   * Whether the kernel kills the cgroup as a whole on an OOM (`memory.oom.group` is 1, as the
   * kubelet sets it), and how many such kills it counted (`oom_group_kill`, where it does).
   * v1 has neither: `{ group: false }`.
   *
   * @throws as {@link CgroupCounters.usage}
   */
  groupKill(): { group: boolean; groupKills?: number } {
    const fd = this.#open().group
    const group = fd !== undefined && this.#read(fd, this.#groupPath).trim() === '1'
    const groupKills = this.#events()?.['oom_group_kill']
    return { group, ...(groupKills !== undefined && { groupKills }) }
  }

  /** Closes the descriptors. Idempotent; reads afterwards throw `CGROUP_CLOSED`. */
  close(): void {
    const fds = this.#fds
    if (fds === undefined) return
    this.#fds = undefined
    closeSync(fds.usage)
    if (fds.oom !== undefined) closeSync(fds.oom)
    for (const fd of [fds.group, fds.high, fds.pressure]) if (fd !== undefined) closeSync(fd)
  }

  /** The event file's counters (`memory.events`, or v1's `memory.oom_control`); undefined without one. */
  #events(): Record<string, number> | undefined {
    const fd = this.#open().oom
    return fd === undefined ? undefined : parseKeyedCounters(this.#read(fd, this.#oomPath), this.#oomPath)
  }

  #open(): Descriptors {
    if (this.#fds === undefined) throw new CgroupClosedError(this.dir)
    return this.#fds
  }

  /** Whole file through `fd`, from offset 0. */
  #read(fd: number, path: string): string {
    try {
      return this.#reader.read(fd)
    } catch (err) {
      throw new CgroupReadError(path, err)
    }
  }
}
