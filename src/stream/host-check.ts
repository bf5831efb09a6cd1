import { isIP } from 'node:net'

/** `name` or `name:port`, `[v6]` or `[v6]:port`: the shapes a browser sends. */
const HOST = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::\d{1,5})?$/i

/**
 * Whether a request addressed to `host` (its `Host` header) may be served without a token.
 * DNS rebinding gives a page of the attacker's (http://evil.example) this agent's address,
 * and the browser then sends `Host: evil.example` with every request of that page. So a
 * name is accepted only when it is `localhost` or listed in `allowed`. An IP address is
 * always accepted: a page whose origin is an IP address is served from that address, and a
 * rebinding page's origin is a name. No `Host` at all is not a browser, which always sends it.
 *
 * @param allowed - host names, in lower case, without port (`--allowed-hosts`)
 */
export function hostAllowed(host: string | undefined, allowed: readonly string[] = []): boolean {
  if (host === undefined) return true
  const match = HOST.exec(host)
  if (!match) return false
  const name = match[1]!.toLowerCase()
  if (name.startsWith('[')) return isIP(name.slice(1, -1)) === 6
  return name === 'localhost' || isIP(name) === 4 || allowed.includes(name)
}

/** What a refused client is told: why, and what to set. */
export function misdirected(host: string | undefined): string {
  return (
    `this agent is not known as "${String(host).slice(0, 100)}": without a token it answers only requests addressed to ` +
    'localhost or an IP address (a guard against DNS rebinding); add the name to --allowed-hosts / OOMWATCH_ALLOWED_HOSTS, ' +
    'or set a token (OOMWATCH_TOKEN)'
  )
}
