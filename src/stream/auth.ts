import { createHash, timingSafeEqual } from 'node:crypto'

/**
 * True when an `Authorization` header carries `Bearer <token>`. Both sides are hashed
 * first so the comparison takes the same time whatever the length or content sent.
 */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer (.+)$/i.exec(header ?? '')
  return sentTokenMatches(match?.[1] ?? '', token)
}

/**
 * True when a `Sec-WebSocket-Protocol` header offers `bearer.<token>`: how a browser,
 * which cannot set headers on a WebSocket, sends the token. Every offer is compared, in
 * constant time like the header.
 */
export function protocolTokenMatches(header: string | undefined, token: string): boolean {
  let matched = false
  for (const offer of (header ?? '').split(',')) {
    const protocol = offer.trim()
    if (protocol.startsWith('bearer.') && sentTokenMatches(protocol.slice('bearer.'.length), token)) matched = true
  }
  return matched
}

/** True when `sent` is the token (compared in constant time); an empty one never is. */
export function sentTokenMatches(sent: string, token: string): boolean {
  return timingSafeEqual(digest(sent), digest(token)) && sent.length > 0
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}
