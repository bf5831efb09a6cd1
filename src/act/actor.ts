import { readFileSync } from 'node:fs'
import { clampTarget, protectedReason, type RunawayAction } from './policy.js'
import { setNofile } from './prlimit.js'
import { freezeProcess, signalSame, stopProcess } from './signals.js'
import { parseUptime, processAgeMs } from '../proc/uptime.js'
import type { ActionPayload, ProcessInfo } from '../protocol/events.js'

/** How long a freeze waits to see the process stopped before it reports that it is not (yet). */
const FREEZE_CONFIRM_MS = 1000

/** The actions the user enabled; every one is off by default. */
export interface ActorOptions {
  procRoot: string
  /** Lower NOFILE (soft and hard) to this ceiling on every watched process above it. */
  clampNofile?: number
  /** What to do with a runaway once its stack is out and it is still heading for the limit. */
  onRunaway: RunawayAction
  /** SIGTERM to SIGKILL, ms. */
  stopGraceMs: number
  /** The longest a runaway stays frozen, ms; then `freezeFallback`. */
  freezeMaxMs: number
  freezeFallback: 'release' | 'stop'
  /** Allow actions on PID 1 and on containers' entrypoints. */
  actOnEntrypoint: boolean
  emit: (payload: ActionPayload) => void
}

/**
 * Carries out the actions the user asked for, each announced as an `action` event with
 * what, to which pid, why and the result. Acts only on watched processes (so only within
 * the configured match) and never on a reused pid.
 */
export class Actor {
  readonly #options: ActorOptions
  readonly #frozen = new Map<number, { info: ProcessInfo; timer: NodeJS.Timeout }>()

  constructor(options: ActorOptions) {
    this.#options = options
  }

  /** Whether discovery should scan every tick: a clamp is only useful before the process reads its limits. */
  get wantsFastScan(): boolean {
    return this.#options.clampNofile !== undefined
  }

  /** At first sight: clamp NOFILE when it is above the configured ceiling. */
  async onDiscovered(info: ProcessInfo): Promise<void> {
    const ceiling = this.#options.clampNofile
    const nofile = info.rlimits.NOFILE
    if (ceiling === undefined || !nofile) return
    const target = clampTarget(nofile, ceiling)
    if (!target) return
    const base = {
      type: 'action' as const,
      action: 'clamp-rlimit' as const,
      pid: info.pid,
      cmdline: info.cmdline,
      reason: `NOFILE ${nofile.soft}/${nofile.hard} is above the ceiling ${ceiling} (--clamp-nofile)`,
      rlimit: { name: 'NOFILE', from: { soft: nofile.soft, hard: nofile.hard }, to: target },
    }
    const refused = protectedReason(info.pid, info.ppid, this.#options.actOnEntrypoint)
    if (refused) return this.#options.emit({ ...base, result: 'skipped', detail: `left alone: ${refused} (see --act-on-entrypoint)` })
    const outcome = await setNofile(info.pid, target.soft, target.hard)
    const age = this.#ageMs(info)
    this.#options.emit({
      ...base,
      result: outcome.result,
      ...(outcome.result !== 'done' && { detail: outcome.reason, remedy: outcome.remedy }),
      ...(age !== undefined && { afterStartMs: age }),
    })
  }

  /**
   * After an incident went out: stop or freeze the runaway if it is still heading for
   * the limit, so the container's other processes live on.
   */
  async afterIncident(info: ProcessInfo, incidentId: string, stillRunaway: boolean): Promise<void> {
    const what = this.#options.onRunaway
    if (what === 'none') return
    const base = { type: 'action' as const, action: what, pid: info.pid, cmdline: info.cmdline, incidentId }
    if (!stillRunaway)
      return this.#options.emit({
        ...base,
        reason: 'the incident is out',
        result: 'skipped',
        detail: 'no longer predicted to reach the limit',
      })
    const reason = 'still predicted to reach the memory limit after its stack was taken'
    const refused = protectedReason(info.pid, info.ppid, this.#options.actOnEntrypoint)
    if (refused)
      return this.#options.emit({ ...base, reason, result: 'skipped', detail: `left alone: ${refused} (see --act-on-entrypoint)` })
    if (what === 'stop') {
      const outcome = await stopProcess(this.#options.procRoot, info.pid, info.startTime, this.#options.stopGraceMs)
      return this.#options.emit({
        ...base,
        reason,
        result: outcome === 'gone' ? 'failed' : 'done',
        detail: outcome === 'gone' ? 'it was gone before the signal' : `ended by ${outcome === 'killed' ? 'SIGKILL' : 'SIGTERM'}`,
      })
    }
    const freeze = await freezeProcess(this.#options.procRoot, info.pid, info.startTime, FREEZE_CONFIRM_MS)
    if (freeze.outcome === 'gone') return this.#options.emit({ ...base, reason, result: 'failed', detail: 'it was gone before the signal' })
    // Pending or stopped, the fallback timer runs: a stop that lands later must not last forever.
    const timer = setTimeout(
      () => void this.#unfreeze(info.pid, `frozen for ${this.#options.freezeMaxMs} ms (--freeze-max)`),
      this.#options.freezeMaxMs,
    )
    timer.unref()
    this.#frozen.set(info.pid, { info, timer })
    const then = `released or stopped after ${this.#options.freezeMaxMs} ms`
    this.#options.emit(
      freeze.outcome === 'stopped'
        ? { ...base, reason, result: 'done', detail: `SIGSTOP: attach with py-spy dump --pid ${info.pid} or gdb; ${then}` }
        : {
            ...base,
            reason,
            result: 'failed',
            detail:
              `SIGSTOP sent, but ${FREEZE_CONFIRM_MS} ms later it was still in state ${freeze.state} ` +
              `(D: inside the kernel, often reclaiming memory; it stops when it leaves); ${then}`,
          },
    )
  }

  /** Releases every frozen process: an agent that stops must not leave them stopped. Idempotent. */
  async stop(): Promise<void> {
    await Promise.all([...this.#frozen.keys()].map(pid => this.#unfreeze(pid, 'oomwatch is stopping', 'release')))
  }

  async #unfreeze(pid: number, reason: string, how: 'release' | 'stop' = this.#options.freezeFallback): Promise<void> {
    const frozen = this.#frozen.get(pid)
    if (!frozen) return
    this.#frozen.delete(pid)
    clearTimeout(frozen.timer)
    const { info } = frozen
    const base = { type: 'action' as const, pid, cmdline: info.cmdline, reason }
    if (how === 'release') {
      const done = signalSame(this.#options.procRoot, pid, info.startTime, 'SIGCONT')
      return this.#options.emit({ ...base, action: 'release', result: done ? 'done' : 'failed', ...(!done && { detail: 'it was gone' }) })
    }
    const outcome = await stopProcess(this.#options.procRoot, pid, info.startTime, this.#options.stopGraceMs)
    this.#options.emit({
      ...base,
      action: 'stop',
      result: outcome === 'gone' ? 'failed' : 'done',
      detail: outcome === 'gone' ? 'it was gone' : `ended by ${outcome === 'killed' ? 'SIGKILL' : 'SIGTERM'}`,
    })
  }

  /** How long after its start the process was acted on, from /proc/uptime; undefined on fixture trees. */
  #ageMs(info: ProcessInfo): number | undefined {
    try {
      const uptime = parseUptime(readFileSync(`${this.#options.procRoot}/uptime`, 'utf8'))
      return uptime === undefined ? undefined : Math.round(processAgeMs(info.startTime, uptime))
    } catch {
      return undefined // the figure is a detail of the action event; the action itself is done
    }
  }
}
