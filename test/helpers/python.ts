import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/**
 * The real interpreter behind `python3` (not a pyenv shim: the shim is a bash script
 * that execs it, which would make the tests' pids change identity mid-test).
 */
export const PYTHON = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim()

/** The seed-shaped leaking daemon. */
export const LEAKY_DAEMON = fileURLToPath(new URL('../fixtures/python/leaky_daemon.py', import.meta.url))
