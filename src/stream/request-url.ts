import type { IncomingMessage } from 'node:http'

/**
 * The request's URL, or undefined when its target does not parse: the HTTP parser lets
 * `GET http://[ HTTP/1.1` through, and a throw here would be an uncaught exception that
 * ends the agent. (A server request always has a `url`.)
 */
export function requestUrl(req: IncomingMessage): URL | undefined {
  try {
    return new URL(String(req.url), 'http://agent')
  } catch {
    return undefined
  }
}
