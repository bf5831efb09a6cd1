import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'

/** Writes an executable `#!/bin/sh` script `name` in `dir`; returns its path. */
export function script(dir: string, name: string, body: string): string {
  const path = join(dir, name)
  writeFileSync(path, `#!/bin/sh\n${body}\n`)
  chmodSync(path, 0o755)
  return path
}

/**
 * Kills the pid that a script writes to `pidfile`, at teardown. The file is read as soon
 * as it holds a pid, because t.testdir() may be removed before this teardown runs.
 */
export function killFromPidfile(t: Test, pidfile: string): void {
  let pid = 0
  const poll = setInterval(() => {
    if (existsSync(pidfile)) pid = Number(readFileSync(pidfile, 'utf8')) || 0
    if (pid > 0) clearInterval(poll)
  }, 5)
  t.teardown(() => {
    clearInterval(poll)
    if (pid === 0 && existsSync(pidfile)) pid = Number(readFileSync(pidfile, 'utf8')) || 0
    try {
      if (pid > 0) process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  })
}
