/**
 * The one place that builds oomwatch's configuration: defaults, then environment, then
 * flags. One table ({@link SETTINGS}) drives parsing, validation, {@link DEFAULTS} and
 * {@link helpText}, so a setting is declared once.
 */
import { statSync } from 'node:fs'
import { isIP } from 'node:net'
import { parseArgs } from 'node:util'
import { QuantityError, tryParseQuantity } from './quantity.js'

/** The log levels pino knows, quietest last. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/** The effective configuration. Every field is a flag and an environment variable; see {@link SETTINGS}. */
export interface Config {
  /** `--port` / `OOMWATCH_PORT`: WebSocket port, 0..65535; 0 picks any free port. Default 9642. */
  port: number
  /** `--host` / `OOMWATCH_HOST`: address to listen on. Default `127.0.0.1` (`kubectl port-forward` reaches loopback). */
  host: string
  /** `--pyspy` / `OOMWATCH_PYSPY`: path to py-spy. Unset: the capturer finds it. */
  pyspy?: string
  /** `--memory-limit` / `OOMWATCH_MEMORY_LIMIT`: bytes, used when no cgroup limit is found. Unset: host memory. */
  memoryLimit?: number
  /** `--token` / `OOMWATCH_TOKEN`: bearer token clients must present. Unset: no authentication. Never logged. */
  token?: string
  /** `--proc` / `OOMWATCH_PROC`: procfs root, an existing directory. Default `/proc`. */
  procRoot: string
  /** `--match` / `OOMWATCH_MATCH`: only processes whose command line (args joined by spaces) matches are watched. Unset: all. */
  match?: RegExp
  /** `--interval` / `OOMWATCH_INTERVAL_MS`: the quiet tick: births (the last pid allocated) and each container's memory usage. Default 100. */
  intervalMs: number
  /** `--fast-interval` / `OOMWATCH_FAST_INTERVAL_MS`: tick after a birth, while a process starts, and while memory grows or nears the limit; at most `intervalMs`. Default 20. */
  fastIntervalMs: number
  /** `--refresh` / `OOMWATCH_REFRESH_MS`: per-process detail when nothing moves. Default 5000. */
  refreshMs: number
  /** `--scan-interval` / `OOMWATCH_SCAN_MS`: how often the procfs root is scanned for new processes where births cannot be seen (a procfs of another PID namespace). Default 500. */
  scanMs: number
  /** `--window` / `OOMWATCH_WINDOW_MS`: growth-rate window. Default 2000. */
  windowMs: number
  /** `--trigger-fraction` / `OOMWATCH_TRIGGER_FRACTION`: fraction of the limit that, while growing, triggers a capture; 0 < x <= 1. Default 0.9. */
  triggerFraction: number
  /** `--trigger-seconds` / `OOMWATCH_TRIGGER_SECONDS`: predicted seconds to the limit that trigger a capture; > 0. Default 3. */
  triggerSeconds: number
  /** `--cooldown` / `OOMWATCH_COOLDOWN_MS`: at most one incident per process and trigger reason in this time. Default 60000. */
  cooldownMs: number
  /** `--pyspy-timeout` / `OOMWATCH_PYSPY_TIMEOUT_MS`: how long one py-spy dump may take. Default 5000. */
  pyspyTimeoutMs: number
  /** `--flamegraph` / `OOMWATCH_FLAMEGRAPH`: after an incident, record a flame graph of the process if it is still alive. Default true. */
  flamegraph: boolean
  /** `--flamegraph-seconds` / `OOMWATCH_FLAMEGRAPH_SECONDS`: how long `py-spy record` samples, 1..60. Default 5. */
  flamegraphSeconds: number
  /** `--flamegraph-max` / `OOMWATCH_FLAMEGRAPH_MAX`: flame graphs kept on disk; the oldest go first. Default 20. */
  flamegraphMax: number
  /** `--nofile-risk` / `OOMWATCH_NOFILE_RISK`: NOFILE hard limit above which a `risk` is reported. Default 1048576. */
  nofileRisk: number
  /** `--heartbeat` / `OOMWATCH_HEARTBEAT_MS`: WebSocket ping interval; a client that misses one pong is dropped. Default 30000. */
  heartbeatMs: number
  /** `--log-level` / `OOMWATCH_LOG_LEVEL`: pino level. Default `info`. */
  logLevel: LogLevel
  /** `--journal-dir` / `OOMWATCH_JOURNAL_DIR`: where events are journaled for replay across restarts. Unset: memory only. */
  journalDir?: string
  /** `--journal-max-bytes` / `OOMWATCH_JOURNAL_MAX_BYTES`: disk the journal may use. Default 64 MiB. */
  journalMaxBytes: number
  /** `--max-clients` / `OOMWATCH_MAX_CLIENTS`: WebSocket clients at once. Default 64. */
  maxClients: number
  /** `--client-buffer` / `OOMWATCH_CLIENT_BUFFER_BYTES`: unsent bytes per client before it is closed as too slow. Default 8 MiB. */
  clientBufferBytes: number
  /** `--clamp-nofile` / `OOMWATCH_CLAMP_NOFILE`: lower every watched process's NOFILE above this to it (prlimit; needs CAP_SYS_RESOURCE for other users' processes). Unset: off. */
  clampNofile?: number
  /** `--on-runaway` / `OOMWATCH_ON_RUNAWAY`: after the incident, `stop` (SIGTERM, then SIGKILL) or `freeze` (SIGSTOP) a runaway still heading for the limit. Default `none`. */
  onRunaway: 'none' | 'stop' | 'freeze'
  /** `--stop-grace` / `OOMWATCH_STOP_GRACE_MS`: SIGTERM to SIGKILL. Default 1000. */
  stopGraceMs: number
  /** `--freeze-max` / `OOMWATCH_FREEZE_MAX_MS`: the longest a runaway stays frozen. Default 60000. */
  freezeMaxMs: number
  /** `--freeze-fallback` / `OOMWATCH_FREEZE_FALLBACK`: after the longest freeze, `release` (SIGCONT) or `stop`. Default `release`. */
  freezeFallback: 'release' | 'stop'
  /** `--act-on-entrypoint` / `OOMWATCH_ACT_ON_ENTRYPOINT`: allow actions on PID 1 and containers' entrypoints. Default false. */
  actOnEntrypoint: boolean
  /** `--allow-unauthenticated` / `OOMWATCH_ALLOW_UNAUTHENTICATED`: listen beyond loopback without a token. Default false. */
  allowUnauthenticated: boolean
  /** `--allowed-origins` / `OOMWATCH_ALLOWED_ORIGINS`: browser origins allowed besides the agent's own. Unset: only its own. */
  allowedOrigins?: string[]
}

