/**
 * The settings table: the only place a flag, variable, default or rule is written down.
 * {@link Config} and {@link Defaults} are derived from it, so a setting is declared once.
 */
import type { ConfigOf, DefaultsOf, Setting } from './setting.js'
import { ACT_SETTINGS } from './settings/act.js'
import { DETECT_SETTINGS } from './settings/detect.js'
import { SERVE_SETTINGS } from './settings/serve.js'
import { TARGET_SETTINGS } from './settings/target.js'

/** Every setting, in help-text order. */
export const SETTINGS = { ...TARGET_SETTINGS, ...DETECT_SETTINGS, ...SERVE_SETTINGS, ...ACT_SETTINGS }

/**
 * The effective configuration: one field per row of {@link SETTINGS}, named by its key, typed
 * by its parser, and optional exactly when the row has no default. Every field is a flag and
 * an environment variable (the row's `flag` and `env`).
 */
export type Config = ConfigOf<typeof SETTINGS>

/** The settings with a default, and those defaults. */
export type Defaults = DefaultsOf<typeof SETTINGS>

/** A row of the table with its value type forgotten, for code that walks every row. */
export type AnySetting = Setting<unknown>

// Object.entries loses the key type; the table's type already ties each row to its key.
/** Every row with its key, in help-text order. */
export const ROWS = Object.entries(SETTINGS) as [keyof Config, AnySetting][]

/** The default of every setting that has one. */
export const DEFAULTS: Defaults = Object.freeze(
  Object.fromEntries(ROWS.filter(([, s]) => s.default !== undefined).map(([key, s]) => [key, s.default])),
) as Defaults

/** Options that are actions, not settings. */
export const ACTIONS = [
  { flag: 'help', short: 'h', describe: 'Print this help and exit.' },
  { flag: 'version', short: undefined, describe: 'Print the version and exit.' },
] as const
