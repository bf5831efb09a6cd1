import type { CaptureError, PyThread } from '../protocol/values.js'

/** Thrown by parseDump when py-spy's JSON is not what py-spy 0.4 prints. */
export class DumpParseError extends Error {
  readonly code = 'PYSPY_BAD_OUTPUT'
}

/** Parses `py-spy dump --json` output into threads, innermost frame first. */
export function parseDump(stdout: string): PyThread[] {
  let data: unknown
  try {
    data = JSON.parse(stdout)
  } catch (cause) {
    throw new DumpParseError(`py-spy printed no JSON: ${JSON.stringify(stdout.slice(0, 80))}`, { cause })
  }
  if (!Array.isArray(data)) throw new DumpParseError(`py-spy JSON is not a list of threads: ${typeof data}`)
  return data.map((raw, index) => parseThread(raw, index))
}

function parseThread(raw: unknown, index: number): PyThread {
  if (!isRecord(raw) || !Array.isArray(raw.frames) || typeof raw.thread_id !== 'number') {
    throw new DumpParseError(`py-spy thread ${index} has no thread_id or frames`)
  }
  const frames = raw.frames.map((frame: unknown, at: number) => {
    if (!isRecord(frame) || typeof frame.name !== 'string' || typeof frame.filename !== 'string' || typeof frame.line !== 'number') {
      throw new DumpParseError(`py-spy thread ${index} frame ${at} lacks name, filename or line`)
    }
    return { function: frame.name, file: frame.filename, line: frame.line }
  })
  return {
    id: raw.thread_id,
    ...(typeof raw.os_thread_id === 'number' && { osThreadId: raw.os_thread_id }),
    ...(typeof raw.thread_name === 'string' && { name: raw.thread_name }),
    active: raw.active === true,
    ownsGil: raw.owns_gil === true,
    frames,
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null
}

export const INSTALL_REMEDY =
  'install it in the project (python3 -m venv .venv && .venv/bin/pip install py-spy) or set OOMWATCH_PYSPY to its path'

/** What a finished py-spy run looked like, for classifying its failure. */
export interface RunOutcome {
  exitCode: number | null
  stderr: string
  timedOut: boolean
  /** The spawn itself failed (ENOENT, EACCES). */
  spawnError?: NodeJS.ErrnoException
}

/** Names a failed py-spy run: a stable code, py-spy's own words, and the remedy. */
export function classifyFailure(outcome: RunOutcome, bin: string, timeoutMs: number): CaptureError {
  if (outcome.spawnError) {
    return {
      code: 'PYSPY_MISSING',
      message: `cannot run py-spy at ${bin}: ${outcome.spawnError.code ?? outcome.spawnError.message}`,
      remedy: INSTALL_REMEDY,
    }
  }
  if (outcome.timedOut) {
    return {
      code: 'PYSPY_TIMEOUT',
      message: `py-spy did not finish within ${timeoutMs} ms and was killed`,
      remedy: 'raise OOMWATCH_PYSPY_TIMEOUT_MS; a process that is stopped, or a node that is swapping, can stall py-spy',
    }
  }
  const message = pyspyMessage(outcome.stderr) || `py-spy exited with code ${outcome.exitCode}`
  if (/permission denied|operation not permitted/i.test(message)) {
    return {
      code: 'PTRACE_DENIED',
      message,
      remedy:
        'py-spy needs CAP_SYS_PTRACE over the target: run oomwatch as UID 0 with securityContext.capabilities.add ' +
        '[SYS_PTRACE] in a pod with shareProcessNamespace: true (see sidecar.yaml)',
    }
  }
  if (/no such file or directory|no such process|check that the process is running/i.test(message)) {
    return {
      code: 'TARGET_EXITED',
      message,
      remedy:
        'the process was gone before py-spy attached: capture earlier with a lower OOMWATCH_TRIGGER_FRACTION or a higher OOMWATCH_TRIGGER_SECONDS',
    }
  }
  if (/python version|python interpreter|not a python/i.test(message)) {
    return {
      code: 'NOT_PYTHON',
      message,
      remedy:
        'py-spy found no Python interpreter it supports in this process (CPython 2.7 and 3.x are supported); use OOMWATCH_MATCH to leave it out',
    }
  }
  return { code: 'PYSPY_FAILED', message, remedy: 'run the same py-spy dump by hand to see the whole error; report it if it persists' }
}

/** py-spy's error in one line: its `Error:` and `Caused by` text, without the backtrace. */
function pyspyMessage(stderr: string): string {
  const lines: string[] = []
  for (const raw of stderr.split('\n')) {
    const line = raw.trim()
    if (line.startsWith('Stack backtrace')) break
    if (line === '' || line === 'Caused by:') continue
    lines.push(line.replace(/^\d+: /, ''))
  }
  return lines.join('; ')
}
