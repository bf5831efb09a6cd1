/**
 * Pure parsers for the procfs and cgroupfs files that locate a process's memory cgroup
 * and report its limit, usage and OOM kills. Every function takes the file's text and
 * throws {@link CgroupParseError} on anything the kernel would not have written.
 */
import { CgroupParseError } from './errors.js'

/** One line of `/proc/<pid>/cgroup`. */
export interface CgroupEntry {
  /** Hierarchy ID; `0` is the cgroup v2 (unified) hierarchy. */
  hierarchy: number
  /** Controllers bound to the hierarchy (`memory`, `name=systemd`, ...); empty for v2. */
  controllers: string[]
  /**
   * Cgroup path relative to the reader's cgroup namespace root. It can start with
   * `/..` segments when the process's cgroup lies outside the reader's namespace.
   */
  path: string
}

/** The fields of one `/proc/<pid>/mountinfo` line that cgroup discovery needs. */
export interface MountEntry {
  /** Where it is mounted, in the mount namespace of the process whose table this is (unescaped). */
  mountPoint: string
  /** The path within the filesystem shown at the mount point; for cgroupfs, a cgroup path (unescaped). */
  root: string
  /** Filesystem type: `cgroup2`, `cgroup`, `tmpfs`, ... */
  fsType: string
  /** Per-superblock options; for v1 cgroupfs these name the controllers (`memory`). */
  superOptions: string[]
}

/** Values at or above this mean "no limit": v1 prints PAGE_COUNTER_MAX pages as 9223372036854771712. */
const UNLIMITED_FLOOR = 2 ** 62

const DECIMAL = /^\d+$/

/** The kernel's `(deleted)` marker on a v2 cgroup that was removed while the process still sat in it. */
const DELETED_SUFFIX = ' (deleted)'

/**
 * Parses `/proc/<pid>/cgroup`: lines `hierarchy-ID:controller-list:path`.
 * A v2 cgroup whose directory was removed gets ` (deleted)` appended by the kernel;
 * it is dropped so the path names the (now missing) directory.
 *
 * @returns one entry per non-blank line, in file order; `[]` for an empty file
 */
export function parseProcCgroup(text: string): CgroupEntry[] {
  const entries: CgroupEntry[] = []
  for (const line of text.split('\n')) {
    if (line === '') continue
    // Split on the first two colons only: a cgroup name may itself contain ':'.
    const first = line.indexOf(':')
    const second = line.indexOf(':', first + 1)
    if (first < 0 || second < 0) throw new CgroupParseError('/proc/<pid>/cgroup', line, 'expected id:controllers:path')
    const id = line.slice(0, first)
    let path = line.slice(second + 1)
    if (!DECIMAL.test(id)) throw new CgroupParseError('/proc/<pid>/cgroup', line, 'hierarchy ID is not a number')
    if (!path.startsWith('/')) throw new CgroupParseError('/proc/<pid>/cgroup', line, 'path is not absolute')
    if (path.endsWith(DELETED_SUFFIX)) path = path.slice(0, -DELETED_SUFFIX.length)
    const list = line.slice(first + 1, second)
    entries.push({ hierarchy: Number(id), controllers: list === '' ? [] : list.split(','), path })
  }
  return entries
}

/** Undoes the kernel's mangling of space, tab, newline and backslash as `\ooo` octal. */
function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)))
}

/**
 * Parses `/proc/<pid>/mountinfo`: `id parent major:minor root mountPoint options
 * [optional...] - fsType source superOptions`. Fields are split on single spaces, as
 * the kernel writes them, so an empty source does not shift the fields after it.
 *
 * @returns one entry per non-blank line, in file order (later mounts shadow earlier ones)
 */
export function parseMountinfo(text: string): MountEntry[] {
  const mounts: MountEntry[] = []
  for (const line of text.split('\n')) {
    if (line === '') continue
    const fields = line.split(' ')
    // The optional fields are variable in number; the lone '-' ends them.
    const sep = fields.indexOf('-', 6)
    if (sep < 0 || fields.length !== sep + 4) {
      throw new CgroupParseError('/proc/<pid>/mountinfo', line, "expected 6+ fields, '-', fstype, source, options")
    }
    // Indexes 3, 4, sep+1 and sep+3 exist: sep >= 6 and length is sep+4.
    mounts.push({
      root: unescapeOctal(fields[3] as string),
      mountPoint: unescapeOctal(fields[4] as string),
      fsType: fields[sep + 1] as string,
      superOptions: (fields[sep + 3] as string).split(','),
    })
  }
  return mounts
}

/**
 * Parses a memory limit file: v2 `memory.max`, v1 `memory.limit_in_bytes`.
 *
 * @param version - 2 accepts `max`; both treat values of 2^62 and above as no limit,
 *   since v1 prints "unlimited" as 9223372036854771712 and no real limit is that high
 * @returns the limit in bytes, or `undefined` when there is none
 */
export function parseLimit(text: string, version: 1 | 2): number | undefined {
  const file = version === 2 ? 'memory.max' : 'memory.limit_in_bytes'
  const value = text.trim()
  if (version === 2 && value === 'max') return undefined
  if (!DECIMAL.test(value)) throw new CgroupParseError(file, text)
  const bytes = Number(value)
  return bytes >= UNLIMITED_FLOOR ? undefined : bytes
}

/**
 * Parses a single byte count: v2 `memory.current`, v1 `memory.usage_in_bytes`.
 *
 * @param file - the kind of file, for the error message; default `memory usage`
 */
export function parseBytes(text: string, file = 'memory usage'): number {
  const value = text.trim()
  if (!DECIMAL.test(value)) throw new CgroupParseError(file, text)
  const bytes = Number(value)
  if (!Number.isSafeInteger(bytes)) throw new CgroupParseError(file, text, 'beyond 2^53')
  return bytes
}

/**
 * Parses `key value` lines: v2 `memory.events` and `memory.stat`, v1
 * `memory.oom_control` and `memory.stat`. Values above 2^53 (v1's unlimited
 * `hierarchical_memory_limit`) come back rounded; the keys oomwatch uses are counters.
 *
 * @param file - the kind of file, for the error message; default `cgroup counters`
 * @returns counters by key; on a repeated key the last line wins
 */
export function parseKeyedCounters(text: string, file = 'cgroup counters'): Record<string, number> {
  const counters: Record<string, number> = {}
  for (const line of text.split('\n')) {
    if (line === '') continue
    const m = /^(\S+) (\d+)$/.exec(line)
    if (m === null) throw new CgroupParseError(file, line, 'expected "key value"')
    counters[m[1] as string] = Number(m[2])
  }
  return counters
}

/**
 * `memory.pressure` (PSI): the `some` line's `total=`, microseconds during which at least one
 * task of the cgroup stalled on memory.
 *
 * @throws {@link CgroupParseError} when the `some` line is missing or malformed
 */
export function parsePressureTotal(text: string): number {
  const m = /^some avg10=\S+ avg60=\S+ avg300=\S+ total=(\d+)$/m.exec(text)
  if (m === null) throw new CgroupParseError('memory.pressure', text, 'expected "some avg10=... total=N"')
  return Number(m[1])
}
