/**
 * A process's short name from its command line. Pure and free of Node APIs: the server's
 * text mode, the metrics and the live page (in the browser) all name processes with it.
 */

/** Interpreter names: their script or module names the program better than they do. */
const INTERPRETER = /^(?:python[\d.]*|pypy[\d.]*)$/
/** Options of the interpreter that take the next argument as their value. */
const WITH_VALUE = new Set(['-W', '-X', '-Q'])
/** A label value kept short: one process's name, not its arguments. */
const MAX_LENGTH = 64

/**
 * A short, stable name for a command line, as a metric label and a page title use it:
 * the script's base name for `python3 /app/worker.py --x`, the module for
 * `python -m celery worker`, else the executable's base name (`gunicorn`, `uwsgi`).
 * At most 64 characters; `unknown` for an empty command line.
 */
export function commandName(cmdline: readonly string[]): string {
  const [argv0 = '', ...rest] = cmdline
  const exe = baseName(argv0)
  if (!INTERPRETER.test(exe)) return cap(exe)
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!
    if (arg === '-m') return cap(rest[i + 1] ?? exe)
    if (arg === '-c') return cap(`${exe} -c`)
    if (WITH_VALUE.has(arg)) {
      i++
      continue
    }
    if (arg.startsWith('-')) continue
    return cap(baseName(arg))
  }
  return cap(exe)
}

/** The last segment of a POSIX path, as node:path's `basename` gives it (trailing slashes dropped). */
export function baseName(path: string): string {
  const trimmed = path.replace(/\/+$/, '')
  return trimmed.slice(trimmed.lastIndexOf('/') + 1)
}

function cap(name: string): string {
  return name === '' ? 'unknown' : name.slice(0, MAX_LENGTH)
}