/** Why a value was refused, phrased as what is accepted (`expected ...`). */
export type Parsed<T> = { value: T } | { reason: string }

/** One row of the settings table. */
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
  /** Never shown: not in problems, not in {@link redactConfig}. */
  readonly secret?: boolean
  /** Turns the text of a flag or variable into a value. */
  parse(text: string): Parsed<T>
  /** Checks the final value wherever it came from, defaults included (e.g. that a directory exists). */
  verify?(value: T): string | undefined
}

type OptionalKey = { [K in keyof Config]-?: undefined extends Config[K] ? K : never }[keyof Config]
type DefaultedKey = Exclude<keyof Config, OptionalKey>

/** The settings with a default, and those defaults. */
export type Defaults = Readonly<Pick<Config, DefaultedKey>>

// The mapped type makes the compiler insist on exactly one row per Config key, with a
// default for every required key and none for optional ones.
type SettingsTable = {
  readonly [K in keyof Config]-?: Setting<NonNullable<Config[K]>> &
    (K extends DefaultedKey ? { readonly default: Config[K] } : { readonly default?: never })
}

// setTimeout fires after 1 ms for delays above 2^31 - 1, so longer ticks would spin.
const MAX_TIMER_MS = 2 ** 31 - 1

function integer(min: number, max: number, what = 'an integer'): (text: string) => Parsed<number> {
  const reason = `expected ${what} from ${min} to ${max}`
  return text => {
    // Plain digits only: Number() would also take ' 3 ', '0x10', '1e3' and '1.0'.
    if (!/^\d+$/.test(text)) return { reason }
    const n = Number(text)
    return n >= min && n <= max ? { value: n } : { reason }
  }
}

function milliseconds(min: number): (text: string) => Parsed<number> {
  return integer(min, MAX_TIMER_MS, 'a whole number of milliseconds')
}

