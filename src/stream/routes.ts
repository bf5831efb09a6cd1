import { createReadStream } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import { sentTokenMatches, tokenMatches } from './auth.js'
import { hostAllowed, misdirected } from './host-check.js'
import type { RefusalLog } from './refusal-log.js'
import { requestUrl } from './request-url.js'
import type { TokenSource } from './token-source.js'
import type { AgentStatus } from '../status.js'

/** One file of the live page. */
export interface PageFile {
  contentType: string
  body: string | Buffer
}

/** The Prometheus exposition, as `GET /metrics` serves it. */
export interface MetricsSource {
  text(): Promise<{ contentType: string; body: string }>
}

/** Where an incident's flame graph is kept. */
export interface FlamegraphFiles {
  /** The SVG file of an incident's flame graph, when kept. */
  file(incidentId: string): string | undefined
}

/** What the HTTP routes read. */
export interface RouteSources {
  status: ProbeStatus
  /** `/metrics` and flame graphs need it (header or `?token=`) when set; read at each request. */
  token?: TokenSource | undefined
  /** Without a token: host names a request may be addressed to besides localhost and IP addresses. */
  allowedHosts?: readonly string[] | undefined
  /** Where refusals are logged, at a bounded rate; absent: not logged. */
  refusals?: Pick<RefusalLog, 'note'> | undefined
  /** `GET /metrics`; absent: 404. */
  metrics?: MetricsSource | undefined
  /** `GET /incidents/<id>/flamegraph.svg`; absent: 404. */
  flamegraphs?: FlamegraphFiles | undefined
  /** The live page's files by URL path: `/` is the HTML (for `Accept: text/html`), the rest its script and style. */
  page?: ReadonlyMap<string, PageFile> | undefined
  logger: Logger
}

const FLAMEGRAPH_PATH = /^\/incidents\/([^/]+)\/flamegraph\.svg$/
/** The page loads its own script and style from this agent, runs nothing inline, and talks to this agent only. */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')
/**
 * py-spy's SVG runs its own script (search, zoom) and loads nothing. Sandboxed without
 * `allow-same-origin`: it runs in an opaque origin, so a script in a crafted SVG cannot
 * reach this agent's other routes or the stream as the page would.
 */
export const SVG_CSP = "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"
const NOT_LIVE = 'not live: stopping, or the watch loop has stalled\n'
const UPGRADE_REQUIRED = 'oomwatch streams events over WebSocket here: wscat -c ws://HOST:PORT/ (a browser gets the live page)\n'

/**
 * The HTTP side of the agent: `/livez`, `/readyz`, the live page, `/metrics` and flame
 * graphs. The stream itself is the WebSocket upgrade at `/`.
 */
export function routes(sources: RouteSources): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const url = requestUrl(req)
    if (url === undefined) return reply(res, 400, 'the request target is not a URL\n')
    const path = url.pathname
    const { status, page } = sources
    if (answerProbe(path, status, res)) return
    // The probes above are open to any Host: the kubelet sends the pod's IP, and they tell nothing but up or down.
    const { host } = req.headers
    if (sources.token === undefined && !hostAllowed(host, sources.allowedHosts)) {
      sources.refusals?.note('host', { remote: req.socket.remoteAddress, host }, 'refused a request addressed to an unknown host name')
      return reply(res, 421, `${misdirected(host)}\n`)
    }
    if (path === '/') return servePage(req, res, page?.get('/'))
    const asset = page?.get(path)
    if (asset) return serveAsset(req, res, asset)
    const flamegraph = FLAMEGRAPH_PATH.exec(path)
    const metrics = path === '/metrics' ? sources.metrics : undefined
    const flamegraphs = flamegraph ? sources.flamegraphs : undefined
    if (!metrics && !flamegraphs) return reply(res, 404, 'not found\n')
    if (!httpAuthorized(req, url, sources.token?.current())) {
      res.setHeader('www-authenticate', 'Bearer')
      return reply(res, 401, 'send Authorization: Bearer <token>, or ?token=<token>\n')
    }
    if (metrics) return serveMetrics(res, metrics)
    const file = flamegraphs?.file(safeDecode(flamegraph?.[1] ?? ''))
    if (file === undefined) return reply(res, 404, 'no flame graph for this incident (none was recorded, or it was pruned)\n')
    res.writeHead(200, { 'content-type': 'image/svg+xml', 'content-security-policy': SVG_CSP, 'x-content-type-options': 'nosniff' })
    createReadStream(file)
      .on('error', error => {
        sources.logger.debug({ err: error, file }, 'a flame graph could not be read')
        res.destroy()
      })
      .pipe(res)
  }
}

/**
 * `/livez` and `/readyz`, open to any Host and without the token: the kubelet sends the pod's
 * IP, and they tell nothing but up or down (and, in `/readyz`'s body, why not ready).
 *
 * @returns false when `path` is neither
 */
export function answerProbe(path: string, status: ProbeStatus, res: ServerResponse): boolean {
  if (path === '/livez') {
    if (status.live) reply(res, 200, 'ok\n')
    else reply(res, 503, NOT_LIVE)
    return true
  }
  if (path !== '/readyz') return false
  const note = status.readyNote
  if (status.degraded !== undefined) reply(res, 503, `degraded: ${status.degraded}\n`)
  else if (!status.ready) reply(res, 503, 'starting: first scan not done\n')
  else reply(res, 200, note === undefined ? 'ready\n' : `ready\n${note}\n`)
  return true
}

/** The Prometheus exposition, as both ports serve it. */
export function serveMetrics(res: ServerResponse, metrics: MetricsSource): void {
  metrics.text().then(
    ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
    // prom-client rejects only for a broken collect()
    /* c8 ignore next */ (error: Error) => reply(res, 500, `metrics failed: ${error.message}\n`),
  )
}

/** What the probes read. */
export type ProbeStatus = Pick<AgentStatus, 'ready' | 'live' | 'readyNote'> & {
  /** Why the agent runs degraded (a start that could not finish): `/readyz` says it with 503. */
  readonly degraded?: string | undefined
}

/** The page's HTML, to browsers only: anything else at `/` is told to upgrade. */
function servePage(req: IncomingMessage, res: ServerResponse, html: PageFile | undefined): void {
  if (html === undefined || !/\btext\/html\b/.test(req.headers.accept ?? '')) return reply(res, 426, UPGRADE_REQUIRED)
  res.writeHead(200, {
    'content-type': html.contentType,
    'content-security-policy': PAGE_CSP,
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-cache',
  })
  res.end(html.body)
}

/** The page's script and style: no token, like the page itself (what they show comes over the stream, which needs it). */
function serveAsset(req: IncomingMessage, res: ServerResponse, file: PageFile): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD')
    return reply(res, 405, 'the page files are served on GET\n')
  }
  res.writeHead(200, { 'content-type': file.contentType, 'x-content-type-options': 'nosniff', 'cache-control': 'no-cache' })
  res.end(file.body)
}

/** `/metrics` and flame graphs show pids, command names and stacks: the token guards them like the stream. */
function httpAuthorized(req: IncomingMessage, url: URL, token: string | undefined): boolean {
  if (token === undefined) return true
  return tokenMatches(req.headers.authorization, token) || sentTokenMatches(url.searchParams.get('token') ?? '', token)
}

/** A path segment as sent; a malformed escape stays as it is (and matches no incident). */
function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}

export function reply(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(body)
}
