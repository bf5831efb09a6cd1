import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { IN_GUEST } from './guest.js'

/** The CLI source, run with this test's TypeScript loader (and coverage) through execArgv. */
const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url))
/** The built CLI (npm test builds it first), for measuring the agent as it ships: no loader, no coverage. */
export const BUILT_CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))

/** The node flags of the built CLI's `#!/usr/bin/env -S node ...` line, which the image runs it with. */
export function shippedNodeFlags(): string[] {
  const first = readFileSync(BUILT_CLI, 'utf8').split('\n', 1)[0]!
  return /^#!\/usr\/bin\/env -S node\b/.test(first) ? first.split(/\s+/).slice(3) : []
}

export interface CliRun {
  child: ChildProcess
  /** Resolves when the process ends, with everything it printed. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>
  /** Resolves with the first stdout JSON line that matches. */
  line(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>
}

/**
 * Runs `oomwatch args...` as a real child process with `env` added to this one's; `built` runs
 * dist/. Default: src/ through the loader, but dist/ in the v2 guest, where the loader's compile
 * of src/ takes some 40 s of emulated CPU per start (and coverage is off there).
 */
export function runCli(args: string[], env: Record<string, string> = {}, options: { built?: boolean; prefix?: string[] } = {}): CliRun {
  options = { ...options, built: options.built ?? IN_GUEST }
  // Built: with the V8 flags of its shebang, as the image runs it (by this test's node).
  const argv = options.built ? [...shippedNodeFlags(), BUILT_CLI, ...args] : [...process.execArgv, CLI, ...args]
  const childEnv = { ...process.env, ...env }
  // The built agent is measured as it ships: without the test's loader or coverage hooks.
  if (options.built) for (const name of ['NODE_OPTIONS', 'NODE_V8_COVERAGE']) delete childEnv[name]
  // prefix: a wrapper such as setpriv that drops capabilities before node starts. And always
  // --pdeathsig: an agent outliving a test that timed out would act on later tests' processes.
  const [command, ...rest] = ['setpriv', '--pdeathsig', 'SIGKILL', '--', ...(options.prefix ?? []), process.execPath, ...argv]
  const child = spawn(command, rest, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  const waiters: (() => void)[] = []
  child.stdout.on('data', chunk => {
    stdout += chunk
    for (const wake of [...waiters]) wake()
  })
  child.stderr.on('data', chunk => (stderr += chunk))
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(resolve =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  )
  const line = (match: (line: Record<string, unknown>) => boolean) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      // Scan each complete line once: an agent under load prints megabytes.
      let scanned = 0
      let found = false
      const check = () => {
        while (!found) {
          const end = stdout.indexOf('\n', scanned)
          if (end < 0) return
          const text = stdout.slice(scanned, end)
          scanned = end + 1
          if (!text.startsWith('{')) continue
          const parsed = JSON.parse(text) as Record<string, unknown>
          if (match(parsed)) {
            found = true
            waiters.splice(waiters.indexOf(check), 1)
            resolve(parsed)
          }
        }
      }
      waiters.push(check)
      check()
      void done.then(
        () => found || reject(new Error(`exited without a matching line; stdout: ${stdout.slice(0, 2000)}; stderr: ${stderr}`)),
      )
    })
  return { child, done, line }
}
