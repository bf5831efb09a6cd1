import type { Config } from '../config.js'
import { hasSettled, judgeStarting, STARTUP_MS } from '../detect/newborn.js'
import { assess, nextIntervalMs, noiseFloor, type Triggered, type TriggerOptions, type Verdict } from '../detect/trigger.js'
import { ProcParseError, ProcReadError } from '../proc/errors.js'
import { isStillRunning } from '../proc/identity.js'
import { secretRedactor, type Redactor } from '../format/redact-secrets.js'
import { BirthClock } from './birth-clock.js'
import { Discovery, NO_PTRACE, type Found } from './discovery.js'
import type { Group } from './group.js'
import { Groups } from './groups.js'
import { fastestGrowing, isRising, judgeUsage, mostUrgent } from './judge.js'
import { exitDecisions } from './group-kill.js'
import type { Decision, TickResult } from './decisions.js'
import type { Births, Sensors } from './sensors.js'
import { infoNow, watchedFrom, type Watched } from './watched.js'
import type { OomKillPayload, ProcessInfo } from '../protocol/events.js'

/** The settings a watch step decides by. */
export type StepConfig = Pick<Config, 'match' | 'nofileRisk' | 'cooldownMs' | 'redact' | StepTrigger | StepInterval>

type StepTrigger = 'windowMs' | 'triggerFraction' | 'triggerSeconds'
type StepInterval = 'intervalMs' | 'fastIntervalMs' | 'refreshMs' | 'scanMs'

/** What a {@link WatchStep} is made of. */
export interface StepOptions {
  config: StepConfig
  sensors: Sensors
  pageSize: number
  /** Pids never to watch: the agent itself and the py-spy runs it starts. */
  ownPids: ReadonlySet<number>
  /** Tells of births; absent: /proc is listed every scanMs instead. */
  births: Births | undefined
  /** Without a birth signal, list /proc every intervalMs, not scanMs (a NOFILE clamp must come before the process reads its limits). */
  fastScan: boolean
}

/**
 * The watch loop's decisions, without timers, events or captures: each {@link tick} reads
 * what it needs through {@link Sensors} at the monotonic time it is given, and returns what
 * to announce, whom to capture, and when to tick again. A quiet pod costs one read plus one
 * per container every `intervalMs`; a new process, a rise or a limit drawing near brings the
 * tick down to `fastIntervalMs`.
 */
export class WatchStep {
  readonly #options: StepOptions
  readonly #sensors: Sensors
  readonly #discovery: Discovery
  readonly #watched = new Map<number, Watched>()
  /** Processes still starting: read every tick, whatever their container does. */
  readonly #starting = new Set<Watched>()
  readonly #groups: Groups
  readonly #trigger: TriggerOptions
  readonly #redactor: Redactor
  readonly #clock: BirthClock
  #births: Births | undefined
  /** The pids of the last scan: the ones not among them were born since. */
  #present: ReadonlySet<number> | undefined
  #lastScan = -Infinity
  #lastRecheck = -Infinity
  #lastLateRecheck = -Infinity
  #lastRefresh = -Infinity
  #scanned = false
  /** The decisions of the tick under way. */
  #out: Decision[] = []

