import { readFileSync } from 'node:fs'
import { totalmem } from 'node:os'
import type { Logger } from 'pino'
import { Actor } from './act/actor.js'
import { Degradations } from './agent/degradations.js'
import {
  actionsEnabled,
  AgentConfigError,
  cannotListen,
  checkProcReadable,
  journalSink,
  openJournalOrMemory,
  pageSize,
  streamToken,
} from './agent/setup.js'
import { readyNote, Status } from './agent/status.js'
import { captureStack } from './capture/capture.js'
import { FlamegraphRecorder, FlamegraphStore } from './capture/flamegraph.js'
import { locatePyspy } from './capture/pyspy-locate.js'
import { redactConfig, type Config } from './config.js'
import { EventHub } from './hub.js'
import type { Journal } from './journal/journal.js'
import { logSink } from './log.js'
import { Metrics } from './metrics/registry.js'
import { loadPageAssets } from './page/assets.js'
import { MemoryHistory, memoryFrame, SAMPLE_MS } from './page/memory-history.js'
import { isRunning } from './proc/identity.js'
import { ProcReader } from './proc/reader.js'
import type { PyspyInfo } from './protocol/values.js'
import { SelfUsage } from './self-usage.js'
import { connectionCap, ownNofileSoft } from './stream/fd-budget.js'
import { Greeter } from './stream/greeting.js'
import { ProbeServer } from './stream/probe-server.js'
import { StreamServer } from './stream/server.js'
import { StreamStats } from './stream/stats.js'
import { Watcher } from './watch/watcher.js'

export { AgentConfigError } from './agent/setup.js'
export type { DegradeReason } from './agent/degradations.js'

/** The package version, from package.json beside src/ and dist/. */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version

/** What an agent is made of; built by `Agent.start`, ended by `stop` in the reverse order. */
interface Parts {
  config: Config
  pyspy: PyspyInfo
  port: number
  /** Where `/metrics` and the probes are served without the token, when `--metrics-port` is set. */
  metricsPort: number | undefined
  hub: EventHub
  journal: Journal
  watcher: Watcher
  server: StreamServer
  probes: ProbeServer | undefined
  self: SelfUsage
  logger: Logger
  flamegraphs: FlamegraphStore
  /** A step of capture, after the incident: records a flame graph. */
  recorder: FlamegraphRecorder | undefined
  /** The actions the user enabled; stopped after the watcher, which calls its hooks. */
  actor: Actor | undefined
  /** What the server and the metrics read; `/livez` answers 503 once stop() begins. */
  status: Status
}

/**
 * Wires readers, watch loop, capture, hub and sinks (one way: a sink never calls back into
 * the core), and owns their lifecycle: one `start`, one idempotent `stop`.
 */
export class Agent {
  readonly config: Config
  readonly pyspy: PyspyInfo
  readonly port: number
  readonly metricsPort: number | undefined
  /** Every event goes through it; subscribe to see them (tests, future sinks). */
  readonly hub: EventHub
  readonly #parts: Parts
  #stopping: Promise<void> | undefined

  private constructor(parts: Parts) {
    this.#parts = parts
    this.config = parts.config
    this.pyspy = parts.pyspy
    this.port = parts.port
    this.metricsPort = parts.metricsPort
    this.hub = parts.hub
  }

