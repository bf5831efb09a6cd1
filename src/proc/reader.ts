import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import type { ProcStat, ProcStatus } from '../types.js'
import { parseCmdline } from './cmdline.js'
import { nameFromEnviron } from './container-name.js'
import { isVanished, ProcReadError } from './errors.js'
import { parseLimits } from './limits.js'
import { parseStat } from './stat.js'
import { parseStatus } from './status.js'
import { parseUptime } from './uptime.js'
import type { RlimitTable } from '../protocol/values.js'

/**
 * Thin synchronous reader of a procfs tree. Synchronous on purpose: the agent polls
 * it in a hot loop, and for small /proc files the sync calls cost less than the
 * promise machinery around their async versions.
 *
 * Every per-pid method returns `undefined` when the process no longer exists, throws
 * {@link ProcReadError} for any other failure (`PROC_ACCESS` on EACCES/EPERM), and lets
 * a {@link ProcParseError} from the parsers propagate.
 */
export class ProcReader {
  /** @param root - the procfs mount to read; default `/proc`, a fixture tree in tests. */
  constructor(readonly root = '/proc') {}

  /**
   * The pids present under the root, ascending.
   *
   * @throws {ProcReadError} when the root cannot be listed: with no procfs there is
   *   nothing to watch, and an empty list would hide that.
   */
  listPids(): number[] {
    let names: string[]
    try {
      names = readdirSync(this.root)
    } catch (err) {
      throw new ProcReadError(this.root, err)
    }
    const pids: number[] = []
    for (const name of names) {
      if (/^\d+$/.test(name)) pids.push(Number(name))
    }
    // A typed array sorts numerically without a comparator: no JS call per comparison, twice a second.
    return Array.from(Int32Array.from(pids).sort())
  }

  /** Parsed `/proc/<pid>/stat`. */
  stat(pid: number): ProcStat | undefined {
    const text = this.text(pid, 'stat')
    return text === undefined ? undefined : parseStat(text)
  }

  /** Parsed `/proc/<pid>/status`. */
  status(pid: number): ProcStatus | undefined {
    const text = this.text(pid, 'status')
    return text === undefined ? undefined : parseStatus(text)
  }

  /** Parsed `/proc/<pid>/limits`. */
  limits(pid: number): RlimitTable | undefined {
    const text = this.text(pid, 'limits')
    return text === undefined ? undefined : parseLimits(text)
  }

  /** The arguments in `/proc/<pid>/cmdline`; `[]` for a kernel thread or zombie. */
  cmdline(pid: number): string[] | undefined {
    const path = this.path(pid, 'cmdline')
    const buf = this.attempt(path, () => readFileSync(path))
    return buf === undefined ? undefined : parseCmdline(buf)
  }

  /**
   * The container name `oomwatch inject` put in its environment (`/proc/<pid>/environ`, as the
   * process started). Reading it takes ptrace rights; without them, or on any other read error,
   * `undefined`: discovery would otherwise set the process aside for good.
   */
  injectedContainerName(pid: number): string | undefined {
    const path = this.path(pid, 'environ')
    try {
      const buf = this.attempt(path, () => readFileSync(path))
      return buf === undefined ? undefined : nameFromEnviron(buf)
    } catch (error) {
      // Whatever the errno (EACCES without ptrace rights, EIO mid-exec): a name is a label, never a reason to lose the process.
      if (error instanceof ProcReadError) return undefined
      throw error
    }
  }

  /**
   * The target of `/proc/<pid>/exe`, possibly ending in `" (deleted)"`; `undefined`
   * for a kernel thread (no executable) as for a vanished process.
   */
  exe(pid: number): string | undefined {
    const path = this.path(pid, 'exe')
    return this.attempt(path, () => readlinkSync(path))
  }

  /** Raw text of `/proc/<pid>/maps`. */
  maps(pid: number): string | undefined {
    return this.text(pid, 'maps')
  }

  /** Raw text of `/proc/<pid>/cgroup`. */
  cgroup(pid: number): string | undefined {
    return this.text(pid, 'cgroup')
  }

  /** Raw text of `/proc/<pid>/mountinfo`. */
  mountinfo(pid: number): string | undefined {
    return this.text(pid, 'mountinfo')
  }

  /**
   * Seconds since boot (`/proc/uptime`); `undefined` where the tree has none (a fixture) or
   * it does not parse.
   *
   * @throws {ProcReadError} when it exists but cannot be read
   */
  uptimeSeconds(): number | undefined {
    const path = `${this.root}/uptime`
    const text = this.attempt(path, () => readFileSync(path, 'utf8'))
    return text === undefined ? undefined : parseUptime(text)
  }

  /** The path of `file` under the pid's directory, e.g. `/proc/42/limits`. */
  path(pid: number, file: string): string {
    return `${this.root}/${pid}/${file}`
  }

  private text(pid: number, file: string): string | undefined {
    const path = this.path(pid, file)
    return this.attempt(path, () => readFileSync(path, 'utf8'))
  }

  /** Runs one fs call: a vanished process gives `undefined`, anything else throws. */
  private attempt<T>(path: string, read: () => T): T | undefined {
    try {
      return read()
    } catch (err) {
      if (isVanished(err)) return undefined
      throw new ProcReadError(path, err)
    }
  }
}
