import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { INSTALL_REMEDY as REMEDY } from './pyspy-output.js'
import { runPyspy } from './pyspy-run.js'
import { runChild } from '../exec/run-child.js'
import type { PyspyInfo } from '../protocol/values.js'

/** The project's own install (`.venv/bin/py-spy` beside package.json), from src/ or dist/. */
export const PROJECT_PYSPY = fileURLToPath(new URL('../../.venv/bin/py-spy', import.meta.url))

/**
 * Finds py-spy: the configured path, else the project's own install, else PATH. A pyenv
 * shim on PATH is resolved to the real binary once here, because each call through the
 * shim costs ~300 ms, which the race against the OOM killer cannot spare.
 */
export async function locatePyspy(configured: string | undefined, pathEnv = process.env.PATH ?? ''): Promise<PyspyInfo> {
  const candidates: [string, 'config' | 'project' | 'path'][] = configured
    ? [[configured, 'config']]
    : [
        [PROJECT_PYSPY, 'project'],
        ...pathEnv
          .split(delimiter)
          .filter(Boolean)
          .map(dir => [join(dir, 'py-spy'), 'path'] as [string, 'path']),
      ]
  for (const [candidate, source] of candidates) {
    if (!isExecutable(candidate)) continue
    const path = candidate.includes('/.pyenv/shims/') ? await resolveShim(candidate) : candidate
    const result = await runPyspy({ bin: path, args: ['--version'], timeoutMs: 5000 })
    const version = /py-spy (\S+)/.exec(result.stdout)?.[1]
    if (result.exitCode === 0 && version) return { path, version, source }
    if (source === 'config') {
      return {
        error: `OOMWATCH_PYSPY=${configured} did not run as py-spy (exit ${result.exitCode}: ${result.stderr.trim().slice(0, 120)})`,
        remedy: REMEDY,
      }
    }
  }
  const where = configured ? `OOMWATCH_PYSPY=${configured} is not an executable file` : `py-spy is neither at ${PROJECT_PYSPY} nor on PATH`
  return { error: where, remedy: REMEDY }
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** `pyenv which py-spy` names the binary behind the shim; the shim itself if that fails. */
async function resolveShim(shim: string): Promise<string> {
  const result = await runChild({ bin: 'pyenv', args: ['which', 'py-spy'], timeoutMs: 5000 })
  const real = result.stdout.trim()
  return result.exitCode === 0 && real ? real : shim
}