function positiveNumber(max?: number): (text: string) => Parsed<number> {
  const reason = `expected a number greater than 0${max === undefined ? '' : ` and at most ${max}`}`
  return text => {
    // Decimal with an optional exponent; no sign, whitespace, hex or Infinity.
    if (!/^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/.test(text)) return { reason }
    const n = Number(text)
    return n > 0 && Number.isFinite(n) && (max === undefined || n <= max) ? { value: n } : { reason }
  }
}

function nonEmpty(what: string): (text: string) => Parsed<string> {
  return text => (text === '' ? { reason: `expected ${what}` } : { value: text })
}

const portNumber = integer(0, 65535)

/** Bytes or a Kubernetes quantity, at least `min` (named `shown` in the message). */
function bytesAtLeast(min: number, shown: string): (text: string) => Parsed<number> {
  return text => {
    const bytes = tryParseQuantity(text)
    if (bytes instanceof QuantityError) return { reason: bytes.detail }
    return bytes >= min ? { value: bytes } : { reason: `expected at least ${shown}` }
  }
}

function boolean(text: string): Parsed<boolean> {
  return /^(true|1)$/i.test(text) ? { value: true } : /^(false|0)$/i.test(text) ? { value: false } : { reason: 'expected true or false' }
}

/**
 * Every setting, in help-text order. The only place a flag, variable, default or rule is
 * written down.
 */
