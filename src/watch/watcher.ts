import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import type { StackCapture } from '../capture/capture.js'
import { buildIncident } from '../capture/incident.js'
import type { Config } from '../config.js'
import { findRisks } from '../detect/rlimit-rules.js'
import type { Triggered } from '../detect/trigger.js'
import { errnoOf, ProcParseError, ProcReadError } from '../proc/errors.js'
import { BirthSignal } from '../proc/last-pid.js'
import type { ProcReader } from '../proc/reader.js'
import type { MemoryReading } from './memory-reading.js'
import { ProcSensors, type Births } from './sensors.js'
import type { Decision } from './decisions.js'
import { WatchStep, type StepConfig } from './step.js'
import { memoryReading, type Watched } from './watched.js'
import { containerReadings, type ContainerReading } from './containers.js'
import type { EventPayload, IncidentPayload, ProcessInfo } from '../protocol/events.js'

/**
 * What the watcher asks of the actions (the `Actor`): a narrow view, so the watcher calls
 * its hooks but never owns it. The agent builds it and stops it.
 */
export interface ActionHooks {
  /** Whether discovery should scan every tick where no birth signal is: a clamp is only useful before the process reads its limits. */
  readonly wantsFastScan: boolean
  /** At first sight of a process. */
  onDiscovered(info: ProcessInfo): Promise<void>
  /** Once an incident of `info` is out; `stillRunaway` is judged on the samples taken while py-spy ran. */
  afterIncident(info: ProcessInfo, incidentId: string, stillRunaway: boolean): Promise<void>
}

/** What an after-incident step is told beside the incident. */
export interface IncidentContext {
  /** The process, as its `process` event told it. */
  info: ProcessInfo
  /** Still heading for its limit on the samples taken while py-spy ran. */
  stillRunaway: boolean
  /** Aborts when the watcher stops. */
  signal: AbortSignal
}

/** What the watcher needs from the outside; all I/O beyond /proc and cgroupfs comes in here. */
export interface WatcherDeps {
  config: StepConfig & Pick<Config, 'procRoot' | 'memoryLimit'>
  proc: ProcReader
  hostMemoryBytes: number
  pageSize: number
  /** Pids never to watch: the agent itself and the py-spy runs it starts. */
  ownPids: ReadonlySet<number>
  emit: (payload: Exclude<EventPayload, { type: 'hello' | 'error' }>) => void
  /** Dumps the stack of `pid`; `signal` aborts when the watcher stops. */
  capture: (pid: number, signal: AbortSignal) => Promise<StackCapture>
  logger: Logger
  /** The actions the user enabled (clamp, stop, freeze); absent: watch only. Its owner stops it, after the watcher. */
  actor?: ActionHooks
  /**
   * A step of the capture pipeline after the incident is emitted (a flame graph, say).
   * Called once per incident, beside the actor's `afterIncident`; the capture gate does not
   * wait for it (a new trigger of the process may be captured meanwhile), `stop()` does.
   */
  afterIncident?: (incident: IncidentPayload, context: IncidentContext) => Promise<void>
  /**
   * Every watched process's RSS, handed over at a tick at least `everyMs` after the last
   * (the live page's chart points): on the watch's own ticks, not a timer of its own, as
   * each wake-up of Node costs ~0.15 ms of CPU here.
   */
  memorySamples?: { everyMs: number; take: (readings: MemoryReading[]) => void }
  /** Tells of births; default: `/proc/loadavg` of the procfs root when it is this process's own, else none (scans every scanMs). */
  births?: Births
  /** Monotonic milliseconds. */
  now?: () => number
}

/**
 * The polling loop's shell: a self-scheduling timer around a {@link WatchStep}, which
 * decides; this carries the decisions out (events, captures, the actor's hooks, the log).
 */
