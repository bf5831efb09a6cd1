import { spawn } from 'node:child_process'
import type { RunOutcome } from './pyspy-output.js'

/** What one py-spy run printed, and how long it took. */
export interface RunResult extends RunOutcome {
  stdout: string
  durationMs: number
}

/** Output beyond this is cut: a dump of thousands of threads is still a few MB. */
const MAX_OUTPUT = 16 << 20
/** Time between SIGTERM and SIGKILL for a py-spy that does not stop. */
const KILL_GRACE_MS = 500

/**
 * Runs `bin args...` once, killing it at `timeoutMs` (SIGTERM, then SIGKILL after a
 * grace period). Never rejects: every failure is in the result, so the incident goes
 * out whatever happens. `onSpawn` reports the child's pid, so the agent never watches it;
 * `signal` (the agent stopping) kills it at once.
 */
export function runOnce(bin: string, args: string[], timeoutMs: number, onSpawn?: (pid: number) => void, signal?: AbortSignal): Promise<RunResult> {
  const started = performance.now()
  return new Promise(resolve => {
    // RUST_BACKTRACE=0: py-spy's errors are one line, not a Rust backtrace.
    // detached: its own process group, so a timeout also kills what it started (a wrapper
    // script's children hold the output pipes, and 'close' would wait for them forever).
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_BACKTRACE: '0' }, detached: true })
    const out: Buffer[] = []
    const err: Buffer[] = []
    let size = 0
    let timedOut = false
    let spawnError: NodeJS.ErrnoException | undefined
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      if (size + chunk.length > MAX_OUTPUT) return
      size += chunk.length
      into.push(chunk)
    }
    child.stdout.on('data', collect(out))
    child.stderr.on('data', collect(err))
    if (child.pid !== undefined) onSpawn?.(child.pid)
    let killTimer: NodeJS.Timeout | undefined
    const kill = (signal: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, signal)
      } catch {
        // ESRCH: every process of the group is gone already; only 'close' is pending
      }
    }
    const killNow = () => {
      kill('SIGKILL')
      // A descendant that left the group may still hold the pipes: stop waiting for them.
      child.stdout.destroy()
      child.stderr.destroy()
    }
    const timer = setTimeout(() => {
      timedOut = true
      kill('SIGTERM')
      killTimer = setTimeout(killNow, KILL_GRACE_MS)
    }, timeoutMs)
    if (signal?.aborted) killNow()
    signal?.addEventListener('abort', killNow, { once: true })
    child.on('error', error => {
      spawnError = error
    })
    child.on('close', exitCode => {
      clearTimeout(timer)
      clearTimeout(killTimer)
      signal?.removeEventListener('abort', killNow)
      resolve({
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        exitCode,
        timedOut,
        ...(spawnError && { spawnError }),
        durationMs: performance.now() - started,
      })
    })
  })
}
