/**
 * Builds the configuration from defaults, then the environment, then flags, and validates
 * it: every problem is collected, each naming the value, where it came from, what is
 * accepted, and the flag and variable that set it.
 */
import { scanArgs } from './argv.js'
import { ConfigError } from './error.js'
import { ROWS, SETTINGS, type AnySetting, type Config } from './table.js'

/** Where a value came from, for messages. */
type Origin = { from: 'flag' | 'env'; text: string } | { from: 'default' }

function describeOrigin(setting: AnySetting, origin: Origin): string {
  // Secrets have no default, so only flag and environment values need hiding.
  if (origin.from === 'default') return `default "${String(setting.default)}"`
  const name = origin.from === 'flag' ? `--${setting.flag}` : setting.env
  if (setting.secret === true) return name
  return origin.from === 'flag' ? `${name} "${origin.text}"` : `${name}="${origin.text}"`
}

function problem(setting: AnySetting, origin: Origin, reason: string): string {
  return `${describeOrigin(setting, origin)}: ${reason} (setting --${setting.flag} / ${setting.env})`
}

/**
 * Builds the configuration from command-line arguments (without `node` and the script)
 * and the environment: defaults, then environment variables, then flags. An empty
 * environment variable counts as unset; unknown `OOMWATCH_*` variables are ignored
 * (Kubernetes service links inject some).
 *
 * @returns the configuration, or a marker when `--help`/`-h` or `--version` was given
 *   (these win over any problem)
 * @throws ConfigError listing every problem found, flags and variables alike
 */
export function loadConfig(argv: string[], env: Record<string, string | undefined>): Config | { help: true } | { version: true } {
  const scanned = scanArgs(argv)
  if (scanned.action === 'help') return { help: true }
  if (scanned.action === 'version') return { version: true }

  const problems = scanned.problems
  const values: Record<string, unknown> = {}
  const origins = new Map<keyof Config, Origin>()

  for (const [key, setting] of ROWS) {
    const fromFlag = scanned.flags.get(setting.flag)
    const fromEnv: unknown = env[setting.env]
    let origin: Origin
    if (fromFlag !== undefined) {
      origin = { from: 'flag', text: fromFlag }
    } else if (typeof fromEnv === 'string' && fromEnv !== '') {
      origin = { from: 'env', text: fromEnv }
    } else if (fromEnv !== undefined && typeof fromEnv !== 'string') {
      // Only reachable from JavaScript callers that build env by hand.
      problems.push(`${setting.env}: expected a string, got ${typeof fromEnv} (setting --${setting.flag} / ${setting.env})`)
      continue
    } else if (setting.default !== undefined) {
      origin = { from: 'default' }
    } else {
      continue
    }

    let value: unknown = setting.default
    if (origin.from !== 'default') {
      const parsed = setting.parse(origin.text)
      if ('reason' in parsed) {
        problems.push(problem(setting, origin, parsed.reason))
        continue
      }
      value = parsed.value
    }
    const failed = setting.verify?.(value)
    if (failed !== undefined) {
      problems.push(problem(setting, origin, failed))
      continue
    }
    values[key] = value
    origins.set(key, origin)
  }

  // The one rule across settings: both values must have passed their own checks first.
  const fastOrigin = origins.get('fastIntervalMs')
  const intervalOrigin = origins.get('intervalMs')
  const interval = values.intervalMs as number
  if (fastOrigin !== undefined && intervalOrigin !== undefined && (values.fastIntervalMs as number) > interval) {
    const { flag, env } = SETTINGS.intervalMs
    const from =
      intervalOrigin.from === 'default' ? `the default of --${flag} / ${env}` : `from ${intervalOrigin.from === 'flag' ? `--${flag}` : env}`
    problems.push(problem(SETTINGS.fastIntervalMs, fastOrigin, `expected at most the interval (${interval} ms, ${from})`))
  }

  // Stacks and command lines are for the people on call, not for whoever reaches the port.
  const hostOrigin = origins.get('host')
  if (hostOrigin && !isLoopback(values.host as string) && values.token === undefined && values.allowUnauthenticated !== true) {
    problems.push(
      problem(
        SETTINGS.host,
        hostOrigin,
        'listening beyond loopback needs a token (--token / OOMWATCH_TOKEN), or --allow-unauthenticated / ' +
          'OOMWATCH_ALLOW_UNAUTHENTICATED=true to accept that anyone who reaches the port reads stacks and command lines',
      ),
    )
  }

  if (problems.length > 0) throw new ConfigError(problems)
  return values as unknown as Config
}

/** 127.0.0.0/8, ::1 and localhost: reachable from this pod only (and through kubectl port-forward). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}
