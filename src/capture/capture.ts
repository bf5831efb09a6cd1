import { classifyFailure, DumpParseError, INSTALL_REMEDY, parseDump } from './pyspy-output.js'
import { runPyspy } from './pyspy-run.js'
import { pickCulprit } from './stack.js'
import type { CaptureError, Culprit, PyThread } from '../protocol/values.js'

/** The stack part of an incident: threads and culprit, or the error and its remedy. */
export interface StackCapture {
  threads: PyThread[]
  culprit?: Culprit
  error?: CaptureError
  /** py-spy's own run time, ms. */
  pyspyMs: number
}

/** How to run py-spy; `bin` undefined when it was not found at start. */
export interface CaptureOptions {
  bin: string | undefined
  timeoutMs: number
  /** Called with py-spy's pid as soon as it runs, so the agent leaves it out of its scans. */
  onSpawn?: (pid: number) => void
  /** Aborted when the agent stops: py-spy is killed at once. */
  signal?: AbortSignal
}

/** Dumps every thread's Python stack of `pid` once. Never rejects. */
export async function captureStack(pid: number, options: CaptureOptions): Promise<StackCapture> {
  const bin = options.bin
  if (bin === undefined) {
    return {
      threads: [],
      pyspyMs: 0,
      error: { code: 'PYSPY_MISSING', message: 'py-spy was not found when oomwatch started', remedy: INSTALL_REMEDY },
    }
  }
  const { timeoutMs, onSpawn, signal } = options
  const result = await runPyspy({ bin, args: ['dump', '--json', '--pid', String(pid)], timeoutMs, onSpawn, signal })
  const pyspyMs = Math.round(result.durationMs * 10) / 10
  if (result.exitCode !== 0 || result.timedOut || result.spawnError) {
    return { threads: [], pyspyMs, error: classifyFailure(result, bin, options.timeoutMs) }
  }
  try {
    const threads = parseDump(result.stdout)
    const culprit = pickCulprit(threads)
    return { threads, pyspyMs, ...(culprit && { culprit }) }
  } catch (error) {
    /* c8 ignore next */ if (!(error instanceof DumpParseError)) throw error // only parse errors are expected here
    return {
      threads: [],
      pyspyMs,
      error: { code: 'PYSPY_BAD_OUTPUT', message: error.message, remedy: 'check that OOMWATCH_PYSPY is py-spy 0.4 or later' },
    }
  }
}
