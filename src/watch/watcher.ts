import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import { findMemoryCgroup } from '../cgroup/memory-cgroup.js'
import type { StackCapture } from '../capture/capture.js'
import { buildIncident } from '../capture/incident.js'
import type { Config } from '../config.js'
import { CaptureGate } from '../detect/cooldown.js'
import { findRisks } from '../detect/rlimit-rules.js'
import { Series } from '../detect/series.js'
import { hasSettled, judgeStarting, STARTUP_MS } from '../detect/newborn.js'
import { assess, isTriggered, nextIntervalMs, noiseFloor, type Triggered, type TriggerOptions, type Verdict } from '../detect/trigger.js'
import { chooseLimit } from '../limit.js'
import { ProcParseError, ProcReadError } from '../proc/errors.js'
import { BirthSignal } from '../proc/last-pid.js'
import { processAgeMs } from '../proc/uptime.js'
import type { ProcReader } from '../proc/reader.js'
import { StatHandles } from '../proc/stat-handles.js'
import type { Actor } from '../act/actor.js'
import type { MemoryReading } from '../page/memory-history.js'
import { Discovery, type Found } from './discovery.js'
import { Group } from './group.js'
import { postMortem } from './post-mortem.js'
import type { Risk } from '../protocol/values.js'
import type { EventPayload, IncidentPayload, PostMortem, ProcessInfo } from '../protocol/events.js'

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
  /** Tells of births; default: `/proc/loadavg` of the procfs root when it is this process's own, else none (scans every scanMs). */
  births?: Pick<BirthSignal, 'moved' | 'close'>
  /** Monotonic milliseconds. */
  now?: () => number
}

/** One watched process. */
export interface Watched {
  info: ProcessInfo
  group: Group
  series: Series
  gate: CaptureGate
  risks: Risk[]
  peakRss: number
  /** When it started, on the monotonic clock (its first sighting where /proc has no uptime). */
  bornAt: number
  /** When its interpreter started: `bornAt`, or when a wrapper was seen to exec it. Start-up runs from here. */
  startedAt: number
  /** When the agent first saw it, on the monotonic clock. */
  seenAt: number
  /** When its RSS was last read. */
  readAt: number
  /** Its RSS when its start-up was first seen to pause; undefined until then. */
  settledBytes?: number
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
  /** Processes still starting: read every tick, whatever their container does. */
  readonly #starting = new Set<Watched>()
  readonly #groups = new Map<string, Group>()
  readonly #captures = new Set<Promise<void>>()
  readonly #reported = new Set<string>()
  readonly #stopping = new AbortController()
  readonly #triggerOptions: TriggerOptions
  /** Tells of births in this agent's PID namespace; absent where the procfs root is not its own. */
  #births: Pick<BirthSignal, 'moved' | 'close'> | undefined
  /** The pids of the last scan: the ones not among them were born since. */
  #present: ReadonlySet<number> | undefined
  /** Uptime read this tick (seconds), for the age of each process found in it. */
  #uptime: { at: number; seconds: number | undefined } | undefined
  #timer: NodeJS.Timeout | undefined
  #lastScan = -Infinity
  #lastRecheck = -Infinity
  #lastRefresh = -Infinity
  #lastTickEnd = -Infinity
  #scanned = false
  #stopped = false

  constructor(deps: WatcherDeps) {
    this.#deps = deps
    this.#now = deps.now ?? (() => performance.now())
    this.#stats = new StatHandles(deps.proc)
    try {
      const births = deps.births ?? new BirthSignal(deps.proc.root, process.pid)
      this.#births = !(births instanceof BirthSignal) || births.available ? births : undefined
    } catch (error) {
      this.#noBirthSignal(error)
    }
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
    this.#births?.close()
  }

