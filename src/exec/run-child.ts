import { spawn, type ChildProcess } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { childEnvironment } from './child-env.js'
import { escalateKill } from './escalate.js'

/** How to run one child. Defaults: no args, 16 MiB of output, 500 ms from SIGTERM to SIGKILL. */
export interface RunChildOptions {
  bin: string
  args?: readonly string[]
  /** Past this, the child's process group gets SIGTERM, then SIGKILL after `killGraceMs`. */
  timeoutMs: number
  /** Aborting (the agent stopping) kills the child's process group at once with SIGKILL. */
  signal?: AbortSignal
  /** Called with the child's pid as soon as it runs (the agent leaves its own children out of its scans). */
  onSpawn?: (pid: number) => void
  /** Added to the agent's environment, which the child gets without any `OOMWATCH_*` variable (the token among them). */
  env?: Readonly<Record<string, string>>
  /** stdout and stderr together are cut beyond this many bytes. Default 16 MiB. */
  maxOutputBytes?: number
  /** From SIGTERM to SIGKILL at a timeout, ms. Default 500. */
  killGraceMs?: number
}

/** How a child ended. Every failure is in here: {@link runChild} never rejects. */
export interface ChildOutcome {
  stdout: string
  stderr: string
  /** Null when a signal ended it, or when it never ran. */
  exitCode: number | null
  /** The signal that ended it; null when it exited. */
  exitSignal: NodeJS.Signals | null
  /** It ran past `timeoutMs` and was killed. */
  timedOut: boolean
  /** `signal` aborted while it ran, and it was killed. */
  aborted: boolean
  /** The spawn itself failed (ENOENT, EACCES). */
  spawnError?: NodeJS.ErrnoException
  /** From the spawn to the end of its output, ms. */
  durationMs: number
}

/** Output beyond this is cut: a dump of thousands of threads is still a few MB. */
const MAX_OUTPUT = 16 << 20
/** Time between SIGTERM and SIGKILL for a child that does not stop. */
const KILL_GRACE_MS = 500

/**
 * Runs `bin args...` once and waits for its end and its output (the child is reaped: its
 * `close` has come). The child leads a process group of its own (`detached`), so a kill
 * reaches what it started too: a wrapper script's children hold the output pipes, and
 * `close` would wait for them forever. A SIGKILL also stops reading the pipes, for a
 * descendant that left the group. Every listener and timer is gone when this resolves.
 */
export function runChild(options: RunChildOptions): Promise<ChildOutcome> {
  const { bin, args = [], timeoutMs, signal, onSpawn, env, maxOutputBytes = MAX_OUTPUT, killGraceMs = KILL_GRACE_MS } = options
  const started = performance.now()
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnvironment(env), detached: true })
  const output = collectOutput(child, maxOutputBytes)
  if (child.pid !== undefined) onSpawn?.(child.pid)
  // Aborted at `close`: ends the timeout and the grace, whichever is running.
  const closed = new AbortController()
  let timedOut = false
  let aborted = false
  let spawnError: NodeJS.ErrnoException | undefined
  const killGroup = (sig: NodeJS.Signals): boolean => {
    if (child.pid === undefined) return false
    try {
      process.kill(-child.pid, sig)
    } catch {
      // ESRCH: every process of the group is gone already; only `close` is pending
    }
    if (sig === 'SIGKILL') output.stop()
    // Only `close` tells that the group's output is done: until then there is something to escalate.
    return true
  }
  const onAbort = () => {
    aborted = true
    killGroup('SIGKILL')
  }
  const timeout = async () => {
    try {
      await sleep(timeoutMs, undefined, { signal: closed.signal })
    } catch {
      return // closed in time
    }
    timedOut = true
    await escalateKill({ kill: killGroup, gone: closed.signal }, killGraceMs)
  }
  void timeout()
  if (signal?.aborted) onAbort()
  else signal?.addEventListener('abort', onAbort, { once: true })
  const onError = (error: NodeJS.ErrnoException) => {
    spawnError = error
  }
  child.on('error', onError)
  return new Promise(resolve => {
    child.once('close', (exitCode: number | null, exitSignal: NodeJS.Signals | null) => {
      closed.abort()
      signal?.removeEventListener('abort', onAbort)
      child.off('error', onError)
      const { stdout, stderr } = output.stop()
      const durationMs = performance.now() - started
      resolve({ stdout, stderr, exitCode, exitSignal, timedOut, aborted, ...(spawnError && { spawnError }), durationMs })
    })
  })
}

/** Keeps stdout and stderr up to `max` bytes together; `stop` stops reading and hands back what was kept. */
function collectOutput(child: ChildProcess, max: number): { stop: () => { stdout: string; stderr: string } } {
  const out: Buffer[] = []
  const err: Buffer[] = []
  let size = 0
  const collect = (into: Buffer[]) => (chunk: Buffer) => {
    if (size + chunk.length > max) return
    size += chunk.length
    into.push(chunk)
  }
  const onOut = collect(out)
  const onErr = collect(err)
  child.stdout?.on('data', onOut)
  child.stderr?.on('data', onErr)
  return {
    stop: () => {
      child.stdout?.off('data', onOut).destroy()
      child.stderr?.off('data', onErr).destroy()
      return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }
    },
  }
}
