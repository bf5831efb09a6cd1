import { chmodSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Writes an executable that answers `--version` like py-spy 0.4.2 and does `dumpScript`
 * (shell) for `dump --json --pid N` ($4 is the pid). For injecting py-spy's failures.
 */
export function fakePyspy(dir: string, name: string, dumpScript: string): string {
  const path = join(dir, name)
  writeFileSync(path, `#!/bin/sh\nif [ "$1" = "--version" ]; then echo "py-spy 0.4.2"; exit 0; fi\n${dumpScript}\n`)
  chmodSync(path, 0o755)
  return path
}
