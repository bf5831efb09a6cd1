import { createHash, timingSafeEqual } from 'node:crypto'

/**
 * True when an `Authorization` header carries `Bearer <token>`. Both sides are hashed
 * first so the comparison takes the same time whatever the length or content sent.
 */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer (.+)$/i.exec(header ?? '')
  const sent = match?.[1] ?? ''
  return timingSafeEqual(digest(sent), digest(token)) && sent.length > 0
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}
