/**
 * Errors raised by the /proc readers. Each carries a stable `code` so callers (and
 * tests) branch on the code, never on the message.
 */

/** The kind of /proc file a parser was given, named in {@link ProcParseError} messages. */
export type ProcFileKind = 'limits' | 'status' | 'stat' | 'loadavg'

/** A /proc file's text did not have the shape the kernel prints. */
export class ProcParseError extends Error {
  readonly code = 'PROC_PARSE'
  /** Which parser rejected the text. */
  readonly kind: ProcFileKind

  /**
   * @param kind - the file kind, e.g. `stat`
   * @param detail - what was wrong, e.g. `no ')' after the command name`
   */
  constructor(kind: ProcFileKind, detail: string) {
    super(`${kind}: ${detail}`)
    this.name = 'ProcParseError'
    this.kind = kind
  }
}

/** `PROC_ACCESS` when permission was refused (EACCES, EPERM), `PROC_READ` otherwise. */
export type ProcReadErrorCode = 'PROC_ACCESS' | 'PROC_READ'

// Reading another user's maps or exe fails with EACCES or EPERM depending on which
// check (file mode or ptrace access mode) refuses it; both mean "no permission".
const ACCESS_ERRNOS: ReadonlySet<string | undefined> = new Set(['EACCES', 'EPERM'])

/**
 * A /proc file could not be read for a reason other than its process having exited.
 * The original fs error is kept as `cause`.
 */
export class ProcReadError extends Error {
  readonly code: ProcReadErrorCode
  /** The path that failed. */
  readonly path: string
  /** The errno name of the cause (`EACCES`, `ENOTDIR`, ...), if it had one. */
  readonly errno: string | undefined

  /**
   * @param path - the file or directory that failed
   * @param cause - the error thrown by `fs`
   */
  constructor(path: string, cause: unknown) {
    const errno = errnoOf(cause)
    super(`cannot read ${path}: ${errno ?? String(cause)}`, { cause })
    this.name = 'ProcReadError'
    this.code = ACCESS_ERRNOS.has(errno) ? 'PROC_ACCESS' : 'PROC_READ'
    this.path = path
    this.errno = errno
  }
}

/**
 * The errno name (`ENOENT`, ...) of an error thrown by `fs`, or `undefined` when the
 * value is not a Node system error.
 */
export function errnoOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const code: unknown = (err as { code?: unknown }).code
  return typeof code === 'string' ? code : undefined
}

/*
 * ENOENT: the pid directory is gone (or, for exe, a kernel thread has none).
 * ESRCH: the process exited between open() and read(), or a kept descriptor's process is gone.
 * Both mean the process vanished, which a poller sees all the time.
 */
const VANISHED: ReadonlySet<string | undefined> = new Set(['ENOENT', 'ESRCH'])

/** True when an fs error means the process is gone rather than unreadable. */
export function isVanished(err: unknown): boolean {
  return VANISHED.has(errnoOf(err))
}
