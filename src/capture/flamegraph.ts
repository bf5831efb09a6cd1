import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { classifyFailure } from './pyspy-output.js'
import { runPyspy } from './pyspy-run.js'
import type { FlamegraphPayload, IncidentPayload } from '../protocol/events.js'
import type { FlamegraphError } from '../protocol/values.js'

/** Incident ids as the watcher makes them (`<pid>-<8 hex>`), and nothing that could leave the directory. */
const INCIDENT_ID = /^[A-Za-z0-9_-]{1,64}$/
/** A flame graph shows the app's code: its owner's alone, whatever the umask (py-spy writes with its own). */
const DIR_MODE = 0o700
const FILE_MODE = 0o600
/** py-spy record writes its SVG after the duration; this much more before it is killed. */
const WRITE_GRACE_MS = 10_000

/** The path at which the agent serves an incident's flame graph. */
export function flamegraphUrl(incidentId: string): string {
  return `/incidents/${incidentId}/flamegraph.svg`
}

/**
 * Where the SVGs go: `<journal dir>/flamegraphs`, else a temporary directory of the
 * agent's own, removed by {@link FlamegraphStore.remove}; the directory 0700, each SVG 0600. Made at the first recording,
 * not at start: an agent with a read-only root and no journal writes nothing until an
 * incident asks for a flame graph (which then reports that it has nowhere to go).
 */
export class FlamegraphStore {
  readonly #journalDir: string | undefined
  #dir: string | undefined
  #temporary = false

  constructor(journalDir: string | undefined) {
    this.#journalDir = journalDir
  }

