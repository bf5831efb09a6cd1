/**
 * Where the stream reads the token it checks clients against: a fixed string, or a file (a
 * mounted Kubernetes Secret) that may change while the agent runs.
 */
import { statSync } from 'node:fs'
import type { Logger } from 'pino'
import { readTokenFile, tokenProblem } from '../config/token.js'

/** The token in force, read at each check: the one narrow thing the server knows of where it comes from. */
export interface TokenSource {
  /** The token a client must send now. */
  current(): string
}

/** A token that never changes (`--token`, `OOMWATCH_TOKEN`). */
export function fixedToken(token: string): TokenSource {
  return { current: () => token }
}

/** How to follow a token file. */
export interface TokenFileOptions {
  path: string
  /** Listening beyond loopback: a new token must be long enough ({@link tokenProblem}). */
  beyondLoopback: boolean
  logger: Logger
}

/**
 * The token of a file, re-read when the file changes. Kubernetes updates a Secret volume by
 * writing the new files into a fresh directory and renaming a `..data` symlink over the old
 * one; the path the agent was given resolves, through that link, to a new inode.
 *
 * Each {@link current} stats the path (following links) and re-reads the file only when its
 * device, inode, size, mtime or ctime changed. A stat per check rather than `fs.watch` on
 * the directory: checks happen only at a connection or an HTTP request, a stat of a tmpfs
 * file costs about a microsecond, the new token is in force at the very next check (no
 * watch event to wait for, no poll interval), and there is nothing to start or stop: no
 * inotify descriptor, no timer, no watch lost when the directory itself is replaced.
 *
 * A file that becomes unreadable, empty or holds a refused token keeps the last good token
 * in force: logged once, with the reason, until the file is good again (logged too).
 */
export class TokenFile implements TokenSource {
  readonly #options: TokenFileOptions
  #token: string
  /** The stat of the file the token was read from. */
  #goodKey: string
  /** The stat of a file that gave no usable token: not re-read until it changes. */
  #badKey: string | undefined
  #failing = false

  private constructor(options: TokenFileOptions, token: string, key: string) {
    this.#options = options
    this.#token = token
    this.#goodKey = key
  }

  /** Reads the file once; the reason, naming the fix, when it gives no usable token. */
  static open(options: TokenFileOptions): TokenFile | { reason: string } {
    // The stat before the read: a change between the two is seen (and read) at the next check.
    const key = statKey(options.path)
    const read = readUsable(options)
    if ('reason' in read) return read
    return new TokenFile(options, read.token, typeof key === 'string' ? key : '')
  }

  current(): string {
    const key = statKey(this.#options.path)
    if (typeof key !== 'string') {
      this.#fail(key.reason)
    } else if (key === this.#goodKey) {
      this.#recover(false)
    } else if (key !== this.#badKey) {
      const read = readUsable(this.#options)
      if ('reason' in read) {
        this.#badKey = key
        this.#fail(read.reason)
      } else {
        const changed = read.token !== this.#token
        this.#token = read.token
        this.#goodKey = key
        this.#badKey = undefined
        this.#recover(changed)
      }
    }
    return this.#token
  }

  #fail(reason: string): void {
    if (this.#failing) return
    this.#failing = true
    this.#options.logger.warn(
      { file: this.#options.path, reason },
      'the token file gives no usable token now; the last good token stays in force',
    )
  }

  #recover(changed: boolean): void {
    if (!changed && !this.#failing) return
    this.#failing = false
    const message = changed ? 'a new token was read from the token file' : 'the token file is usable again; its token is unchanged'
    this.#options.logger.info({ file: this.#options.path }, message)
  }
}

/** The token of the file, when the file gives one and the token is allowed. */
function readUsable({ path, beyondLoopback }: TokenFileOptions): { token: string } | { reason: string } {
  const read = readTokenFile(path)
  if ('reason' in read) return read
  const refused = tokenProblem(read.token, beyondLoopback)
  return refused === undefined ? read : { reason: `its token is refused: ${refused}` }
}

/** What identifies one version of the file, or why it cannot be stat'ed. */
function statKey(path: string): string | { reason: string } {
  try {
    const s = statSync(path, { bigint: true })
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`
  } catch (error) {
    return { reason: `it cannot be read (${error instanceof Error && 'code' in error ? String(error.code) : String(error)})` }
  }
}
