/** Byte counts as people read them. Pure and free of Node APIs: the live page uses it too. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'] as const

/**
 * Formats a byte count (or a rate) for people: binary units, at most one decimal, no
 * trailing `.0`: `812 B`, `256 MiB`, `1.5 GiB`. Negative values (shrinking memory) keep
 * their sign. Not for machines: events carry bytes as integers.
 */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return `${n} B`
  if (n < 0) {
    const magnitude = formatBytes(-n)
    // -0.01 bytes rounds to "0 B"; a minus sign there would only confuse.
    return magnitude.startsWith('0 ') ? magnitude : `-${magnitude}`
  }
  let value = n
  let unit = 0
  // Compare the rounded value so 1048575 B reads "1 MiB", not "1024 KiB".
  while (unit < UNITS.length - 1 && Math.round(value * 10) / 10 >= 1024) {
    value /= 1024
    unit++
  }
  return `${Math.round(value * 10) / 10} ${UNITS[unit]}`
}
