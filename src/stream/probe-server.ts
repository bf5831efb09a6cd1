import type * as Http from 'node:http'
import type { Server } from 'node:http'
import { createRequire } from 'node:module'
import type { Logger } from 'pino'
import { DEFAULT_LIMITS, guardConnections, serverTimeouts } from './connection-guard.js'
import { requestUrl } from './request-url.js'
import { answerProbe, reply, serveMetrics, type MetricsSource, type ProbeStatus } from './routes.js'

// As in server.ts: node:http through require keeps undici unloaded on Node 24.
const require = createRequire(import.meta.url)
const { createServer } = require('node:http') as typeof Http

/** Where the probe server listens, and what it serves. */
export interface ProbeServerOptions {
  host: string
  /** 0 picks a free port. */
  port: number
  status: ProbeStatus
  metrics: MetricsSource
  logger: Logger
}

/**
 * `/metrics`, `/livez` and `/readyz` on a port of their own, without the token: Prometheus
 * scrapes it by pod IP (deploy/podmonitor.yaml, or a scrape config) and the kubelet probes it,
 * while the stream, its stacks and command lines stay behind the token on the other port.
 * It serves no stack and no command line beyond the command names the metrics are labelled with.
 */
export class ProbeServer {
  readonly #http: Server
  readonly #options: ProbeServerOptions
  readonly #unguard: () => void

  constructor(options: ProbeServerOptions) {
    this.#options = options
    const { status, metrics, logger } = options
    this.#http = createServer(serverTimeouts(DEFAULT_LIMITS), (req, res) => {
      const path = requestUrl(req)?.pathname
      if (path === undefined) return reply(res, 400, 'the request target is not a URL\n')
      if (answerProbe(path, status, res)) return
      if (path !== '/metrics') return reply(res, 404, 'not found: this port serves /metrics, /livez and /readyz\n')
      serveMetrics(res, metrics)
    })
    this.#unguard = guardConnections(this.#http, DEFAULT_LIMITS, (what, remote) =>
      logger.warn({ what, remote }, `metrics port: ${DEFAULT_LIMITS.maxConnections} connections open`),
    )
  }

  /** Starts listening; resolves with the bound port. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#http.once('error', reject)
      this.#http.listen(this.#options.port, this.#options.host, () => {
        this.#http.off('error', reject)
        resolve((this.#http.address() as { port: number }).port)
      })
    })
  }

  /** Stops listening and closes its connections. */
  close(): Promise<void> {
    this.#unguard()
    return new Promise(resolve => {
      this.#http.close(() => resolve())
      this.#http.closeAllConnections()
    })
  }
}
