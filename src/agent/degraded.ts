import type { Logger } from 'pino'
import { Metrics } from '../metrics/registry.js'
import { ProbeServer } from '../stream/probe-server.js'
import type { DegradeReason } from './degradations.js'

/** How often a degraded agent says again why: its first line may be long gone from `kubectl logs --tail`. */
const REMIND_MS = 5 * 60_000
/** How often it looks whether the cause is gone (a Secret mounted since, say). */
const RECHECK_MS = 5000

/** What a degraded agent knows: why it could not start, and where to answer probes. */
export interface DegradedStart {
  reason: DegradeReason
  /** What went wrong and how to fix it, as a normal start would have printed it. */
  message: string
  version: string
  host: string
  /** Where to listen: the metrics port when one parsed, else the stream's. */
  port: number
  logger: Logger
  /**
   * True once the cause is gone (the configuration now loads: a token Secret created after
   * the pod started). The agent then exits 0, and its restart (the kubelet's, for a sidecar)
   * starts it in full.
   */
  recovered?: (() => boolean) | undefined
  /** Called once `recovered` says so, after the port is closed. */
  onRecovered?: (() => void) | undefined
}

/** A degraded agent: running until stopped. */
export interface Degraded {
  /** Where it answers, or undefined when it could not listen either. */
  readonly port: number | undefined
  stop(): Promise<void>
}

/**
 * The fail-open start (`--fail-open`) of an agent whose start could not finish: instead of
 * exiting 2 (which, in a pod, is a crash loop that may hold a native sidecar's app back), it
 * stays up, watches nothing, and says why: an error log line now and every few minutes,
 * `/readyz` 503 with the reason, `/livez` 200 (restarting would not fix a setting), and
 * `oomwatch_degraded{reason} 1` on `/metrics`. Nothing watched is served, so no token is needed.
 * Where even that port cannot be opened, it stays up and logs.
 */
export async function runDegraded(start: DegradedStart): Promise<Degraded> {
  const { logger, reason, message } = start
  const say = () => logger.error({ degraded: reason }, `oomwatch runs degraded, watching nothing (${reason}): ${message}`)
  say()
  const reminder = setInterval(say, REMIND_MS)
  const metrics = new Metrics({
    version: start.version,
    pyspyFound: undefined,
    status: { processes: () => [], containers: () => [] },
    stream: { clients: 0, droppedEvents: 0, refusedConnections: 0 },
    degraded: () => [reason],
  })
  const status = { ready: false, live: true, readyNote: undefined, degraded: `${reason}: ${message}` }
  const server = new ProbeServer({ host: start.host, port: start.port, status, metrics, logger })
  let port: number | undefined
  try {
    port = await server.listen()
    logger.info({ port, host: start.host }, `oomwatch ${start.version}, degraded: /livez, /readyz and /metrics on ${start.host}:${port}`)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message
    logger.error({ degraded: reason, host: start.host, port: start.port }, `cannot listen on ${start.host}:${start.port} (${code}) either`)
  }
  const { recovered } = start
  const recheck =
    recovered &&
    setInterval(() => {
      if (!recovered()) return
      logger.info({ degraded: reason }, `the cause is gone (${reason}): exiting, for a restart in full`)
      void stop().then(start.onRecovered)
    }, RECHECK_MS)
  const stop = async () => {
    clearInterval(reminder)
    if (recheck) clearInterval(recheck)
    if (port !== undefined) await server.close()
  }
  return { port, stop }
}
