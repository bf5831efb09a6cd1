/**
 * What a usable token is, and how one is read from a file (a mounted Kubernetes Secret).
 * Shared by the configuration, which refuses a bad token at start, and by the stream's
 * token file, which refuses a bad one when the Secret changes and keeps the last good one.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs'

/** Beyond loopback, a token shorter than this is refused. */
export const MIN_TOKEN_LENGTH = 16

/** The placeholder of sidecar.yaml's Secret starts with this; no token may. */
export const PLACEHOLDER_PREFIX = 'REPLACE-ME'

/** A way to make a token the page can send too (a subprotocol allows no `+`, `/` or `=`). */
export const MAKE_TOKEN = "head -c 24 /dev/urandom | base64 | tr '+/' '-_'"

/**
 * Placeholders shipped in earlier sidecar.yaml files: public, so a cluster that kept one has
 * a token anyone can read on GitHub.
 */
const FORMER_PLACEHOLDERS = new Set(['change-me-to-a-long-random-string'])

/** A token file larger than this is not a token (and a path such as /dev/zero is not read to the end). */
const MAX_TOKEN_FILE_BYTES = 4096

/**
 * Why `token` cannot be used, or undefined when it can: never a placeholder of sidecar.yaml,
 * and at least {@link MIN_TOKEN_LENGTH} characters when `beyondLoopback` (anyone who reaches
 * the port can then guess at it). The message never shows the token.
 */
export function tokenProblem(token: string, beyondLoopback: boolean): string | undefined {
  if (token.toUpperCase().startsWith(PLACEHOLDER_PREFIX) || FORMER_PLACEHOLDERS.has(token)) {
    return "this is the placeholder of sidecar.yaml's Secret, not a token: put a random one in the Secret " + `(e.g. ${MAKE_TOKEN})`
  }
  if (beyondLoopback && token.length < MIN_TOKEN_LENGTH) {
    return (
      `a token must be at least ${MIN_TOKEN_LENGTH} characters when listening beyond loopback ` +
      `(this one has ${token.length}); make one with: ${MAKE_TOKEN}`
    )
  }
  return undefined
}

/**
 * Reads a token file: its content without trailing line breaks (`echo token > file` adds
 * one). Only a regular file (after symlinks, which is how a Secret volume is laid out) of at
 * most 4 KiB is read; a FIFO would block and a device never end.
 *
 * @returns the token, or why the file gives none, naming the fix
 */
export function readTokenFile(path: string): { token: string } | { reason: string } {
  let fd: number | undefined
  try {
    const stats = statSync(path)
    if (stats.isDirectory()) return { reason: 'it is a directory: name the file inside it that holds the token (the key of the Secret)' }
    if (!stats.isFile()) return { reason: 'it is not a regular file: name the file that holds the token' }
    fd = openSync(path, 'r')
    const buffer = Buffer.alloc(MAX_TOKEN_FILE_BYTES + 1)
    let size = 0
    for (;;) {
      const n = readSync(fd, buffer, size, buffer.length - size, null)
      size += n
      if (n === 0 || size === buffer.length) break
    }
    if (size > MAX_TOKEN_FILE_BYTES) return { reason: `it holds more than ${MAX_TOKEN_FILE_BYTES} bytes: not a token file` }
    const token = buffer.toString('utf8', 0, size).replace(/[\r\n]+$/, '')
    if (token === '') return { reason: `it is empty: write the token into it (e.g. ${MAKE_TOKEN} > FILE)` }
    return { token }
  } catch (error) {
    return { reason: cannotRead(error) }
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

function cannotRead(error: unknown): string {
  const code = error instanceof Error && 'code' in error ? String(error.code) : String(error)
  if (code === 'ENOENT') return 'it does not exist: mount the Secret there (a volume of type secret) or point the setting at the token file'
  if (code === 'EACCES') return "the agent's user cannot read it: make it readable (the Secret volume's defaultMode, e.g. 0400)"
  return `it cannot be read (${code})`
}
