import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { totalmem } from 'node:os'
import type { Logger } from 'pino'
import { Actor } from './act/actor.js'
import { captureStack } from './capture/capture.js'
import { FlamegraphRecorder, FlamegraphStore } from './capture/flamegraph.js'
import { locatePyspy } from './capture/pyspy-locate.js'
import { redactConfig, type Config } from './config.js'
import { Journal } from './journal/journal.js'
import { logSink } from './log.js'
import { Metrics } from './metrics/registry.js'
import { MemoryHistory, memoryFrame, SAMPLE_MS } from './page/memory-history.js'
import { PAGE_HTML } from './page/page.js'
import { ProcReader } from './proc/reader.js'
import { SelfUsage } from './self-usage.js'
import { StreamServer } from './stream/server.js'
import { Watcher } from './watch/watcher.js'
import type { PyspyInfo } from './protocol/values.js'
import { EventHub } from './hub.js'
import type { OomwatchEvent } from './protocol/events.js'

/** The package version, from package.json beside src/ and dist/. */
export const VERSION: string = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version

/** Thrown by `Agent.start` for a setting that cannot work; the CLI exits 2 on it. */
export class AgentConfigError extends Error {
  readonly code = 'AGENT_CONFIG'
}

/** Memory kept for fast replays; the journal on disk holds more. */
const REPLAY_MEMORY_BYTES = 4 << 20

/** What an agent is made of; built by `Agent.start`. */
interface Parts {
  config: Config
  pyspy: PyspyInfo
  port: number
  hub: EventHub
  journal: Journal
  watcher: Watcher
  server: StreamServer
  self: SelfUsage
  logger: Logger
  flamegraphs: FlamegraphStore
  recorder: FlamegraphRecorder | undefined
  /** The actions the user enabled; stopped after the watcher, which calls its hooks. */
  actor: Actor | undefined
  /** Samples memory for the live page. */
  memoryTimer: NodeJS.Timeout
  /** Set when stop() begins: `/livez` then answers 503. */
  lifecycle: { stopping: boolean }
}

/**
 * Wires the readers, detector, capturer and sinks, and owns their lifecycle: one
 * `start`, one idempotent `stop` that ends every timer, child and socket.
 */
export class Agent {
  readonly config: Config
  readonly pyspy: PyspyInfo
  readonly port: number
  /** Every event goes through it; subscribe to see them (tests, future sinks). */
  readonly hub: EventHub
  readonly #parts: Parts
  #stopping: Promise<void> | undefined

  private constructor(parts: Parts) {
    this.#parts = parts
    this.config = parts.config
    this.pyspy = parts.pyspy
    this.port = parts.port
    this.hub = parts.hub
  }

