import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import { findMemoryCgroup } from '../cgroup/memory-cgroup.js'
import type { StackCapture } from '../capture/capture.js'
import { buildIncident } from '../capture/incident.js'
import type { Config } from '../config.js'
import { CaptureGate } from '../detect/cooldown.js'
import { findRisks, type Risk } from '../detect/rlimit-rules.js'
import { Series } from '../detect/series.js'
import { assess, nextIntervalMs, type TriggerOptions, type Verdict } from '../detect/trigger.js'
import type { EventPayload, IncidentPayload, PostMortem, ProcessInfo } from '../events.js'
import { formatBytes } from '../quantity.js'
import { chooseLimit } from '../limit.js'
import { ProcReadError } from '../proc/errors.js'
import type { ProcReader } from '../proc/reader.js'
import { StatHandles } from '../proc/stat-handles.js'
import type { Actor } from '../act/actor.js'
import type { MemoryReading } from '../page/memory-history.js'
import { Discovery, type Found } from './discovery.js'
import { Group } from './group.js'

/** What the watcher needs from the outside; all I/O beyond /proc and cgroupfs comes in here. */
export interface WatcherDeps {
  config: Pick<
    Config,
    'procRoot' | 'match' | 'memoryLimit' | 'intervalMs' | 'fastIntervalMs' | 'refreshMs' | 'scanMs' | 'windowMs' | 'triggerFraction' | 'triggerSeconds' | 'cooldownMs' | 'nofileRisk'
  >
  proc: ProcReader
  hostMemoryBytes: number
  pageSize: number
  /** Pids never to watch: the agent itself and the py-spy runs it starts. */
  ownPids: ReadonlySet<number>
  emit: (payload: Exclude<EventPayload, { type: 'hello' | 'error' }>) => void
  /** Dumps the stack of `pid`; `signal` aborts when the watcher stops. */
  capture: (pid: number, signal: AbortSignal) => Promise<StackCapture>
  logger: Logger
  /** Carries out the actions the user enabled (clamp, stop, freeze); absent: watch only. */
  actor?: Actor
  /** Monotonic milliseconds. */
  now?: () => number
}

/** One watched process. */
interface Watched {
  info: ProcessInfo
  group: Group
  series: Series
  gate: CaptureGate
  risks: Risk[]
  peakRss: number
  lastIncident?: IncidentPayload
}

/**
 * The polling loop: scans /proc for Python processes, reads each container's usage every
 * tick (fast while it grows or nears its limit), reads per-process detail where it moves,
 * and captures the runaway. Readers and detector know nothing of each other; this is
 * where they meet.
 */
export class Watcher {
  readonly #deps: WatcherDeps
  readonly #now: () => number
  readonly #discovery: Discovery
  readonly #stats: StatHandles
  readonly #watched = new Map<number, Watched>()
  readonly #groups = new Map<string, Group>()
  readonly #captures = new Set<Promise<void>>()
  readonly #reported = new Set<string>()
  readonly #stopping = new AbortController()
  readonly #triggerOptions: TriggerOptions
  #timer: NodeJS.Timeout | undefined
  #lastScan = -Infinity
  #lastRefresh = -Infinity
  #lastTickEnd = -Infinity
  #scanned = false
  #stopped = false