  /** Finds py-spy, opens the journal, starts the stream server, then the watching. */
  static async start(config: Config, logger: Logger): Promise<Agent> {
    const degradations = new Degradations(logger)
    const pyspy = await locatePyspy(config.pyspy)
    if ('error' in pyspy && config.pyspy !== undefined) {
      const message = `${pyspy.error}; ${pyspy.remedy}`
      if (!config.failOpen) throw new AgentConfigError(message, 'pyspy-missing')
      degradations.add('pyspy-missing', `${message}; incidents carry no stack meanwhile`)
    }
    if ('error' in pyspy && config.pyspy === undefined)
      logger.warn({ pyspy }, `py-spy not found: incidents will carry no stack. ${pyspy.remedy}`)
    checkProcReadable(config.procRoot)
    // Before the journal opens: a token file that went bad since the configuration was read ends the start here.
    const token = streamToken(config, logger)
    const journal = openJournalOrMemory(config, degradations)
    if (journal.skippedLines > 0) {
      logger.warn(
        { skippedLines: journal.skippedLines },
        'journal lines that are not valid events were skipped (a write cut short by a crash, or JSON that is no event)',
      )
    }
    if (journal.dirModeError)
      logger.warn({ err: journal.dirModeError }, 'the journal directory could not be made 0700 (owner only); it is used as it is')
    const self = new SelfUsage()
    await self.start()
    const startedAt = new Date().toISOString()
    const hub = new EventHub(journal.lastSeq)
    const emit = hub.emit.bind(hub)

    // The core: the watch loop, and the capture steps after an incident.
    const flamegraphs = new FlamegraphStore(config.journalDir)
    const recorder =
      config.flamegraph && 'path' in pyspy
        ? new FlamegraphRecorder({
            bin: pyspy.path,
            seconds: config.flamegraphSeconds,
            maxKept: config.flamegraphMax,
            store: flamegraphs,
            isAlive: (pid, startTime) => isRunning(config.procRoot, pid, startTime),
            emit,
            logger,
          })
        : undefined
    const actor = actionsEnabled(config) ? new Actor({ ...config, emit }) : undefined
    const watcher = new Watcher({
      config,
      proc: new ProcReader(config.procRoot),
      hostMemoryBytes: totalmem(),
      pageSize: pageSize(),
      ownPids: new Set([process.pid]),
      emit,
      capture: (pid, signal) =>
        captureStack(pid, { bin: 'path' in pyspy ? pyspy.path : undefined, timeoutMs: config.pyspyTimeoutMs, signal }),
      logger,
      ...(actor && { actor }),
      ...(recorder && { afterIncident: (incident, { info }) => recorder.afterIncident(incident, info.startTime) }),
      // Memory frames take no seq: a client replaying by seq sees no gap for them.
      memorySamples: { everyMs: SAMPLE_MS, take: readings => hub.publish(memoryFrame(readings, Date.now())) },
    })

    // The sinks: each reads the events, or a narrow status, and nothing else.
    const status = new Status(watcher, [readyNote(pyspy), ...degradations.notes()].join('\n'))
    const history = new MemoryHistory()
    const streamStats = new StreamStats()
    const metrics = new Metrics({
      version: VERSION,
      pyspyFound: 'path' in pyspy,
      status,
      stream: streamStats,
      pidLabels: config.metricsPid,
      degraded: () => degradations.reasons(),
    })
    const hello = { version: VERSION, startedAt, config: redactConfig(config), pyspy }
    const greeting = new Greeter({ hub, journal, hello, status, usage: self, history })
    const cap = connectionCap(config.maxConnections, ownNofileSoft())
    const server = new StreamServer(
      {
        host: config.host,
        port: config.port,
        token,
        allowedOrigins: config.allowedOrigins,
        allowedHosts: config.allowedHosts,
        maxConnections: cap.maxConnections,
        requestTimeoutMs: config.requestTimeoutMs,
        heartbeatMs: config.heartbeatMs,
        maxClients: config.maxClients,
        clientBufferBytes: config.clientBufferBytes,
        page: loadPageAssets(),
      },
      { status, greeting, metrics, flamegraphs, stats: streamStats, logger },
    )
    const probes =
      config.metricsPort === undefined
        ? undefined
        : new ProbeServer({ host: config.host, port: config.metricsPort, status, metrics, logger })
    let port: number
    let metricsPort: number | undefined
    try {
      port = await server.listen().catch(cannotListen(config.host, config.port, '--port / OOMWATCH_PORT'))
      metricsPort = await probes
        ?.listen()
        .catch(cannotListen(config.host, config.metricsPort ?? 0, '--metrics-port / OOMWATCH_METRICS_PORT'))
    } catch (error) {
      await server.close()
      journal.close()
      throw error
    }
    // The journal first: an event is on disk before any client or log line has it.
    hub.subscribe(journalSink(journal, logger))
    hub.subscribe(logSink(logger))
    hub.subscribeAll(history.sink)
    hub.subscribeAll(server.sink)
    hub.subscribe(metrics.sink)

    const parts = {
      config,
      pyspy,
      port,
      metricsPort,
      hub,
      journal,
      watcher,
      server,
      probes,
      self,
      logger,
      flamegraphs,
      recorder,
      actor,
      status,
    }
    logger.info(
      {
        port,
        metricsPort,
        host: config.host,
        pyspy,
        version: VERSION,
        lastSeq: journal.lastSeq,
        rssBytes: self.current.rssBytes,
        connections: cap,
      },
      `oomwatch ${VERSION} listening on ws://${config.host}:${port}/`,
    )
    watcher.start()
    return new Agent(parts)
  }

  /** Stops watching (killing any py-spy), closes clients with 1001, flushes the journal and log. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      const { watcher, actor, server, probes, self, journal, logger, flamegraphs, recorder, status } = this.#parts
      status.stopping = true
      // The watcher waits for its after-incident steps: a recording under way is killed meanwhile, not waited out.
      await Promise.all([watcher.stop(), recorder?.stop()])
      await actor?.stop()
      await Promise.all([server.close(), probes?.close()])
      self.stop()
      journal.close()
      flamegraphs.remove()
      logger.info('oomwatch stopped')
      logger.flush()
    })()
    return this.#stopping
  }
}