export class Watcher {
  readonly #deps: WatcherDeps
  readonly #now: () => number
  readonly #sensors: ProcSensors
  readonly #step: WatchStep
  readonly #work = new Set<Promise<void>>()
  readonly #reported = new Set<string>()
  readonly #stopping = new AbortController()
  #timer: NodeJS.Timeout | undefined
  #lastTickEnd = -Infinity
  #lastMemorySample = -Infinity
  #stopped = false

  constructor(deps: WatcherDeps) {
    this.#deps = deps
    this.#now = deps.now ?? (() => performance.now())
    this.#sensors = new ProcSensors(deps.proc, deps.config.memoryLimit, deps.hostMemoryBytes)
    let births: Births | undefined
    try {
      const signal = deps.births ?? new BirthSignal(deps.proc.root, process.pid)
      births = !(signal instanceof BirthSignal) || signal.available ? signal : undefined
    } catch (error) {
      /* c8 ignore next */ if (!(error instanceof ProcReadError) && !(error instanceof ProcParseError)) throw error
      this.#reportOnce('births', error, `new processes are looked for every ${deps.config.scanMs} ms instead`)
    }
    const { config, pageSize, ownPids } = deps
    this.#step = new WatchStep({ config, sensors: this.#sensors, pageSize, ownPids, births, fastScan: deps.actor?.wantsFastScan ?? false })
  }

  /** True once the first scan is done. */
  get ready(): boolean {
    return this.#step.scanned
  }

  /**
   * True while the loop ticks: the last tick ended less than ten base intervals ago (at
   * least 5 s, for a node under load). A loop that died or hangs makes /livez fail, so the
   * kubelet restarts the sidecar.
   */
  get alive(): boolean {
    return !this.#stopped && this.#now() - this.#lastTickEnd < Math.max(5000, 10 * this.#deps.config.intervalMs)
  }

  /** The processes watched now, as a `hello` lists them. */
  processes(): ProcessInfo[] {
    return this.#step.processes()
  }

  /** The containers of the processes watched now, with their usage, limit and growth. */
  containers(): ContainerReading[] {
    return containerReadings(this.#step.watched())
  }

  /** Runs the first tick now and keeps ticking until `stop()`. */
  start(): void {
    this.#tick()
  }

  /** Stops ticking, waits for captures and hooks under way, and closes cgroup and stat handles. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#stopping.abort()
    await Promise.all(this.#work)
    this.#step.close()
    this.#sensors.close()
  }

  /**
   * One tick, then the next one scheduled whatever happened: no error ends the loop. A tick
   * that throws (descriptors run out under a connection flood, a bug) is logged once per
   * kind of error and does not count as done, so /livez fails if every tick keeps failing.
   */
  #tick(): void {
    if (this.#stopped) return
    let delayMs = this.#deps.config.intervalMs
    try {
      const result = this.#step.tick(this.#now())
      delayMs = result.delayMs
      // One decision that fails does not cost the others theirs; a tick that failed midway still has its earlier ones carried out.
      for (const decision of result.decisions) this.#guarded(() => this.#carryOut(decision))
      this.#sampleMemory()
      if (result.error === undefined) this.#lastTickEnd = this.#now()
      else this.#tickFailed(result.error)
    } catch (error) {
      this.#tickFailed(error)
    }
    this.#timer = setTimeout(() => this.#tick(), delayMs)
  }

  #sampleMemory(): void {
    const sampling = this.#deps.memorySamples
    const now = this.#now()
    if (!sampling || now - this.#lastMemorySample < sampling.everyMs) return
    this.#lastMemorySample = now
    this.#guarded(() => sampling.take(Array.from(this.#step.watched(), memoryReading)))
  }

  #guarded(work: () => void): void {
    try {
      work()
    } catch (error) {
      this.#tickFailed(error)
    }
  }

