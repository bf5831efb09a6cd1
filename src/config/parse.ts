/** Parsers for the settings table: each turns the text of a flag or variable into a value, or says what is accepted. */
import { QuantityError, tryParseQuantity } from '../quantity.js'

/** Why a value was refused, phrased as what is accepted (`expected ...`). */
export type Parsed<T> = { value: T } | { reason: string }

// setTimeout fires after 1 ms for delays above 2^31 - 1, so longer ticks would spin.
const MAX_TIMER_MS = 2 ** 31 - 1

/** A whole number from `min` to `max`, written as plain digits; `what` names it in the message. */
export function integer(min: number, max: number, what = 'an integer'): (text: string) => Parsed<number> {
  const reason = `expected ${what} from ${min} to ${max}`
  return text => {
    // Plain digits only: Number() would also take ' 3 ', '0x10', '1e3' and '1.0'.
    if (!/^\d+$/.test(text)) return { reason }
    const n = Number(text)
    return n >= min && n <= max ? { value: n } : { reason }
  }
}

/** Whole milliseconds from `min` to the longest delay a timer can take. */
export function milliseconds(min: number): (text: string) => Parsed<number> {
  return integer(min, MAX_TIMER_MS, 'a whole number of milliseconds')
}

/** A decimal number greater than 0 and, when `max` is given, at most `max`. */
export function positiveNumber(max?: number): (text: string) => Parsed<number> {
  const reason = `expected a number greater than 0${max === undefined ? '' : ` and at most ${max}`}`
  return text => {
    // Decimal with an optional exponent; no sign, whitespace, hex or Infinity.
    if (!/^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/.test(text)) return { reason }
    const n = Number(text)
    return n > 0 && Number.isFinite(n) && (max === undefined || n <= max) ? { value: n } : { reason }
  }
}

/** Any text but the empty string; `what` names what is expected. */
export function nonEmpty(what: string): (text: string) => Parsed<string> {
  return text => (text === '' ? { reason: `expected ${what}` } : { value: text })
}

/** Bytes or a Kubernetes quantity (`512Mi`, `1G`). */
export function bytes(text: string): Parsed<number> {
  const parsed = tryParseQuantity(text)
  return parsed instanceof QuantityError ? { reason: parsed.detail } : { value: parsed }
}

/** Bytes or a Kubernetes quantity, at least `min` (named `shown` in the message). */
export function bytesAtLeast(min: number, shown: string): (text: string) => Parsed<number> {
  return text => {
    const parsed = bytes(text)
    if ('reason' in parsed) return parsed
    return parsed.value >= min ? parsed : { reason: `expected at least ${shown}` }
  }
}

/** `true`/`1` or `false`/`0`, in any case. */
export function boolean(text: string): Parsed<boolean> {
  return /^(true|1)$/i.test(text) ? { value: true } : /^(false|0)$/i.test(text) ? { value: false } : { reason: 'expected true or false' }
}

/** One of `choices`, exactly as written; the message lists them (`expected none, stop or freeze`). */
export function oneOf<const C extends string>(choices: readonly [C, ...C[]]): (text: string) => Parsed<C> {
  const listed = choices.length === 1 ? choices[0] : `${choices.slice(0, -1).join(', ')} or ${choices[choices.length - 1]}`
  return text => {
    const choice = choices.find(c => c === text)
    return choice === undefined ? { reason: `expected ${listed}` } : { value: choice }
  }
}