  constructor(deps: WatcherDeps) {
    this.#deps = deps
    this.#now = deps.now ?? (() => performance.now())
    this.#stats = new StatHandles(deps.proc)
    const { triggerFraction, triggerSeconds, windowMs } = deps.config
    this.#triggerOptions = { fraction: triggerFraction, seconds: triggerSeconds, windowMs }
    // Access errors come from every process at once when ptrace rights are missing: one report.
    this.#discovery = new Discovery(deps.proc, deps.config.match, (pid, error) =>
      error.code === 'PROC_ACCESS'
        ? this.#reportOnce('proc-access', error, 'without ptrace rights (CAP_SYS_PTRACE), Python is recognised by its command line, and py-spy will be refused')
        : this.#reportOnce(`read:${pid}`, error),
    )
  }

  /** True once the first scan is done. */
  get ready(): boolean {
    return this.#scanned
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
    return [...this.#watched.values()].map(w => ({ ...w.info, memory: { ...w.info.memory, rssBytes: w.series.lastBytes() ?? 0 } }))
  }

  /** Each watched process's last RSS and limit: the live page's chart points, taken every second. */
  memory(): MemoryReading[] {
    return Array.from(this.#watched.values(), w => ({ pid: w.info.pid, rssBytes: w.series.lastBytes() ?? 0, limitBytes: w.group.limit.bytes }))
  }

  /** Runs the first tick now and keeps ticking until `stop()`. */
  start(): void {
    this.#tick()
  }

  /** Stops ticking, waits for captures under way, and closes cgroup handles. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#stopping.abort()
    await Promise.all(this.#captures)
    await this.#deps.actor?.stop()
    for (const group of this.#groups.values()) group.close()
    this.#groups.clear()
    this.#stats.closeAll()
  }

  #tick(): void {
    if (this.#stopped) return
    const now = this.#now()
    const { config } = this.#deps
    // With a clamp to do, a new process is found within a tick, before it reads its limits.
    const scanMs = this.#deps.actor?.wantsFastScan ? Math.min(config.scanMs, config.intervalMs) : config.scanMs
    if (now - this.#lastScan >= scanMs) this.#scan(now)
    let delay = config.intervalMs
    let rising = false
    for (const group of this.#groups.values()) {
      const error = group.sample(now)
      if (error) this.#reportOnce(`cgroup:${group.key}`, error)
      if (group.hasUsage) group.verdict = assess(group.series, group.limit.bytes, this.#triggerOptions)
    }
    // Each process's RSS: every tick where its container rises (or has no usage of its own to
    // watch), else all of them together every refreshMs. Per group, not per process: at 200
    // processes a per-process check each tick was a measurable part of the agent's CPU.
    const refreshAll = now - this.#lastRefresh >= config.refreshMs
    if (refreshAll) this.#lastRefresh = now
    for (const group of this.#groups.values()) {
      if (!refreshAll && group.hasUsage && group.verdict?.state === 'steady') continue
      // #refresh may remove the member, and an emptied group: safe while iterating a Set or Map.
      for (const pid of group.members) {
        const w = this.#watched.get(pid)
        if (w) this.#refresh(w, now)
      }
    }
    for (const group of this.#groups.values()) {
      const verdicts = group.hasUsage ? [this.#judgeGroup(group, now)] : this.#judgeMembers(group, now)
      for (const verdict of verdicts) {
        delay = Math.min(delay, nextIntervalMs(verdict, config.intervalMs, config.fastIntervalMs, config.triggerFraction))
        rising ||= verdict?.state !== 'steady' && verdict !== undefined
      }
    }
    // A container that grows may have a new process to explain it (a daemon's child).
    if (rising && now - this.#lastScan >= config.intervalMs) this.#scan(now)
    this.#lastTickEnd = this.#now()
    this.#timer = setTimeout(() => this.#tick(), delay)
  }


  /** A cgroup's verdict; when it is a runaway, the member whose RSS grew most is captured. */
  #judgeGroup(group: Group, now: number): Verdict | undefined {
    const verdict = group.verdict
    if (verdict?.reason) {
      const culprit = this.#fastestGrowing(group, now)
      if (culprit) this.#trigger(culprit, verdict as Verdict & { reason: NonNullable<Verdict['reason']> }, now)
    }
    return verdict
  }

  /** Without a cgroup usage, each member's RSS is judged against the limit. */
  #judgeMembers(group: Group, now: number): Verdict[] {
    return [...group.members].flatMap(pid => {
      const w = this.#watched.get(pid)
      if (!w) return []
      const verdict = assess(w.series, group.limit.bytes, this.#triggerOptions)
      if (verdict.reason) this.#trigger(w, verdict as Verdict & { reason: NonNullable<Verdict['reason']> }, now)
      return [verdict]
    })
  }

  #fastestGrowing(group: Group, now: number): Watched | undefined {
    let best: Watched | undefined
    let bestGrowth = 0
    for (const pid of group.members) {
      const w = this.#watched.get(pid)
      if (!w) continue
      // Baseline: the last sample before the window (a cold member was read only at refreshMs).
      const { series } = w
      if (series.length === 0) continue
      let inWindow = series.length
      while (inWindow > 0 && now - series.t(inWindow - 1) <= this.#deps.config.windowMs) inWindow--
      const baseline = inWindow === series.length ? 0 : Math.max(0, inWindow - 1)
      const growth = series.bytes(series.length - 1) - series.bytes(baseline)
      if (growth > bestGrowth) [best, bestGrowth] = [w, growth]
    }
    return best
  }

  #scan(now: number): void {
    this.#lastScan = now
    const pids = this.#deps.proc.listPids()
    const present = new Set(pids)
    for (const w of [...this.#watched.values()]) if (!present.has(w.info.pid)) this.#exit(w)
    this.#discovery.prune(present)
    for (const pid of pids) {
      if (this.#watched.has(pid) || this.#deps.ownPids.has(pid)) continue
      const found = this.#discovery.examine(pid, now)
      if (found) this.#watch(found, now)
    }
    this.#scanned = true
  }

  #watch(found: Found, now: number): void {
    const { config, pageSize } = this.#deps
    const cgroup = findMemoryCgroup(config.procRoot, found.pid)
    const limit = chooseLimit(cgroup, config.memoryLimit, this.#deps.hostMemoryBytes)
    const key = cgroup?.id ?? limit.source
    let group = this.#groups.get(key)
    if (!group) {
      group = new Group(key, limit, cgroup)
      if (group.openError) this.#reportOnce(`cgroup:${key}`, group.openError)
      group.sample(now)
      this.#groups.set(key, group)
    }
    const rssBytes = found.rssPages * pageSize
    const info: ProcessInfo = {
      pid: found.pid,
      ppid: found.ppid,
      startTime: found.startTime,
      cmdline: found.cmdline,
      exe: found.exe,
      python: found.python,
      rlimits: found.rlimits,
      memory: {
        rssBytes,
        limit: group.limit,
        ...(cgroup && { cgroup: { version: cgroup.version, dir: cgroup.dir, via: cgroup.via, ...usageOf(group) } }),
      },
    }
    const series = new Series()
    series.push({ t: now, bytes: rssBytes })
    const risks = findRisks(found.rlimits, { nofileRisk: config.nofileRisk })
    const w: Watched = { info, group, series, gate: new CaptureGate(config.cooldownMs), risks, peakRss: rssBytes }
    this.#watched.set(found.pid, w)
    group.members.add(found.pid)
    this.#deps.emit({ type: 'process', ...info })
    for (const risk of risks) this.#deps.emit({ type: 'risk', pid: found.pid, cmdline: found.cmdline, ...risk })
    if (this.#deps.actor) this.#track(this.#deps.actor.onDiscovered(info))
  }

  /** Keeps an action's promise until it settles, so that stop() waits for it. */
  #track(work: Promise<void>): void {
    const tracked = work
      .catch(error => this.#deps.logger.error({ err: (error as Error).message }, 'an action failed unexpectedly'))
      .finally(() => this.#captures.delete(tracked))
    this.#captures.add(tracked)
  }

  #refresh(w: Watched, now: number): void {
    let stat
    try {
      stat = this.#stats.read(w.info.pid)
    } catch (error) {
      /* c8 ignore next */ if (!(error instanceof ProcReadError)) throw error // parse errors are bugs to see
      this.#reportOnce(`stat:${w.info.pid}`, error)
      return
    }
    // A zombie's memory is gone; a different start time is a reused pid.
    if (!stat || stat.startTime !== w.info.startTime || stat.state === 'Z' || stat.state === 'X') return this.#exit(w)
    const bytes = stat.rssPages * this.#deps.pageSize
    w.series.push({ t: now, bytes })
    w.peakRss = Math.max(w.peakRss, bytes)
  }

  #exit(w: Watched): void {
    const { pid, cmdline } = w.info
    this.#watched.delete(pid)
    this.#stats.forget(pid)
    w.group.members.delete(pid)
    const oomKilled = w.group.takeOomKill()
    const last = w.lastIncident
    this.#deps.emit({
      type: 'exit',
      pid,
      cmdline,
      oomKilled,
      ...(last && { lastIncidentId: last.id }),
      peakRssBytes: w.peakRss,
      ...(oomKilled && { postMortem: postMortem(w, last) }),
    })
    if (w.group.members.size === 0) {
      w.group.close()
      this.#groups.delete(w.group.key)
    }
  }

  #trigger(w: Watched, verdict: Verdict & { reason: NonNullable<Verdict['reason']> }, now: number): void {
    if (!w.gate.tryEnter(verdict.reason, now)) return
    const capture = this.#capture(w, verdict).finally(() => {
      w.gate.leave()
      this.#captures.delete(capture)
    })
    this.#captures.add(capture)
  }

  async #capture(w: Watched, verdict: Verdict & { reason: NonNullable<Verdict['reason']> }): Promise<void> {
    const started = performance.now()
    const { pid, cmdline } = w.info
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
      rssBytes: w.series.lastBytes() ?? 0,
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
    const series = w.group.hasUsage ? w.group.series : w.series
    const still = assess(series, w.group.limit.bytes, this.#triggerOptions).reason !== undefined
    await this.#deps.actor?.afterIncident(w.info, id, still)
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
    this.#deps.logger.warn({ err: { message: error.message, code: (error as NodeJS.ErrnoException).code } }, `watching goes on despite: ${error.message}${consequence ? `; ${consequence}` : ''}`)
  }
}

/** The story of an OOM kill, from the last incident (when there was one) and the process's figures. */
function postMortem(w: Watched, last: IncidentPayload | undefined): PostMortem {
  const culprit = last?.culprit
  const explanation = (last?.risks ?? w.risks)[0]?.message
  const where = culprit ? `${culprit.function} (${culprit.file}:${culprit.line}) was growing memory` : 'no stack was caught before the kill'
  const limit = w.group.limit
  return {
    summary:
      `pid ${w.info.pid} was OOM-killed: ${where}; peak RSS ${formatBytes(w.peakRss)}, limit ${formatBytes(limit.bytes)} (${limit.source})` +
      (explanation ? `. Likely cause: ${explanation}` : ''),
    ...(culprit && { culprit: { function: culprit.function, file: culprit.file, line: culprit.line } }),
    peakRssBytes: w.peakRss,
    limitBytes: limit.bytes,
    limitSource: limit.source,
    ...(explanation && { explanation }),
  }
}

function usageOf(group: Group): { usageBytes?: number } {
  const usage = group.series.lastBytes()
  return usage === undefined ? {} : { usageBytes: usage }
}