  #tickFailed(error: unknown): void {
    const failure = error instanceof Error ? error : new Error(String(error))
    // One report per kind (EMFILE from a read of /proc, say), not per path or pid.
    const kind = `${failure.name}:${errnoOf(failure)}:${errnoOf(failure.cause)}`
    this.#reportOnce(`tick:${kind}`, failure, 'a tick failed; the watch goes on at the next one')
  }

  #carryOut(decision: Decision): void {
    switch (decision.kind) {
      case 'watch': {
        const { info, risks } = decision.watched
        this.#deps.emit({ type: 'process', ...info })
        for (const risk of risks) this.#deps.emit({ type: 'risk', pid: info.pid, cmdline: info.cmdline, ...risk })
        if (this.#deps.actor) this.#track(this.#deps.actor.onDiscovered(info), 'an action failed unexpectedly')
        return
      }
      case 'exit':
        return this.#deps.emit(decision.exit)
      case 'oom-kill':
        return this.#deps.emit(decision.oomKill)
      case 'group-kill':
        return this.#deps.emit(decision.groupKill)
      case 'capture': {
        const { watched } = decision
        const capture = this.#capture(watched, decision.verdict).finally(() => watched.gate.leave())
        return this.#track(capture, 'a capture failed unexpectedly')
      }
      case 'problem':
        return this.#reportOnce(decision.key, decision.error, decision.consequence)
    }
  }

  /** Keeps a promise until it settles, so that stop() waits for it. */
  #track(work: Promise<void>, failure: string): void {
    const tracked = work.catch(error => this.#deps.logger.error({ err: error }, failure)).finally(() => this.#work.delete(tracked))
    this.#work.add(tracked)
  }

  async #capture(w: Watched, verdict: Triggered): Promise<void> {
    const started = performance.now()
    const { pid, cmdline } = w.info
    // The RSS the verdict was judged on: the ticks go on while py-spy runs.
    const rssBytes = w.series.lastBytes() ?? 0
    const stacking = this.#deps.capture(pid, this.#stopping.signal)
    // While py-spy runs: the rlimits again (the snapshot is of the moment), and the
    // process's own figures.
    const rlimits = this.#read(() => this.#deps.proc.limits(pid)) ?? w.info.rlimits
    const status = this.#read(() => this.#deps.proc.status(pid))
    const stack = await stacking
    const processFigures = {
      ...(status?.threads !== undefined && { threads: status.threads }),
      ...(status?.hwmBytes !== undefined && { hwmBytes: status.hwmBytes }),
      ...(status?.swapBytes !== undefined && { swapBytes: status.swapBytes }),
    }
    const id = `${pid}-${randomUUID().slice(0, 8)}`
    const incident = buildIncident({
      id,
      pid,
      cmdline,
      verdict,
      rssBytes,
      limit: w.group.limit,
      rlimits,
      risks: findRisks(rlimits, { nofileRisk: this.#deps.config.nofileRisk }),
      process: processFigures,
      stack,
      triggerToStackMs: performance.now() - started,
    })
    w.lastIncident = incident
    this.#deps.emit(incident)
    // Acting is decided on fresh samples: the ticks went on while py-spy ran.
    const stillRunaway = this.#step.stillRunaway(w)
    const { afterIncident } = this.#deps
    const context = { info: w.info, stillRunaway, signal: this.#stopping.signal }
    if (afterIncident) this.#track(afterIncident(incident, context), 'an after-incident step failed')
    await this.#deps.actor?.afterIncident(w.info, id, stillRunaway)
  }

  /** A read at capture time; a process that is gone or unreadable leaves the figure out. */
  #read<T>(read: () => T | undefined): T | undefined {
    try {
      return read()
    } catch (error) {
      /* c8 ignore next */ if (!(error instanceof ProcReadError)) throw error // parse errors are bugs to see
      return undefined
    }
  }

  /** Logs a failure once per key, so a broken file does not flood the log every tick. */
  #reportOnce(key: string, error: Error, consequence?: string): void {
    if (this.#reported.has(key)) return
    // Bounded: on a host churning through broken pids, forget old ones rather than grow.
    if (this.#reported.size >= 1000) this.#reported.clear()
    this.#reported.add(key)
    this.#deps.logger.warn({ err: error }, `watching goes on despite: ${error.message}${consequence ? `; ${consequence}` : ''}`)
  }
}