  /** The directory, made if needed; throws the file system's error when it cannot be. */
  dir(): string {
    if (this.#dir !== undefined) return this.#dir
    if (this.#journalDir !== undefined) {
      const dir = join(this.#journalDir, 'flamegraphs')
      mkdirSync(dir, { recursive: true, mode: DIR_MODE })
      // mkdir's mode goes through the umask, and an existing directory keeps its own.
      chmodSync(dir, DIR_MODE)
      return (this.#dir = dir)
    }
    this.#dir = mkdtempSync(join(tmpdir(), 'oomwatch-flamegraphs-'))
    this.#temporary = true
    return this.#dir
  }

  /** The SVG of an incident, when one was recorded and is still kept. */
  file(incidentId: string): string | undefined {
    const dir = this.#dir ?? (this.#journalDir === undefined ? undefined : join(this.#journalDir, 'flamegraphs'))
    if (dir === undefined || !INCIDENT_ID.test(incidentId)) return undefined
    const path = join(dir, `${incidentId}.svg`)
    return existsSync(path) ? path : undefined
  }

  /** Removes the oldest SVGs beyond `max`. */
  prune(max: number): void {
    if (this.#dir === undefined) return
    const dir = this.#dir
    const svgs = readdirSync(dir)
      .filter(name => name.endsWith('.svg'))
      .map(name => ({ path: join(dir, name), mtime: statSync(join(dir, name)).mtimeMs }))
      .sort((a, b) => a.mtime - b.mtime)
    for (const old of svgs.slice(0, Math.max(0, svgs.length - max))) rmSync(old.path, { force: true })
  }

  /** Removes the temporary directory (a journal's directory stays, for the next agent). */
  remove(): void {
    if (this.#temporary && this.#dir !== undefined) rmSync(this.#dir, { recursive: true, force: true })
  }
}

/** How flame graphs are recorded. */
export interface FlamegraphOptions {
  /** The py-spy binary. */
  bin: string
  /** Seconds `py-spy record` samples for. */
  seconds: number
  /** SVGs kept on disk at most; the oldest go first. */
  maxKept: number
  store: FlamegraphStore
  /**
   * True while `pid` runs (not a zombie) and, with `startTime`, is still that process: a dead
   * process has nothing to record.
   */
  isAlive: (pid: number, startTime?: number) => boolean
  emit: (payload: FlamegraphPayload) => void
  logger: Logger
}

/**
 * A step of the capture pipeline: follows each incident with a short `py-spy record` of its
 * process, once the incident is out (the dump is done by then, so it never delays it). One recording
 * at a time; `--nonblocking`, so the target is never paused for it; `--idle`, so a leak
 * that sleeps between allocations still has samples. Every incident with a stack gets a
 * `flamegraph` event: the URL, or why not.
 */
export class FlamegraphRecorder {
  readonly #options: FlamegraphOptions
  readonly #stopping = new AbortController()
  readonly #pending = new Set<Promise<void>>()
  #busy = false

  constructor(options: FlamegraphOptions) {
    this.#options = options
  }

  /**
   * Records the incident's process and emits its `flamegraph` event (the URL, or why not).
   * Call it once the incident has been emitted, never from inside the emit: a busy or gone
   * target is told at once, within this call. Resolves when the event is out (at once for an
   * incident without a stack, or after {@link stop}); never rejects.
   * @param startTime - the process's start time, when the caller knows it: a reused pid is then not recorded.
   */
  afterIncident(incident: IncidentPayload, startTime?: number): Promise<void> {
    // Without a stack, py-spy could not read the process: a recording would fail the same way.
    if (incident.capture.error !== undefined || this.#stopping.signal.aborted) return Promise.resolve()
    const work: Promise<void> = this.#record(incident.id, incident.pid, startTime)
      .catch((error: unknown) => this.#options.logger.error({ err: error }, 'a flame graph failed unexpectedly'))
      .finally(() => this.#pending.delete(work))
    this.#pending.add(work)
    return work
  }

  /** Kills a recording under way (its partial file is removed) and waits for it. Idempotent. */
  async stop(): Promise<void> {
    this.#stopping.abort()
    await Promise.all(this.#pending)
  }

  async #record(incidentId: string, pid: number, startTime: number | undefined): Promise<void> {
    const { bin, seconds, store, emit } = this.#options
    const fail = (error: FlamegraphError) => emit({ type: 'flamegraph', incidentId, pid, error })
    if (this.#stopping.signal.aborted) return
    if (this.#busy) {
      return fail({
        code: 'FLAMEGRAPH_BUSY',
        message: 'another flame graph was being recorded',
        remedy: 'the stack in the incident is the one to read; flame graphs are one at a time',
      })
    }
    if (!this.#options.isAlive(pid, startTime)) {
      return fail({
        code: 'FLAMEGRAPH_TARGET_GONE',
        message: `pid ${pid} was gone before the flame graph could start`,
        remedy: 'the stack in the incident was caught before it went',
      })
    }
    let dir: string
    try {
      dir = store.dir()
    } catch (error) {
      return fail({
        code: 'FLAMEGRAPH_NO_DIR',
        message: `no writable directory for flame graphs (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
        remedy:
          'set --journal-dir / OOMWATCH_JOURNAL_DIR to a writable volume (an emptyDir), or turn flame graphs off with OOMWATCH_FLAMEGRAPH=false',
      })
    }
    this.#busy = true
    const part = join(dir, `${incidentId}.svg.part`)
    try {
      const args = [
        'record',
        '--pid',
        String(pid),
        '--duration',
        String(seconds),
        '--format',
        'flamegraph',
        '--output',
        part,
        '--nonblocking',
        '--idle',
      ]
      const result = await runPyspy({ bin, args, timeoutMs: seconds * 1000 + WRITE_GRACE_MS, signal: this.#stopping.signal })
      if (this.#stopping.signal.aborted) return
      if (result.exitCode !== 0 || result.timedOut || result.spawnError || !existsSync(part)) {
        return fail(classifyFailure(result, bin, seconds * 1000 + WRITE_GRACE_MS))
      }
      chmodSync(part, FILE_MODE)
      renameSync(part, join(dir, `${incidentId}.svg`))
      store.prune(this.#options.maxKept)
      emit({ type: 'flamegraph', incidentId, pid, url: flamegraphUrl(incidentId), durationMs: Math.round(result.durationMs) })
    } finally {
      rmSync(part, { force: true })
      this.#busy = false
    }
  }
}