  constructor(options: StepOptions) {
    this.#options = options
    this.#sensors = options.sensors
    this.#births = options.births
    const { triggerFraction, triggerSeconds, windowMs } = options.config
    this.#trigger = { fraction: triggerFraction, seconds: triggerSeconds, windowMs }
    this.#redactor = secretRedactor(options.config.redact)
    this.#groups = new Groups(cg => this.#sensors.counters(cg), options.config.intervalMs)
    this.#clock = new BirthClock(
      () => this.#sensors.proc.uptimeSeconds(),
      error => this.#problem('uptime', error, "processes' ages are counted from their first sighting"),
    )
    // Access errors come from every process at once when ptrace rights are missing: one report.
    this.#discovery = new Discovery(options.sensors.proc, options.config.match, (pid, error) =>
      error.code === 'PROC_ACCESS' ? this.#problem('proc-access', error, NO_PTRACE) : this.#problem(`read:${pid}`, error),
    )
  }

  /** True once the first scan is done. */
  get scanned(): boolean {
    return this.#scanned
  }

  /** The processes watched now, each with its last RSS. */
  processes(): ProcessInfo[] {
    return Array.from(this.#watched.values(), infoNow)
  }

  /** The processes watched now, to be read (`memoryReading`, `containerReadings`), not changed. */
  watched(): IterableIterator<Watched> {
    return this.#watched.values()
  }

  /** Whether `w` is still heading for its limit, on the samples taken since (its group's usage where there is one). */
  stillRunaway(w: Watched): boolean {
    const series = w.group.hasUsage ? w.group.series : w.series
    return assess(series, w.group.limit.bytes, this.#trigger).state === 'runaway'
  }

  /**
   * One tick at monotonic time `now`: births (one read of the last pid allocated), each
   * container's usage (one read each), then per-process detail only where something moves.
   */
  tick(now: number): TickResult {
    this.#out = []
    try {
      return { decisions: this.#out, delayMs: this.#tick(now) }
    } catch (error) {
      // The decisions made so far stand (an exit, a capture whose gate is entered); the next tick comes soon.
      return { decisions: this.#out, delayMs: this.#options.config.fastIntervalMs, error }
    }
  }

  /** The tick's work; returns when the next one is due. */
  #tick(now: number): number {
    const { config } = this.#options
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
    let delayMs = fresh || this.#starting.size > 0 || this.#discovery.hasYoung(now) ? config.fastIntervalMs : config.intervalMs
    let rising = false
    for (const group of this.#groups.values()) {
      const kept = group.sample(now, config.intervalMs)
      if (kept instanceof Error) this.#problem(`cgroup:${group.key}`, kept)
      else if (kept) group.verdict = judgeUsage(group, this.#trigger)
      const due = !group.hasUsage && now - group.membersReadAt >= config.intervalMs
      // A fall in usage is most often a member's exit: found now, not at the next refresh.
      if (refreshAll || isRising(group.verdict) || due || group.fell || group.killPending) this.#readMembers(group, now)
      else if (!group.hasUsage) this.#judgeStartingMembers(group, now)
      if (group.hasUsage) this.#judgeGroup(group, now)
      this.#tell(this.#groups.afterTick(group, now, refreshAll)) // after the exits that may explain its kills
      rising ||= isRising(group.verdict)
      delayMs = Math.min(delayMs, nextIntervalMs(group.verdict, config.intervalMs, config.fastIntervalMs, config.triggerFraction))
    }
    // Without a birth signal: a container that grows may have a new process to explain it (a daemon's child).
    if (!this.#births && rising && now - this.#lastScan >= config.intervalMs) this.#scan(now)
    return delayMs
  }

  /** Closes every group's counters and the birth signal. */
  close(): void {
    this.#groups.close()
    this.#births?.close()
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
        /* c8 ignore next */ if (!(error instanceof ProcReadError) && !(error instanceof ProcParseError)) throw error
        this.#problem('births', error, `new processes are looked for every ${this.#options.config.scanMs} ms instead`)
        this.#births.close()
        this.#births = undefined
      }
    }
    const { config, fastScan } = this.#options
    // With a clamp to do and no birth signal, a new process is found within a tick, before it reads its limits.
    const scanMs = !this.#births && fastScan ? Math.min(config.scanMs, config.intervalMs) : config.scanMs
    let listed = false
    if (born || (!this.#births && now - this.#lastScan >= scanMs)) {
      listed = this.#scan(now) > 0
    } else {
      // Every scanMs, also the pids a wrapper may still exec Python in (a scan looks at those too).
      const recent = now - this.#lastRecheck >= scanMs
      if (recent) this.#lastRecheck = now
      for (const found of this.#discovery.recheck(now, recent ? 'recent' : 'young')) this.#watch(found, now)
    }
    // Every refreshMs, every pid that is not Python yet, however busy with births the host is:
    // a script may exec Python long after its start.
    if (now - this.#lastLateRecheck >= config.refreshMs) {
      this.#lastLateRecheck = now
      for (const found of this.#discovery.recheck(now, 'late')) this.#watch(found, now)
    }
    return listed
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
    if (verdict?.state !== 'runaway') return
    const { windowMs } = this.#options.config
    const culprit = fastestGrowing(this.#members(group), now, { windowMs, minGrowth: 0 })
    if (!culprit) return
    const judged = this.#judgeStarting(verdict, culprit, now)
    if (judged.state === 'runaway') return this.#capture(culprit, judged, now)
    const elder = fastestGrowing(this.#members(group), now, { windowMs, minGrowth: noiseFloor(group.limit.bytes), settledOnly: true })
    if (elder) this.#capture(elder, verdict, now)
  }

  *#members(group: Group): Generator<Watched> {
    for (const pid of group.members) {
      const w = this.#watched.get(pid)
      if (w) yield w
    }
  }

  /** Without a cgroup usage, a member's RSS is judged against its limit. */
  #judgeMember(w: Watched, now: number): Verdict {
    const verdict = this.#judgeStarting(assess(w.series, w.group.limit.bytes, this.#trigger), w, now)
    if (verdict.state === 'runaway') this.#capture(w, verdict, now)
    return verdict
  }

  #judgeStarting(verdict: Verdict, w: Watched, now: number): Verdict {
    const { windowMs, triggerFraction } = this.#options.config
    return judgeStarting(verdict, { ageMs: now - w.startedAt, own: w.series, settledBytes: w.settledBytes, windowMs, triggerFraction })
  }

  /** Lists /proc: exits, and the processes to watch among the pids not known yet. Returns how many pids were born since the last scan. */
  #scan(now: number): number {
    this.#lastScan = now
    const pids = this.#sensors.proc.listPids()
    const present = new Set(pids)
    for (const w of [...this.#watched.values()]) if (!present.has(w.info.pid)) this.#exit(w, now)
    this.#discovery.prune(present)
    const before = this.#present
    let born = 0
    for (const pid of pids) {
      if (this.#watched.has(pid) || this.#options.ownPids.has(pid)) continue
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
    const { config, pageSize } = this.#options
    const { cgroup, limit } = this.#sensors.locate(found.pid)
    const key = cgroup?.id ?? limit.source
    const group = this.#groups.join(key, limit, cgroup, made => {
      if (made.openError) this.#problem(`cgroup:${key}`, made.openError)
      made.sample(now, config.intervalMs)
    })
    const w = watchedFrom(found, group, {
      ...config,
      now,
      pageSize,
      cgroup,
      bornAt: this.#clock.bornAt(found.startTime, now),
      redactor: this.#redactor,
    })
    this.#watched.set(found.pid, w)
    group.members.add(found.pid)
    if (now - w.startedAt < STARTUP_MS) this.#starting.add(w)
    this.#out.push({ kind: 'watch', watched: w })
  }

  /** Reads a member's RSS into its series; false when it could not (it exited, or its stat is unreadable). */
  #refresh(w: Watched, now: number): boolean {
    let stat
    try {
      stat = this.#sensors.stats.read(w.info.pid)
    } catch (error) {
      /* c8 ignore next */ if (!(error instanceof ProcReadError)) throw error // parse errors are bugs to see
      this.#problem(`stat:${w.info.pid}`, error)
      return false
    }
    // A zombie's memory is gone; a different start time is a reused pid, born while we looked away.
    if (!stat || !isStillRunning(stat, w.info.startTime)) {
      this.#exit(w, now)
      const reborn = stat && stat.startTime !== w.info.startTime ? this.#discovery.examine(w.info.pid, now, true) : undefined
      if (reborn) this.#watch(reborn, now)
      return false
    }
    const bytes = stat.rssPages * this.#options.pageSize
    w.readAt = now
    w.series.push({ t: now, bytes })
    w.peakRss = Math.max(w.peakRss, bytes)
    return true
  }

  /** Forgets a process that is gone; an OOM kill of its cgroup since the last exit is its, and its post-mortem is told. */
  #exit(w: Watched, now: number): void {
    const { pid } = w.info
    this.#watched.delete(pid)
    this.#starting.delete(w)
    this.#sensors.stats.forget(pid)
    const members = () => [...w.group.members].flatMap(member => this.#watched.get(member) ?? [])
    this.#out.push(...exitDecisions(w, w.group.takeOomKill(), members, now))
    this.#tell(this.#groups.leave(w.group, pid, w.info.cmdline, now))
  }

  /** An OOM kill no watched exit explains, when there is one to tell. */
  #tell(oomKill: OomKillPayload | undefined): void {
    if (oomKill) this.#out.push({ kind: 'oom-kill', oomKill })
  }

  /** A capture, unless one of `w` is under way or its reason is cooling down. */
  #capture(w: Watched, verdict: Triggered, now: number): void {
    if (w.gate.tryEnter(verdict.reason, now)) this.#out.push({ kind: 'capture', watched: w, verdict })
  }

  #problem(key: string, error: Error, consequence?: string): void {
    this.#out.push({ kind: 'problem', key, error, ...(consequence !== undefined && { consequence }) })
  }
}
