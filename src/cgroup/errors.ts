/**
 * Errors raised by the cgroup readers. Each carries a stable `code` that callers and
 * tests match on; messages are for people and may change.
 */

/** Longest piece of offending text quoted in a message: enough to recognise it, short enough for a log line. */
const QUOTE_MAX = 80

/** Quotes `text` for a message, cut to {@link QUOTE_MAX} characters. */
export function quote(text: string): string {
  const cut = text.length > QUOTE_MAX ? `${text.slice(0, QUOTE_MAX)}…` : text
  return JSON.stringify(cut)
}

/** A cgroup or procfs file held text that does not have the kernel's format. */
export class CgroupParseError extends Error {
  /** Always `CGROUP_PARSE`. */
  readonly code = 'CGROUP_PARSE'
  /** What kind of file it was, e.g. `memory.max` or `/proc/<pid>/mountinfo`. */
  readonly file: string
  /** The offending text, untruncated. */
  readonly text: string

  /**
   * @param file - the kind of file, named in the message
   * @param text - the bad line or value (quoted, truncated to ~80 characters)
   * @param why - what is wrong with it, when that is not obvious
   */
  constructor(file: string, text: string, why?: string) {
    super(`cannot parse ${file}: ${quote(text)}${why === undefined ? '' : ` (${why})`}`)
    this.name = 'CgroupParseError'
    this.file = file
    this.text = text
  }
}

/** Reading a cgroup or procfs file failed; the system error is in `cause`. */
export class CgroupReadError extends Error {
  /** Always `CGROUP_READ`. */
  readonly code = 'CGROUP_READ'
  /** The file that could not be read (or opened). */
  readonly path: string

  /**
   * @param path - the file that failed
   * @param cause - the underlying error (its `code`, e.g. `ENODEV`, is in the message)
   */
  constructor(path: string, cause: unknown) {
    const sys = (cause as NodeJS.ErrnoException | undefined)?.code
    super(`cannot read ${path}${sys === undefined ? '' : `: ${sys}`}`, { cause })
    this.name = 'CgroupReadError'
    this.path = path
  }
}

/** A counter was read after its handle was closed: a lifecycle bug in the caller. */
export class CgroupClosedError extends Error {
  /** Always `CGROUP_CLOSED`. */
  readonly code = 'CGROUP_CLOSED'

  /** @param dir - the cgroup directory whose counters were closed */
  constructor(dir: string) {
    super(`cgroup counters for ${dir} are closed`)
    this.name = 'CgroupClosedError'
  }
}