  /** Finds py-spy, opens the journal, starts the stream server, then the watching. */
  static async start(config: Config, logger: Logger): Promise<Agent> {
    const pyspy = await locatePyspy(config.pyspy)
    if ('error' in pyspy && config.pyspy !== undefined) throw new AgentConfigError(`${pyspy.error}; ${pyspy.remedy}`)
    if ('error' in pyspy) logger.warn({ pyspy }, `py-spy not found: incidents will carry no stack. ${pyspy.remedy}`)
    const journal = openJournal(config)
    if (journal.skippedLines > 0) logger.warn({ skippedLines: journal.skippedLines }, 'journal lines that did not parse were skipped (a write cut short by a crash)')
    const self = new SelfUsage()
    await self.start()
    const startedAt = new Date().toISOString()
    const hub = new EventHub(journal.lastSeq)
    const actor = actionsEnabled(config) ? new Actor({ ...config, emit: payload => hub.emit(payload) }) : undefined
    const watcher = new Watcher({
      config,
      proc: new ProcReader(config.procRoot),
      hostMemoryBytes: totalmem(),
      pageSize: pageSize(),
      ownPids: new Set([process.pid]),
      emit: payload => hub.emit(payload),
      capture: (pid, signal) => captureStack(pid, { bin: 'path' in pyspy ? pyspy.path : undefined, timeoutMs: config.pyspyTimeoutMs, signal }),
      logger,
      ...(actor && { actor }),
    })
    const greet = (since: number | undefined): OomwatchEvent[] => {
      const replay = since === undefined ? undefined : journal.since(since)
      const hello = hub.greet({
        type: 'hello',
        version: VERSION,
        startedAt,
        config: redactConfig(config),
        pyspy,
        agent: self.current,
        watching: watcher.processes(),
        ...(replay && since !== undefined && { replay: { since, count: replay.events.length, missed: replay.missed } }),
      })
      return [hello, ...(replay?.events ?? [])]
    }
    const lifecycle = { stopping: false }
    const flamegraphs = new FlamegraphStore(config.journalDir)
    const history = new MemoryHistory()
    const stamp = <P extends object>(payload: P) => ({ ...payload, seq: hub.lastSeq, ts: new Date().toISOString() })
    const metrics: Metrics = new Metrics({
      version: VERSION,
      pyspyFound: 'path' in pyspy,
      processes: () => watcher.processes(),
      clients: () => server.clientCount,
      droppedEvents: () => server.droppedEvents,
    })
    const server: StreamServer = new StreamServer({
      host: config.host,
      port: config.port,
      ...(config.token !== undefined && { token: config.token }),
      ...(config.allowedOrigins !== undefined && { allowedOrigins: config.allowedOrigins }),
      heartbeatMs: config.heartbeatMs,
      maxClients: config.maxClients,
      clientBufferBytes: config.clientBufferBytes,
      greet,
      clientError: message => hub.greet({ type: 'error', code: 'CLIENT_MESSAGE_UNSUPPORTED', message }),
      isReady: () => watcher.ready,
      readyNote: () => ('path' in pyspy ? `py-spy ${pyspy.version} at ${pyspy.path}` : `py-spy missing: ${pyspy.error}; incidents will carry no stack (${pyspy.remedy})`),
      isLive: () => !lifecycle.stopping && watcher.alive,
      metrics: () => metrics.text(),
      flamegraphFile: id => flamegraphs.file(id),
      page: PAGE_HTML,
      memoryHistory: () => stamp(history.history()),
      logger,
    })
    const port = await server.listen().catch((error: NodeJS.ErrnoException) => {
      journal.close()
      throw new AgentConfigError(`cannot listen on ${config.host}:${config.port} (${error.code ?? error.message}): choose another --port / OOMWATCH_PORT or --host / OOMWATCH_HOST`)
    })
    // The journal first: an event is on disk before any client or log line has it.
    let journalFailed = false
    hub.subscribe(event => {
      try {
        journal.append(event)
      } catch (error) {
        if (!journalFailed) logger.error({ err: (error as Error).message }, 'the journal cannot be written; events still stream and log, but a restart will not replay them')
        journalFailed = true
      }
    })
    hub.subscribe(logSink(logger))
    hub.subscribe(event => server.broadcast(event))
    hub.subscribe(metrics.sink)
    // Last: a flame graph starts once every other sink has the incident.
    const recorder =
      config.flamegraph && 'path' in pyspy
        ? new FlamegraphRecorder({
            bin: pyspy.path,
            seconds: config.flamegraphSeconds,
            maxKept: config.flamegraphMax,
            store: flamegraphs,
            isAlive: isAlive(new ProcReader(config.procRoot)),
            emit: payload => hub.emit(payload),
            logger,
          })
        : undefined
    if (recorder) hub.subscribe(recorder.onEvent)
    const memoryTimer = setInterval(() => {
      const readings = watcher.memory()
      const now = Date.now()
      history.record(readings, now)
      if (server.clientCount > 0) server.broadcastMemory(stamp(memoryFrame(readings, now)))
    }, SAMPLE_MS).unref()
    const agent = new Agent({ config, pyspy, port, hub, journal, watcher, server, self, logger, flamegraphs, recorder, actor, memoryTimer, lifecycle })
    logger.info(
      { port, host: config.host, pyspy, version: VERSION, lastSeq: journal.lastSeq, rssBytes: self.current.rssBytes },
      `oomwatch ${VERSION} listening on ws://${config.host}:${port}/`,
    )
    watcher.start()
    return agent
  }

  /** Stops watching (killing any py-spy), closes clients with 1001, flushes the journal and log. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      const { watcher, actor, server, self, journal, logger, flamegraphs, recorder, memoryTimer, lifecycle } = this.#parts
      lifecycle.stopping = true
      clearInterval(memoryTimer)
      await watcher.stop()
      await actor?.stop()
      await recorder?.stop()
      await server.close()
      self.stop()
      journal.close()
      flamegraphs.remove()
      logger.info('oomwatch stopped')
      logger.flush()
    })()
    return this.#stopping
  }
}

/** True while `pid` runs and is not a zombie: a flame graph of it can start. */
function isAlive(proc: ProcReader): (pid: number) => boolean {
  return pid => {
    try {
      const stat = proc.stat(pid)
      return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X'
    } catch {
      return false
    }
  }
}

/** Every action is off unless the user enabled it. */
function actionsEnabled(config: Config): boolean {
  return config.clampNofile !== undefined || config.onRunaway !== 'none'
}

function openJournal(config: Config): Journal {
  try {
    return new Journal({ ...(config.journalDir !== undefined && { dir: config.journalDir }), maxBytes: config.journalMaxBytes, memoryBytes: REPLAY_MEMORY_BYTES })
  } catch (error) {
    throw new AgentConfigError(
      `cannot use the journal directory ${config.journalDir} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): ` +
        'mount a writable volume there (an emptyDir), or unset --journal-dir / OOMWATCH_JOURNAL_DIR',
    )
  }
}

/** RSS in /proc/<pid>/stat is in pages; 4 KiB unless the kernel says otherwise (arm64 may use 64 KiB). */
function pageSize(): number {
  try {
    return Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim()) || 4096
  } catch {
    /* c8 ignore next */ return 4096 // getconf is part of libc-bin; absent only on exotic images
  }
}
