import pidusage from 'pidusage'
import type { AgentUsage } from './protocol/events.js'

/**
 * The agent's own CPU and RSS, sampled with pidusage every `intervalMs` (it reads
 * /proc/self/stat; no process is spawned after its first call), so `hello` shows what
 * the sidecar costs. CPU is over the last interval, so it is left out until two
 * samples exist.
 */
export class SelfUsage {
  #usage: AgentUsage = { pid: process.pid }
  #samples = 0
  #timer: NodeJS.Timeout | undefined

  /** Takes the first sample (pidusage's one-time getconf happens here, not in a race). */
  async start(intervalMs = 10_000): Promise<void> {
    await this.#sample()
    this.#timer = setInterval(() => void this.#sample(), intervalMs)
    this.#timer.unref()
  }

  get current(): AgentUsage {
    return this.#usage
  }

  /** Stops sampling and drops pidusage's history (its timer and open file). Idempotent. */
  stop(): void {
    clearInterval(this.#timer)
    pidusage.clear()
  }

  async #sample(): Promise<void> {
    try {
      const stats = await pidusage(process.pid)
      this.#samples++
      this.#usage = { pid: process.pid, rssBytes: stats.memory, ...(this.#samples > 1 && { cpuPercent: Math.round(stats.cpu * 10) / 10 }) }
    } catch {
      /* c8 ignore next */
      // /proc/self/stat is always there for a running process; keep the last figures
    }
  }
}
