/**
 * The shape of one row of the settings table, and the types derived from a table: a
 * setting's value type comes from its parser, its optionality from whether it has a default.
 */
import type { Parsed } from './parse.js'

/** Turns the text of a flag or variable into a value, or says what is accepted. */
export type Parser = (text: string) => Parsed<unknown>

/**
 * What a parser's successes hold. Read from the members with a `value`, so that a parser
 * written inline (`text => ok ? { value: text } : { reason }`) counts as well as one declared
 * to return `Parsed<T>`.
 */
export type ParsedValue<P> = P extends (text: string) => infer R ? (R extends { value: infer T } ? T : never) : never

/** What every row of the settings table declares, whatever its value type. */
export interface Setting<T> {
  /** Long flag without dashes: `port` is `--port`. */
  readonly flag: string
  /** Environment variable. */
  readonly env: string
  /** Placeholder for the value in the help text. */
  readonly arg: string
  /** One sentence for the help text. */
  readonly describe: string
  /** Used when neither flag nor environment sets it; absent for optional settings. */
  readonly default?: T
  /** What happens when an optional setting is unset, for the help text. */
  readonly unset?: string
  /** Never shown: not in problems, not in `redactConfig`. */
  readonly secret?: boolean
  /** Turns the text of a flag or variable into a value. */
  parse(text: string): Parsed<T>
  /** Checks the final value wherever it came from, defaults included (e.g. that a directory exists). */
  verify?(value: T): string | undefined
}

/** A row as declared, keeping its parser's own type so that the value type can be read from it. */
interface Row<P extends Parser> extends Omit<Setting<ParsedValue<P>>, 'parse' | 'default' | 'unset'> {
  readonly parse: P
}

/** A setting that always has a value: its default unless a flag or variable sets it. */
export type DefaultedRow<P extends Parser> = Row<P> & { readonly default: ParsedValue<P>; readonly unset?: never }

/** A setting that may be left unset; `unset` tells the help text what happens then. */
export type OptionalRow<P extends Parser> = Row<P> & { readonly default?: never; readonly unset: string }

/** Declares a setting with a default, which must be of the type its parser returns. */
export function withDefault<P extends Parser>(row: DefaultedRow<P>): DefaultedRow<P> {
  return row
}

/** Declares a setting without a default: absent from the configuration when unset. */
export function optional<P extends Parser>(row: OptionalRow<P>): OptionalRow<P> {
  return row
}

/** The type of a row's value: what its parser returns. */
export type ValueOf<S> = S extends { readonly parse: infer P } ? ParsedValue<P> : never

type HasDefault<S> = S extends { readonly default: unknown } ? true : false

// One object type rather than an intersection, so editors show it as a plain record.
type Flat<T> = { [K in keyof T]: T[K] }

/** The configuration a table describes: a required field per setting with a default, an optional one per setting without. */
export type ConfigOf<S> = Flat<
  { -readonly [K in keyof S as HasDefault<S[K]> extends true ? K : never]: ValueOf<S[K]> } & {
    -readonly [K in keyof S as HasDefault<S[K]> extends true ? never : K]?: ValueOf<S[K]>
  }
>

/** The settings of a table that have a default, and the types of those defaults. */
export type DefaultsOf<S> = { readonly [K in keyof S as HasDefault<S[K]> extends true ? K : never]: ValueOf<S[K]> }
