import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import type { Logger } from 'pino'
import si from 'systeminformation'
import { captureStack } from './capture/capture.js'
import { locatePyspy, type PyspyInfo } from './capture/pyspy-locate.js'
import { redactConfig, type Config } from './config.js'
import { EventHub, type OomwatchEvent } from './events.js'
import { Journal } from './journal/journal.js'
import { logSink } from './log.js'
import { ProcReader } from './proc/reader.js'
import { SelfUsage } from './self-usage.js'
import { StreamServer } from './stream/server.js'
import { Watcher } from './watch/watcher.js'

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
    const watcher = new Watcher({
      config,
      proc: new ProcReader(config.procRoot),
      hostMemoryBytes: (await si.mem()).total,
      pageSize: pageSize(),
      ownPids: new Set([process.pid]),
      emit: payload => hub.emit(payload),
      capture: (pid, signal) => captureStack(pid, { bin: 'path' in pyspy ? pyspy.path : undefined, timeoutMs: config.pyspyTimeoutMs, signal }),
      logger,
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
    const server = new StreamServer({
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
    const agent = new Agent({ config, pyspy, port, hub, journal, watcher, server, self, logger })
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
      const { watcher, server, self, journal, logger } = this.#parts
      await watcher.stop()
      await server.close()
      self.stop()
      journal.close()
      logger.info('oomwatch stopped')
      logger.flush()
    })()
    return this.#stopping
  }
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
