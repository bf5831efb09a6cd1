/**
 * Builds the configuration from defaults, then the environment, then flags, and validates
 * it: every problem is collected, each naming the value, where it came from, what is
 * accepted, and the flag and variable that set it.
 */
import { scanArgs } from './argv.js'
import { ConfigError } from './error.js'
import { ROWS, SETTINGS, type AnySetting, type Config } from './table.js'
import { readTokenFile, tokenProblem } from './token.js'

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

  // Rules across settings: both values must have passed their own checks first.
  const fastOrigin = origins.get('fastIntervalMs')
  const intervalOrigin = origins.get('intervalMs')
  const interval = values.intervalMs as number
  if (fastOrigin !== undefined && intervalOrigin !== undefined && (values.fastIntervalMs as number) > interval) {
    const { flag, env } = SETTINGS.intervalMs
    const from =
      intervalOrigin.from === 'default' ? `the default of --${flag} / ${env}` : `from ${intervalOrigin.from === 'flag' ? `--${flag}` : env}`
    problems.push(problem(SETTINGS.fastIntervalMs, fastOrigin, `expected at most the interval (${interval} ms, ${from})`))
  }

  const metricsOrigin = origins.get('metricsPort')
  if (metricsOrigin && origins.get('port') && values.metricsPort !== 0 && values.metricsPort === values.port) {
    problems.push(problem(SETTINGS.metricsPort, metricsOrigin, 'expected another port than --port / OOMWATCH_PORT (the stream is there)'))
  }

  // Stacks and command lines are for the people on call, not for whoever reaches the port.
  const hostOrigin = origins.get('host')
  const tokenSet = values.token !== undefined || values.tokenFile !== undefined
  if (hostOrigin && !isLoopback(values.host as string) && !tokenSet && values.allowUnauthenticated !== true) {
    problems.push(
      problem(
        SETTINGS.host,
        hostOrigin,
        'listening beyond loopback needs a token (--token-file / OOMWATCH_TOKEN_FILE, or OOMWATCH_TOKEN), or ' +
          '--allow-unauthenticated / OOMWATCH_ALLOW_UNAUTHENTICATED=true to accept that anyone who reaches the port ' +
          'reads stacks and command lines',
      ),
    )
  }
  problems.push(...tokenProblems(values, origins))

  if (problems.length > 0) throw new ConfigError(problems, values)
  return values as unknown as Config
}

/**
 * The token's own rules: one source only, a token file that gives one, and a token that is
 * no placeholder and, beyond loopback, long enough ({@link tokenProblem}).
 */
function tokenProblems(values: Record<string, unknown>, origins: ReadonlyMap<keyof Config, Origin>): string[] {
  const tokenOrigin = origins.get('token')
  const fileOrigin = origins.get('tokenFile')
  const beyondLoopback = typeof values.host === 'string' && !isLoopback(values.host)
  if (tokenOrigin && fileOrigin) {
    const other = tokenOrigin.from === 'flag' ? `--${SETTINGS.token.flag}` : SETTINGS.token.env
    return [problem(SETTINGS.tokenFile, fileOrigin, `the token is also set by ${other}: set one of the two (the file is safer)`)]
  }
  if (tokenOrigin && typeof values.token === 'string') {
    const reason = tokenProblem(values.token, beyondLoopback)
    return reason === undefined ? [] : [problem(SETTINGS.token, tokenOrigin, reason)]
  }
  if (fileOrigin && typeof values.tokenFile === 'string') {
    const read = readTokenFile(values.tokenFile)
    const reason = 'reason' in read ? read.reason : tokenProblem(read.token, beyondLoopback)
    return reason === undefined ? [] : [problem(SETTINGS.tokenFile, fileOrigin, 'reason' in read ? reason : `the token in it: ${reason}`)]
  }
  return []
}

/**
 * What to warn about at start, once the logger exists: a token given as a flag (`--token`),
 * which any process of the pod can read in `/proc/<pid>/cmdline`.
 */
export function startWarnings(argv: string[]): string[] {
  if (!scanArgs(argv).flags.has(SETTINGS.token.flag)) return []
  return [
    `the token was given with --${SETTINGS.token.flag}: any process of the pod can read it in /proc/<pid>/cmdline; ` +
      `set ${SETTINGS.token.env} or --${SETTINGS.tokenFile.flag} / ${SETTINGS.tokenFile.env} (a mounted Secret) instead`,
  ]
}

/** 127.0.0.0/8, ::1 and localhost: reachable from this pod only (and through kubectl port-forward). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}
