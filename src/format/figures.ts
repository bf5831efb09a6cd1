/**
 * Durations, fractions and rlimit values as people read them. Pure and free of Node APIs:
 * the server's text mode and the live page (in the browser) print them alike.
 */
import { formatBytes } from './bytes.js'
import type { RlimitValue } from '../protocol/values.js'

/** Milliseconds as seconds with one decimal: `3.0 s`. */
export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`
}

/** A fraction (0.56) as a whole percentage: `56%`. */
export function formatPercent(fraction: number): string {
  return `${Math.round(fraction * 100)}%`
}

/** One rlimit value in its row's units: `unlimited`, `8 MiB` for bytes, else the plain number. */
export function formatRlimitValue(value: RlimitValue, units: string): string {
  if (value === 'unlimited') return 'unlimited'
  return units === 'bytes' ? formatBytes(value) : String(value)
}
