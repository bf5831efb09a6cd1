/**
 * Byte quantities as people write them for Kubernetes (`512Mi`, `1G`, `1e9`) and as
 * oomwatch prints them (`512 MiB`).
 */

/** What every rejection says is accepted, so a user can fix the value from the message alone. */
const ACCEPTED =
  'expected a positive number of bytes: plain digits (268435456) or a Kubernetes quantity ' +
  'with a binary suffix Ki Mi Gi Ti Pi Ei (512Mi, 1.5Gi), a decimal suffix k M G T P E (500M, 1G) ' +
  'or an exponent (1e9)'

type Suffix = 'Ki' | 'Mi' | 'Gi' | 'Ti' | 'Pi' | 'Ei' | 'k' | 'M' | 'G' | 'T' | 'P' | 'E'

const SUFFIXES: Readonly<Record<Suffix | '', bigint>> = {
  '': 1n,
  Ki: 1n << 10n,
  Mi: 1n << 20n,
  Gi: 1n << 30n,
  Ti: 1n << 40n,
  Pi: 1n << 50n,
  Ei: 1n << 60n,
  k: 10n ** 3n,
  M: 10n ** 6n,
  G: 10n ** 9n,
  T: 10n ** 12n,
  P: 10n ** 15n,
  E: 10n ** 18n,
}

// The Kubernetes grammar: a decimal number, then a suffix or an exponent. `E` followed by
// digits is an exponent (`1E9`), alone it is exa (`2E`); the regex tries the exponent first.
const QUANTITY = /^(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E))?$/
// Only used to say *why* a value failed: a number, then something that is not a suffix.
const NUMBER_THEN_REST = /^(?:\d+(?:\.\d*)?|\.\d+)(.+)$/

const MAX = BigInt(Number.MAX_SAFE_INTEGER)

/** A byte quantity that cannot be used. `code` is `QUANTITY_INVALID`. */
export class QuantityError extends Error {
  readonly code = 'QUANTITY_INVALID'
  /** The rejected input, as given. */
  readonly value: unknown
  /** Why it was rejected and what is accepted, without the value (for callers that prefix their own). */
  readonly detail: string

  constructor(value: unknown, reason: string) {
    const detail = `${reason}; ${ACCEPTED}`
    super(`invalid byte quantity ${typeof value === 'string' ? `"${value}"` : String(value)}: ${detail}`)
    this.name = 'QuantityError'
    this.value = value
    this.detail = detail
  }
}

/**
 * Parses a byte count: plain digits (`268435456`) or a Kubernetes quantity (`512Mi`,
 * `1.5Gi`, `1G`, `500M`, `128k`, `1e9`, `2E`...). Binary suffixes are Ki Mi Gi Ti Pi Ei,
 * decimal ones k M G T P E; suffixes are case-sensitive, as in Kubernetes. A fractional
 * byte result is rounded up, as Kubernetes does (`1.5` is 2).
 *
 * @returns a positive integer number of bytes, at most `Number.MAX_SAFE_INTEGER`
 * @throws QuantityError for empty, negative or zero values, milli (`m`), unknown suffixes
 *   (`512MB`, `1gb`), whitespace anywhere, and values too large to be exact
 */
export function parseQuantity(text: string): number {
  const bytes = tryParseQuantity(text)
  if (bytes instanceof QuantityError) throw bytes
  return bytes
}

/** {@link parseQuantity} that returns the error instead of throwing it, for callers that collect problems. */
export function tryParseQuantity(text: string): number | QuantityError {
  // Callers in plain JavaScript pass numbers from JSON; say so instead of "not a number".
  if (typeof text !== 'string') return new QuantityError(text, `expected a string, got ${typeof text}`)
  if (text === '') return new QuantityError(text, 'empty')
  if (/\s/.test(text)) return new QuantityError(text, 'contains whitespace')
  if (text.startsWith('-')) return new QuantityError(text, 'negative')

  const match = QUANTITY.exec(text)
  if (match === null) {
    const rest = NUMBER_THEN_REST.exec(text)?.[1]
    if (rest === undefined) return new QuantityError(text, 'not a number')
    if (rest === 'm') return new QuantityError(text, 'milli ("m") is a thousandth of a byte')
    return new QuantityError(text, `unknown suffix "${rest}"`)
  }
  const number = match[1] as string
  const exponent = match[2]
  const suffix = (match[3] ?? '') as Suffix | ''

  // Exact arithmetic: in floats 2.007k is 2007.0000000000002, which rounds up to 2008.
  const dot = number.indexOf('.')
  const fraction = dot < 0 ? '' : number.slice(dot + 1)
  const digits = BigInt(number.replace('.', ''))
  if (digits === 0n) return new QuantityError(text, 'zero')
  const numerator = digits * SUFFIXES[suffix]
  // Number() of a huge exponent is Infinity, which the size checks below handle.
  const scale = (exponent === undefined ? 0 : Number(exponent)) - fraction.length

  let bytes: bigint
  if (scale >= 0) {
    // At least 10^17 > MAX_SAFE_INTEGER; checking first keeps 10n ** scale small.
    if (scale > 16) return tooLarge(text)
    bytes = numerator * 10n ** BigInt(scale)
  } else if (-scale > numerator.toString().length) {
    bytes = 1n // a positive fraction of one byte rounds up to one
  } else {
    const divisor = 10n ** BigInt(-scale)
    bytes = (numerator + divisor - 1n) / divisor
  }
  if (bytes > MAX) return tooLarge(text)
  return Number(bytes)
}

function tooLarge(text: string): QuantityError {
  return new QuantityError(text, `too large (more than ${Number.MAX_SAFE_INTEGER} bytes)`)
}
