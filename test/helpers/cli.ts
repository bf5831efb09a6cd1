import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** The CLI source, run with this test's TypeScript loader (and coverage) through execArgv. */
const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url))

export interface CliRun {
  child: ChildProcess
  /** Resolves when the process ends, with everything it printed. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>
  /** Resolves with the first stdout JSON line that matches. */
  line(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>
}

/** Runs `oomwatch args...` as a real child process with `env` added to this one's. */
export function runCli(args: string[], env: Record<string, string> = {}): CliRun {
  const child = spawn(process.execPath, [...process.execArgv, CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  const waiters: (() => void)[] = []
  child.stdout!.on('data', chunk => {
    stdout += chunk
    for (const wake of waiters) wake()
  })
  child.stderr!.on('data', chunk => (stderr += chunk))
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(resolve =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  )
  const line = (match: (line: Record<string, unknown>) => boolean) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        for (const text of stdout.split('\n')) {
          if (!text.startsWith('{')) continue
          const parsed = JSON.parse(text) as Record<string, unknown>
          if (match(parsed)) return resolve(parsed)
        }
      }
      waiters.push(check)
      check()
      void done.then(() => reject(new Error(`exited without a matching line; stdout: ${stdout}; stderr: ${stderr}`)))
    })
  return { child, done, line }
}