export const SETTINGS: SettingsTable = {
  port: {
    flag: 'port',
    env: 'OOMWATCH_PORT',
    arg: '<port>',
    describe: 'Port of the WebSocket server (ws://HOST:PORT/); 0 picks any free port.',
    default: 9642,
    parse: text => {
      const parsed = portNumber(text)
      // A Service named "oomwatch" makes Kubernetes inject OOMWATCH_PORT=tcp://IP:PORT.
      if ('reason' in parsed && text.startsWith('tcp://')) {
        return {
          reason:
            `${parsed.reason}; this looks like the service link Kubernetes injects for a Service ` +
            'named "oomwatch": set enableServiceLinks: false in the pod spec, or pass --port',
        }
      }
      return parsed
    },
  },
  host: {
    flag: 'host',
    env: 'OOMWATCH_HOST',
    arg: '<address>',
    describe: 'Address to listen on; 0.0.0.0 for every interface (set a token then).',
    default: '127.0.0.1',
    parse: text =>
      isIP(text) !== 0 || /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/.test(text)
        ? { value: text }
        : { reason: 'expected a host name or an IP address, such as 127.0.0.1, 0.0.0.0 or ::' },
  },
  pyspy: {
    flag: 'pyspy',
    env: 'OOMWATCH_PYSPY',
    arg: '<path>',
    describe: 'Path to the py-spy executable.',
    unset: 'found automatically',
    parse: nonEmpty('a path to the py-spy executable'),
  },
  memoryLimit: {
    flag: 'memory-limit',
    env: 'OOMWATCH_MEMORY_LIMIT',
    arg: '<bytes>',
    describe:
      'Memory limit used when no cgroup limit is found: bytes or a Kubernetes quantity ' +
      '(512Mi, 1G); feed it from the Downward API (resourceFieldRef limits.memory).',
    unset: 'the cgroup limit, else host memory',
    parse: text => {
      const bytes = tryParseQuantity(text)
      return bytes instanceof QuantityError ? { reason: bytes.detail } : { value: bytes }
    },
  },
  token: {
    flag: 'token',
    env: 'OOMWATCH_TOKEN',
    arg: '<token>',
    describe: 'Bearer token; when set, clients without it are refused.',
    unset: 'no authentication',
    secret: true,
    parse: nonEmpty('a non-empty token'),
  },
  procRoot: {
    flag: 'proc',
    env: 'OOMWATCH_PROC',
    arg: '<dir>',
    describe: 'Root of procfs (tests point it at fixtures).',
    default: '/proc',
    parse: nonEmpty('a directory'),
    verify: dir => {
      // Not throwIfNoEntry: Node 24 also returns undefined for ENOTDIR, which hides the cause.
      try {
        return statSync(dir).isDirectory() ? undefined : 'expected an existing directory; it is not a directory'
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'expected an existing directory; it does not exist'
        return `expected an existing directory (${(err as Error).message})`
      }
    },
  },
  match: {
    flag: 'match',
    env: 'OOMWATCH_MATCH',
    arg: '<regexp>',
    describe: 'Watch only processes whose command line (arguments joined by spaces) matches this JavaScript regular expression.',
    unset: 'every Python process',
    parse: text => {
      if (text === '') return { reason: 'expected a non-empty regular expression' }
      try {
        return { value: new RegExp(text) }
      } catch (err) {
        return { reason: `expected a regular expression (${(err as Error).message})` }
      }
    },
  },
  intervalMs: {
    flag: 'interval',
    env: 'OOMWATCH_INTERVAL_MS',
    arg: '<ms>',
    describe: 'Quiet tick: reads the last pid allocated (births) and each container\'s memory usage.',
    default: 100,
    parse: milliseconds(1),
  },
  fastIntervalMs: {
    flag: 'fast-interval',
    env: 'OOMWATCH_FAST_INTERVAL_MS',
    arg: '<ms>',
    describe: 'Tick after a birth, while a process starts, and while memory grows or nears the limit; at most --interval.',
    default: 20,
    parse: milliseconds(1),
  },
  refreshMs: {
    flag: 'refresh',
    env: 'OOMWATCH_REFRESH_MS',
    arg: '<ms>',
    describe: 'How often per-process detail is read when nothing moves.',
    default: 5000,
    parse: milliseconds(1),
  },
  scanMs: {
    flag: 'scan-interval',
    env: 'OOMWATCH_SCAN_MS',
    arg: '<ms>',
    describe: 'How often procfs is scanned for new Python processes where births cannot be seen (a procfs root of another PID namespace).',
    default: 500,
    parse: milliseconds(1),
  },
  windowMs: {
    flag: 'window',
    env: 'OOMWATCH_WINDOW_MS',
    arg: '<ms>',
    describe: 'Window over which the growth rate is measured.',
    default: 2000,
    parse: milliseconds(1),
  },
  triggerFraction: {
    flag: 'trigger-fraction',
    env: 'OOMWATCH_TRIGGER_FRACTION',
    arg: '<fraction>',
    describe: 'Fraction of the limit that, while memory grows, triggers a capture (0 < x <= 1).',
    default: 0.9,
    parse: positiveNumber(1),
  },
  triggerSeconds: {
    flag: 'trigger-seconds',
    env: 'OOMWATCH_TRIGGER_SECONDS',
    arg: '<seconds>',
    describe: 'Predicted seconds to the limit that trigger a capture (> 0, may be fractional).',
    default: 3,
    parse: positiveNumber(),
  },
  cooldownMs: {
    flag: 'cooldown',
    env: 'OOMWATCH_COOLDOWN_MS',
    arg: '<ms>',
    describe: 'At most one incident per process and trigger reason in this time; 0 for no limit.',
    default: 60000,
    parse: milliseconds(0),
  },
  pyspyTimeoutMs: {
    flag: 'pyspy-timeout',
    env: 'OOMWATCH_PYSPY_TIMEOUT_MS',
    arg: '<ms>',
    describe: 'How long one py-spy dump may take before it is killed.',
    default: 5000,
    parse: milliseconds(1),
  },
  flamegraph: {
    flag: 'flamegraph',
    env: 'OOMWATCH_FLAMEGRAPH',
    arg: '<true|false>',
    describe: 'After an incident, if the process is still alive, record a short flame graph of it (py-spy record), served at /incidents/<id>/flamegraph.svg.',
    default: true,
    parse: boolean,
  },
  flamegraphSeconds: {
    flag: 'flamegraph-seconds',
    env: 'OOMWATCH_FLAMEGRAPH_SECONDS',
    arg: '<seconds>',
    describe: 'How long py-spy record samples for a flame graph (one at a time).',
    default: 5,
    parse: integer(1, 60, 'a whole number of seconds'),
  },
  flamegraphMax: {
    flag: 'flamegraph-max',
    env: 'OOMWATCH_FLAMEGRAPH_MAX',
    arg: '<count>',
    describe: 'Flame graphs kept on disk (next to the journal, else in a temporary directory); the oldest are removed.',
    default: 20,
    parse: integer(1, 10000),
  },
  nofileRisk: {
    flag: 'nofile-risk',
    env: 'OOMWATCH_NOFILE_RISK',
    arg: '<count>',
    describe: 'NOFILE hard limit above which a risk is reported (code sized by it allocates per fd).',
    default: 1048576,
    parse: integer(1, Number.MAX_SAFE_INTEGER),
  },
  heartbeatMs: {
    flag: 'heartbeat',
    env: 'OOMWATCH_HEARTBEAT_MS',
    arg: '<ms>',
    describe: 'WebSocket ping interval; a client that misses one pong is dropped.',
    default: 30000,
    parse: milliseconds(1),
  },
  logLevel: {
    flag: 'log-level',
    env: 'OOMWATCH_LOG_LEVEL',
    arg: '<level>',
    describe: `Log level, one of ${LOG_LEVELS.join(', ')} (any case).`,
    default: 'info',
    parse: text => {
      // LOG_LEVEL=INFO is common in manifests; accepting it costs nothing.
      const level = LOG_LEVELS.find(l => l === text.toLowerCase())
      return level === undefined ? { reason: `expected one of ${LOG_LEVELS.join(', ')}` } : { value: level }
    },
  },
  journalDir: {
    flag: 'journal-dir',
    env: 'OOMWATCH_JOURNAL_DIR',
    arg: '<dir>',
    describe: 'Directory where events are journaled (the pod\'s emptyDir), so a restarted agent replays them and seq goes on.',
    unset: 'events kept in memory only',
    parse: nonEmpty('a directory'),
    verify: dir => {
      try {
        return statSync(dir).isDirectory() ? undefined : 'expected a directory, found another kind of file'
      } catch {
        return undefined // created at start
      }
    },
  },
  journalMaxBytes: {
    flag: 'journal-max-bytes',
    env: 'OOMWATCH_JOURNAL_MAX_BYTES',
    arg: '<bytes>',
    describe: 'Disk the journal may use, bytes or a quantity (64Mi); the oldest events rotate away.',
    default: 64 * 1024 * 1024,
    parse: bytesAtLeast(1024 * 1024, '1Mi'),
  },
  maxClients: {
    flag: 'max-clients',
    env: 'OOMWATCH_MAX_CLIENTS',
    arg: '<count>',
    describe: 'WebSocket clients at once; more are refused with 503.',
    default: 64,
    parse: integer(1, 10000),
  },
  clientBufferBytes: {
    flag: 'client-buffer',
    env: 'OOMWATCH_CLIENT_BUFFER_BYTES',
    arg: '<bytes>',
    describe: 'Unsent bytes a client may lag behind before it is closed as too slow (it can reconnect with ?since=SEQ).',
    default: 8 * 1024 * 1024,
    parse: bytesAtLeast(64 * 1024, '64Ki'),
  },
  clampNofile: {
    flag: 'clamp-nofile',
    env: 'OOMWATCH_CLAMP_NOFILE',
    arg: '<count>',
    describe: 'Lower the NOFILE limits of every watched process above this to it, as soon as it is seen (prlimit; needs CAP_SYS_RESOURCE for processes of other users). Children forked afterwards inherit it.',
    unset: 'off',
    parse: integer(1, Number.MAX_SAFE_INTEGER),
  },
  onRunaway: {
    flag: 'on-runaway',
    env: 'OOMWATCH_ON_RUNAWAY',
    arg: '<none|stop|freeze>',
    describe: 'Once its stack is out, stop (SIGTERM, then SIGKILL) or freeze (SIGSTOP) a runaway still heading for the limit, so the container\'s other processes live on.',
    default: 'none',
    parse: text => (text === 'none' || text === 'stop' || text === 'freeze' ? { value: text } : { reason: 'expected none, stop or freeze' }),
  },
  stopGraceMs: {
    flag: 'stop-grace',
    env: 'OOMWATCH_STOP_GRACE_MS',
    arg: '<ms>',
    describe: 'Time between SIGTERM and SIGKILL when stopping a runaway.',
    default: 1000,
    parse: milliseconds(1),
  },
  freezeMaxMs: {
    flag: 'freeze-max',
    env: 'OOMWATCH_FREEZE_MAX_MS',
    arg: '<ms>',
    describe: 'The longest a runaway stays frozen; then --freeze-fallback applies.',
    default: 60000,
    parse: milliseconds(1),
  },
  freezeFallback: {
    flag: 'freeze-fallback',
    env: 'OOMWATCH_FREEZE_FALLBACK',
    arg: '<release|stop>',
    describe: 'After the longest freeze: release (SIGCONT) or stop the process.',
    default: 'release',
    parse: text => (text === 'release' || text === 'stop' ? { value: text } : { reason: 'expected release or stop' }),
  },
  actOnEntrypoint: {
    flag: 'act-on-entrypoint',
    env: 'OOMWATCH_ACT_ON_ENTRYPOINT',
    arg: '<true|false>',
    describe: "Allow actions on PID 1 and on containers' entrypoints (stopping one ends its container).",
    default: false,
    parse: boolean,
  },
  allowUnauthenticated: {
    flag: 'allow-unauthenticated',
    env: 'OOMWATCH_ALLOW_UNAUTHENTICATED',
    arg: '<true|false>',
    describe: 'Listen on an address beyond loopback without a token (anyone who reaches it reads stacks and command lines).',
    default: false,
    parse: boolean,
  },
  allowedOrigins: {
    flag: 'allowed-origins',
    env: 'OOMWATCH_ALLOWED_ORIGINS',
    arg: '<origins>',
    describe: 'Comma-separated browser origins (https://grafana.example) allowed to connect besides the agent\'s own page.',
    unset: 'only the agent\'s own origin',
    parse: text => {
      const origins = text.split(',').map(origin => origin.trim())
      const bad = origins.find(origin => !/^https?:\/\/[^/\s]+$/.test(origin))
      return bad === undefined ? { value: origins } : { reason: `expected origins like https://host:port, separated by commas; "${bad}" is not one` }
    },
  },
}

