import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import type { Logger } from 'pino'
import si from 'systeminformation'
import { captureStack } from './capture/capture.js'
import { locatePyspy, type PyspyInfo } from './capture/pyspy-locate.js'
import { redactConfig, type Config } from './config.js'
import { EventHub } from './events.js'
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

/**
 * Wires the readers, detector, capturer and sinks, and owns their lifecycle: one
 * `start`, one idempotent `stop` that ends every timer, child and socket.
 */
export class Agent {
  readonly #watcher: Watcher
  readonly #server: StreamServer
  readonly #self: SelfUsage
  readonly #logger: Logger
  #stopping: Promise<void> | undefined

  private constructor(
    readonly config: Config,
    readonly pyspy: PyspyInfo,
    readonly port: number,
    /** Every event goes through it; subscribe to see them (tests, future sinks). */
    readonly hub: EventHub,
    watcher: Watcher,
    server: StreamServer,
    self: SelfUsage,
    logger: Logger,
  ) {
    this.#watcher = watcher
    this.#server = server
    this.#self = self
    this.#logger = logger
  }

  /** Finds py-spy and the host's memory, starts the stream server, then the watching. */
  static async start(config: Config, logger: Logger): Promise<Agent> {
    const pyspy = await locatePyspy(config.pyspy)
    if ('error' in pyspy && config.pyspy !== undefined) throw new AgentConfigError(`${pyspy.error}; ${pyspy.remedy}`)
    if ('error' in pyspy) logger.warn({ pyspy }, `py-spy not found: incidents will carry no stack. ${pyspy.remedy}`)
    const self = new SelfUsage()
    await self.start()
    const hub = new EventHub()
    const ownPids = new Set([process.pid])
    const bin = 'path' in pyspy ? pyspy.path : undefined
    const watcher = new Watcher({
      config,
      proc: new ProcReader(config.procRoot),
      hostMemoryBytes: (await si.mem()).total,
      pageSize: pageSize(),
      ownPids,
      emit: payload => hub.emit(payload),
      capture: pid => captureStack(pid, { bin, timeoutMs: config.pyspyTimeoutMs, onSpawn: child => ownPids.add(child) }),
      logger,
    })
    const server = new StreamServer({
      host: config.host,
      port: config.port,
      ...(config.token !== undefined && { token: config.token }),
      heartbeatMs: config.heartbeatMs,
      greet: () => hub.greet({ type: 'hello', version: VERSION, config: redactConfig(config), pyspy, agent: self.current, watching: watcher.processes() }),
      isReady: () => watcher.ready,
      logger,
    })
    const port = await server.listen().catch((error: NodeJS.ErrnoException) => {
      throw new AgentConfigError(`cannot listen on ${config.host}:${config.port} (${error.code ?? error.message}): choose another --port / OOMWATCH_PORT or --host / OOMWATCH_HOST`)
    })
    hub.subscribe(logSink(logger))
    hub.subscribe(event => server.broadcast(event))
    const agent = new Agent(config, pyspy, port, hub, watcher, server, self, logger)
    logger.info({ port, host: config.host, pyspy, version: VERSION, rssBytes: self.current.rssBytes }, `oomwatch ${VERSION} listening on ws://${config.host}:${port}/`)
    watcher.start()
    return agent
  }

  /** Stops watching, closes clients with 1001, waits for captures, flushes the log. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      await this.#watcher.stop()
      await this.#server.close()
      this.#self.stop()
      this.#logger.info('oomwatch stopped')
      this.#logger.flush()
    })()
    return this.#stopping
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