  /**
   * One tick: births (one read of the last pid allocated), each container's usage (one
   * read each), then per-process detail only where something moves. A quiet pod costs one
   * read plus one per container every `intervalMs`; a new process, a rise or a limit
   * drawing near brings the tick down to `fastIntervalMs` (a Node timer's wake-up alone is
   * most of a quiet tick's cost).
   */
  #tick(): void {
    if (this.#stopped) return
    const now = this.#now()
    const { config } = this.#deps
    const fresh = this.#discover(now)
    // Starting processes first: read every tick, whatever their container does.
    for (const w of this.#starting) {
      if (now - w.startedAt >= STARTUP_MS) this.#starting.delete(w)
      else if (this.#refresh(w, now) && w.settledBytes === undefined && hasSettled(w.series)) w.settledBytes = w.series.lastBytes()
    }
    // Each process's RSS: every tick while its container rises (or, without a usage of its
    // own, while one of its members does, and every intervalMs otherwise); all of them
    // together every refreshMs. Per group, not per process: a steady pod's tick touches no
    // process at all.
    const refreshAll = now - this.#lastRefresh >= config.refreshMs
    if (refreshAll) this.#lastRefresh = now
    let delay = fresh || this.#starting.size > 0 || this.#discovery.hasYoung(now) ? config.fastIntervalMs : config.intervalMs
    let rising = false
    for (const group of this.#groups.values()) {
      const kept = group.sample(now, config.intervalMs)
      if (kept instanceof Error) this.#reportOnce(`cgroup:${group.key}`, kept)
      else if (kept) group.verdict = assess(group.series, group.limit.bytes, this.#triggerOptions)
      const due = !group.hasUsage && now - group.membersReadAt >= config.intervalMs
      // A fall in usage is most often a member's exit: found now, not at the next refresh.
      if (refreshAll || isRising(group.verdict) || due || group.fell) this.#readMembers(group, now)
      else if (!group.hasUsage) this.#judgeStartingMembers(group, now)
      if (group.hasUsage) this.#judgeGroup(group, now)
      rising ||= isRising(group.verdict)
      delay = Math.min(delay, nextIntervalMs(group.verdict, config.intervalMs, config.fastIntervalMs, config.triggerFraction))
    }
    // Without a birth signal: a container that grows may have a new process to explain it (a daemon's child).
    if (!this.#births && rising && now - this.#lastScan >= config.intervalMs) this.#scan(now)
    this.#lastTickEnd = this.#now()
    this.#timer = setTimeout(() => this.#tick(), delay)
  }

  /**
   * Lists /proc when a pid was allocated since the last tick, so a process is seen within
   * a tick of its birth; else looks again at the pids that may have exec'd Python since.
   * Without the birth signal (a foreign procfs root), lists every scanMs.
   *
   * @returns whether a process was born since the last scan (a new thread moves the last
   *   pid too, but lists nothing new: it keeps the tick quiet)
   */
  #discover(now: number): boolean {
    let born = false
    if (this.#births) {
      try {
        born = this.#births.moved()
      } catch (error) {
        this.#noBirthSignal(error)
      }
    }
    const { config } = this.#deps
    // With a clamp to do and no birth signal, a new process is found within a tick, before it reads its limits.
    const scanMs = this.#births ? config.scanMs : this.#deps.actor?.wantsFastScan ? Math.min(config.scanMs, config.intervalMs) : config.scanMs
    if (born || (!this.#births && now - this.#lastScan >= scanMs)) return this.#scan(now) > 0
    // Every scanMs, also the older pids a wrapper may still exec Python in.
    const all = now - this.#lastRecheck >= scanMs
    if (all) this.#lastRecheck = now
    for (const found of this.#discovery.recheck(now, all)) this.#watch(found, now)
    return false
  }

  /** Without the birth signal: scans every scanMs instead, said once. */
  #noBirthSignal(error: unknown): void {
    /* c8 ignore next */ if (!(error instanceof ProcReadError) && !(error instanceof ProcParseError)) throw error
    this.#reportOnce('births', error, `new processes are looked for every ${this.#deps.config.scanMs} ms instead`)
    this.#births?.close()
    this.#births = undefined
  }

  /** Reads every member of a group; without a usage of its own, each is judged alone and the group takes the most urgent verdict. */
  #readMembers(group: Group, now: number): void {
    group.membersReadAt = now
    let verdict: Verdict | undefined
    // #refresh may remove the member, and an emptied group: safe while iterating a Set or Map.
    for (const pid of group.members) {
      const w = this.#watched.get(pid)
      if (!w || (w.readAt !== now && !this.#refresh(w, now)) || group.hasUsage) continue
      verdict = mostUrgent(verdict, this.#judgeMember(w, now))
    }
    if (!group.hasUsage) group.verdict = verdict
  }

  /** Without a usage, a group's starting members (read this tick) are judged between its full reads. */
  #judgeStartingMembers(group: Group, now: number): void {
    for (const pid of group.members) {
      const w = this.#watched.get(pid)
      if (w && w.readAt === now && this.#starting.has(w)) group.verdict = mostUrgent(group.verdict, this.#judgeMember(w, now))
    }
  }

  /**
   * When a cgroup's verdict is a runaway, the member whose RSS grew most is captured. A
   * starting culprit may be held back (start-up is not a runaway); then a member past its
   * start-up that grew by more than noise is the runaway, if there is one.
   */
  #judgeGroup(group: Group, now: number): void {
    const verdict = group.verdict
    if (!verdict || !isTriggered(verdict)) return
    const culprit = this.#fastestGrowing(group, now, 0)
    if (!culprit) return
    const judged = this.#judgeStarting(verdict, culprit, now)
    if (isTriggered(judged)) return this.#trigger(culprit, judged, now)
    const elder = this.#fastestGrowing(group, now, noiseFloor(group.limit.bytes), true)
    if (elder) this.#trigger(elder, verdict, now)
  }

  /** Without a cgroup usage, a member's RSS is judged against its limit. */
  #judgeMember(w: Watched, now: number): Verdict {
    const verdict = this.#judgeStarting(assess(w.series, w.group.limit.bytes, this.#triggerOptions), w, now)
    if (isTriggered(verdict)) this.#trigger(w, verdict, now)
    return verdict
  }

  #judgeStarting(verdict: Verdict, w: Watched, now: number): Verdict {
    const { windowMs, triggerFraction } = this.#deps.config
    return judgeStarting(verdict, { ageMs: now - w.startedAt, own: w.series, settledBytes: w.settledBytes, windowMs, triggerFraction })
  }

  /** The member that grew most over the window, by more than `minGrowth`; with `settledOnly`, among those whose start-up is out of the window. */
  #fastestGrowing(group: Group, now: number, minGrowth: number, settledOnly = false): Watched | undefined {
    let best: Watched | undefined
    let bestGrowth = minGrowth
    for (const pid of group.members) {
      const w = this.#watched.get(pid)
      if (!w || (settledOnly && now - w.startedAt < STARTUP_MS + this.#deps.config.windowMs)) continue
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

  /** Lists /proc: exits, and the processes to watch among the pids not known yet. Returns how many pids were born since the last scan. */
  #scan(now: number): number {
    this.#lastScan = now
    const pids = this.#deps.proc.listPids()
    const present = new Set(pids)
    for (const w of [...this.#watched.values()]) if (!present.has(w.info.pid)) this.#exit(w, now)
    this.#discovery.prune(present)
    const before = this.#present
    let born = 0
    for (const pid of pids) {
      if (this.#watched.has(pid) || this.#deps.ownPids.has(pid)) continue
      // At the first scan every pid is old; after it, one not listed last time was born since.
      const isNew = before !== undefined && !before.has(pid)
      if (isNew) born++
      const found = this.#discovery.examine(pid, now, isNew)
      if (found) this.#watch(found, now)
    }
    this.#present = present
    this.#scanned = true
    return born
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
      group.sample(now, config.intervalMs)
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
    const bornAt = this.#bornAt(found.startTime, now)
    const startedAt = found.execSeenAt ?? bornAt
    const w: Watched = { info, group, series, gate: new CaptureGate(config.cooldownMs), risks, peakRss: rssBytes, bornAt, startedAt, seenAt: now, readAt: now }
    this.#watched.set(found.pid, w)
    group.members.add(found.pid)
    if (now - startedAt < STARTUP_MS) this.#starting.add(w)
    this.#deps.emit({ type: 'process', ...info })
    for (const risk of risks) this.#deps.emit({ type: 'risk', pid: found.pid, cmdline: found.cmdline, ...risk })
    if (this.#deps.actor) this.#track(this.#deps.actor.onDiscovered(info))
  }

  /** When a process that started `startTime` clock ticks after boot was born, on the monotonic clock; never after `now`. */
  #bornAt(startTime: number, now: number): number {
    if (this.#uptime?.at !== now) {
      let seconds: number | undefined
      try {
        seconds = this.#deps.proc.uptimeSeconds()
      } catch (error) {
        /* c8 ignore next */ if (!(error instanceof ProcReadError)) throw error
        this.#reportOnce('uptime', error, "processes' ages are counted from their first sighting")
      }
      this.#uptime = { at: now, seconds }
    }
    const { seconds } = this.#uptime
    return seconds === undefined ? now : now - processAgeMs(startTime, seconds)
  }

  /** Keeps an action's promise until it settles, so that stop() waits for it. */
  #track(work: Promise<void>): void {
    const tracked = work
      .catch(error => this.#deps.logger.error({ err: (error as Error).message }, 'an action failed unexpectedly'))
      .finally(() => this.#captures.delete(tracked))
    this.#captures.add(tracked)
  }

  /** Reads a member's RSS into its series; false when it could not (it exited, or its stat is unreadable). */
  #refresh(w: Watched, now: number): boolean {
    let stat
    try {
      stat = this.#stats.read(w.info.pid)
    } catch (error) {
      /* c8 ignore next */ if (!(error instanceof ProcReadError)) throw error // parse errors are bugs to see
      this.#reportOnce(`stat:${w.info.pid}`, error)
      return false
    }
    // A zombie's memory is gone; a different start time is a reused pid, born while we looked away.
    if (!stat || stat.startTime !== w.info.startTime || stat.state === 'Z' || stat.state === 'X') {
      this.#exit(w, now)
      const reborn = stat && stat.startTime !== w.info.startTime ? this.#discovery.examine(w.info.pid, now, true) : undefined
      if (reborn) this.#watch(reborn, now)
      return false
    }
    const bytes = stat.rssPages * this.#deps.pageSize
    w.readAt = now
    w.series.push({ t: now, bytes })
    w.peakRss = Math.max(w.peakRss, bytes)
    return true
  }

  #exit(w: Watched, now: number): void {
    const { pid, cmdline } = w.info
    this.#watched.delete(pid)
    this.#starting.delete(w)
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
      livedMs: Math.round(now - w.bornAt),
      ...(oomKilled && { postMortem: postMortem(w, last, now) }),
    })
    if (w.group.members.size === 0) {
      w.group.close()
      this.#groups.delete(w.group.key)
    }
  }

  #trigger(w: Watched, verdict: Triggered, now: number): void {
    if (!w.gate.tryEnter(verdict.reason, now)) return
    const capture = this.#capture(w, verdict).finally(() => {
      w.gate.leave()
      this.#captures.delete(capture)
    })
    this.#captures.add(capture)
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

function isRising(verdict: Verdict | undefined): boolean {
  return verdict !== undefined && verdict.state !== 'steady'
}

const URGENCY = { steady: 0, rising: 1, runaway: 2 } as const

/** The verdict to act on first: a runaway over a rise over a steady one, then the one nearer its limit. */
function mostUrgent(a: Verdict | undefined, b: Verdict): Verdict {
  if (!a) return b
  const order = URGENCY[b.state] - URGENCY[a.state]
  return order > 0 || (order === 0 && b.fraction > a.fraction) ? b : a
}

function usageOf(group: Group): { usageBytes?: number } {
  const usage = group.series.lastBytes()
  return usage === undefined ? {} : { usageBytes: usage }
}