type AnySetting = Setting<unknown>
// Object.entries loses the key type; the table's type already ties each row to its key.
const ROWS = Object.entries(SETTINGS) as [keyof Config, AnySetting][]

/** The default of every setting that has one. */
export const DEFAULTS: Defaults = Object.freeze(
  Object.fromEntries(ROWS.filter(([, s]) => s.default !== undefined).map(([key, s]) => [key, s.default])),
) as Defaults

/** Options that are actions, not settings. */
const ACTIONS = [
  { flag: 'help', short: 'h', describe: 'Print this help and exit.' },
  { flag: 'version', short: undefined, describe: 'Print the version and exit.' },
] as const

/** A configuration that cannot be used. `problems` lists every one, each naming its flag and variable. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID'
  readonly problems: string[]

  constructor(problems: string[]) {
    super(
      `invalid configuration (${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}):\n` +
        problems.map(p => `  ${p}`).join('\n'),
    )
    this.name = 'ConfigError'
    this.problems = problems
  }
}

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

// Node's own rule for a value that would be taken for an option, except that negative
// numbers pass so that `--port -1` gets the range message rather than "missing value".
function looksLikeOption(arg: string): boolean {
  return arg.length > 1 && arg.startsWith('-') && !/^-[\d.]/.test(arg)
}

const KNOWN_OPTIONS = new Set([
  ...ROWS.map(([, s]) => `--${s.flag}`),
  ...ACTIONS.flatMap(a => (a.short === undefined ? [`--${a.flag}`] : [`--${a.flag}`, `-${a.short}`])),
])

interface ScannedArgs {
  flags: Map<string, string>
  action?: 'help' | 'version'
  problems: string[]
}

function scanArgs(argv: string[]): ScannedArgs {
  const byFlag = new Map(ROWS.map(([, s]) => [s.flag, s]))
  // Every option is declared boolean so that parseArgs never swallows the next argument;
  // values are paired here, which lets `--port --host x` be reported rather than misread.
  const options = Object.fromEntries([
    ...ROWS.map(([, s]) => [s.flag, { type: 'boolean' as const }]),
    ...ACTIONS.map(a => [a.flag, a.short === undefined ? { type: 'boolean' as const } : { type: 'boolean' as const, short: a.short }]),
  ])
  // strict: false so that every problem is collected rather than the first thrown.
  const { tokens } = parseArgs({ args: argv, options, strict: false, allowPositionals: true, tokens: true })
  const flags = new Map<string, string>()
  const problems: string[] = []
  const consumed = new Set<number>()
  const reported = new Set<number>()
  let action: 'help' | 'version' | undefined

  for (const token of tokens) {
    if (consumed.has(token.index) || token.kind === 'option-terminator') continue
    if (token.kind === 'positional') {
      problems.push(`unexpected argument "${token.value}" (oomwatch takes no arguments; see --help)`)
      continue
    }
    if (token.name === 'help' || token.name === 'version') {
      action ??= token.name
      continue
    }
    const setting = byFlag.get(token.name)
    let value = token.value
    const next = argv[token.index + 1]
    if (value === undefined && next !== undefined) {
      if (!looksLikeOption(next)) {
        value = next
        consumed.add(token.index + 1)
      } else if (setting !== undefined && !KNOWN_OPTIONS.has(next.split('=')[0] as string)) {
        // `--token -abc` meant -abc as the value: report the missing `=`, never the value.
        consumed.add(token.index + 1)
      }
    }
    if (setting === undefined) {
      // Its value (if any) was consumed unseen: `--tokn SECRET` must not echo the secret.
      // `-port` arrives as -p -o -r -t; one problem for the whole argument is enough.
      if (!reported.has(token.index)) {
        reported.add(token.index)
        const name = token.rawName.startsWith('--') ? token.rawName : argv[token.index]
        problems.push(`unknown option ${name} (see --help)`)
      }
    } else if (value === undefined) {
      const hint = next === undefined ? '' : `; a value starting with "-" is written --${setting.flag}=VALUE`
      problems.push(`--${setting.flag}: missing value, expected ${setting.arg}${hint} (setting --${setting.flag} / ${setting.env})`)
    } else {
      flags.set(setting.flag, value)
    }
  }
  return action === undefined ? { flags, problems } : { flags, problems, action }
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
export function loadConfig(
  argv: string[],
  env: Record<string, string | undefined>,
): Config | { help: true } | { version: true } {
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
      intervalOrigin.from === 'default'
        ? `the default of --${flag} / ${env}`
        : `from ${intervalOrigin.from === 'flag' ? `--${flag}` : env}`
    problems.push(problem(SETTINGS.fastIntervalMs, fastOrigin, `expected at most the interval (${interval} ms, ${from})`))
  }

  // Stacks and command lines are for the people on call, not for whoever reaches the port.
  const hostOrigin = origins.get('host')
  if (hostOrigin && !isLoopback(values.host as string) && values.token === undefined && values.allowUnauthenticated !== true) {
    problems.push(
      problem(
        SETTINGS.host,
        hostOrigin,
        'listening beyond loopback needs a token (--token / OOMWATCH_TOKEN), or --allow-unauthenticated / OOMWATCH_ALLOW_UNAUTHENTICATED=true to accept that anyone who reaches the port reads stacks and command lines',
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

const HELP_WIDTH = 80
const DESCRIBE_INDENT = '      '

/** Greedy word wrap; the help text is read in terminals and `kubectl logs`. */
function wrap(text: string, indent: string): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line !== '' && indent.length + line.length + 1 + word.length > HELP_WIDTH) {
      lines.push(indent + line)
      line = word
    } else {
      line = line === '' ? word : `${line} ${word}`
    }
  }
  lines.push(indent + line)
  return lines
}

