/** The configuration as it may be shown to clients and in logs. */
import { ROWS, type Config } from './table.js'

/**
 * The configuration as JSON-safe values for the `hello` event and logs: `match` as its
 * source text, secrets (the token) as `"[redacted]"` so a client can tell that one is set.
 */
export function redactConfig(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, setting] of ROWS) {
    const value = config[key]
    if (value === undefined) continue
    out[key] = setting.secret === true ? '[redacted]' : value instanceof RegExp ? value.source : value
  }
  return out
}
