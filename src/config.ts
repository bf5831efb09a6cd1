/**
 * The one place that builds oomwatch's configuration: defaults, then environment, then
 * flags. One table ({@link SETTINGS}, in `config/settings/`) declares every setting once;
 * the {@link Config} type, {@link DEFAULTS}, parsing, validation and {@link helpText} are
 * all derived from it. This module only gathers the public names:
 * - `config/table.ts`: the table, `Config`, `DEFAULTS`;
 * - `config/load.ts` and `config/argv.ts`: the argv and env reader, with validation;
 * - `config/help.ts`: the help text; `config/redact.ts`: the configuration as shown.
 */
export { ConfigError } from './config/error.js'
export { helpText } from './config/help.js'
export { isLoopback, loadConfig, startWarnings } from './config/load.js'
export type { Parsed } from './config/parse.js'
export { redactConfig } from './config/redact.js'
export type { Setting } from './config/setting.js'
export { LOG_LEVELS, type LogLevel } from './config/settings/serve.js'
export { DEFAULTS, SETTINGS, type Config, type Defaults } from './config/table.js'