/** Usage text: every flag with its environment variable and default, generated from {@link SETTINGS}. */
export function helpText(): string {
  const lines = [
    'Usage: oomwatch [options]',
    '',
    ...wrap(
      "Watches Python processes' memory and streams their stacks and rlimits over WebSocket " +
        'before the kernel OOM killer fires. Every option is also an environment variable (shown ' +
        'beside it); a flag wins over the environment, and an empty variable counts as unset.',
      '',
    ),
    '',
    'Options:',
  ]
  const heads = ROWS.map(([, s]) => `  --${s.flag} ${s.arg}`)
  const column = Math.max(...heads.map(h => h.length)) + 2
  ROWS.forEach(([, setting], i) => {
    lines.push(`${(heads[i] as string).padEnd(column)}${setting.env}`)
    const fallback =
      setting.default === undefined ? `Unset: ${String(setting.unset)}.` : `Default: ${String(setting.default)}.`
    lines.push(...wrap(`${setting.describe} ${fallback}`, DESCRIBE_INDENT))
  })
  for (const action of ACTIONS) {
    lines.push(`  ${action.short === undefined ? '' : `-${action.short}, `}--${action.flag}`)
    lines.push(...wrap(action.describe, DESCRIBE_INDENT))
  }
  return lines.join('\n') + '\n'
}

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
