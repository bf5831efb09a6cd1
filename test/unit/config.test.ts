import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError, DEFAULTS, helpText, loadConfig, redactConfig, SETTINGS, type Config } from '../../src/config.js'
import { DEFAULT_REDACT } from '../../src/format/redact-secrets.js'
import { config, problemsOf, type Env } from '../helpers/config.js'

t.test('defaults', async t => {
  const expected = {
    port: 9642,
    host: '127.0.0.1',
    procRoot: '/proc',
    intervalMs: 100,
    fastIntervalMs: 20,
    refreshMs: 5000,
    scanMs: 500,
    windowMs: 2000,
    triggerFraction: 0.9,
    triggerSeconds: 3,
    cooldownMs: 60000,
    pyspyTimeoutMs: 5000,
    flamegraph: true,
    flamegraphSeconds: 5,
    flamegraphMax: 20,
    nofileRisk: 1048576,
    redact: DEFAULT_REDACT,
    heartbeatMs: 30000,
    logLevel: 'info',
    journalMaxBytes: 67108864,
    maxClients: 64,
    maxConnections: 256,
    requestTimeoutMs: 10000,
    metricsPid: false,
    failOpen: false,
    clientBufferBytes: 8388608,
    onRunaway: 'none',
    stopGraceMs: 1000,
    freezeMaxMs: 60000,
    freezeFallback: 'release',
    actOnEntrypoint: false,
    allowUnauthenticated: false,
  }
  t.strictSame(DEFAULTS, expected)
  t.ok(Object.isFrozen(DEFAULTS))
  // Optional settings are absent, not present as undefined.
  t.strictSame(config([], {}), expected)
})

t.test('environment, and empty variables count as unset', async t => {
  const procRoot = t.testdir({})
  const c = config([], {
    OOMWATCH_PORT: '0',
    OOMWATCH_HOST: '0.0.0.0',
    OOMWATCH_PYSPY: '/usr/local/bin/py-spy',
    OOMWATCH_MEMORY_LIMIT: '512Mi',
    OOMWATCH_TOKEN: 'hunter2-hunter2-hunter2',
    OOMWATCH_PROC: procRoot,
    OOMWATCH_MATCH: 'gunicorn|celery',
    OOMWATCH_INTERVAL_MS: '50',
    OOMWATCH_FAST_INTERVAL_MS: '50',
    OOMWATCH_REFRESH_MS: '2000',
    OOMWATCH_SCAN_MS: '250',
    OOMWATCH_WINDOW_MS: '1000',
    OOMWATCH_TRIGGER_FRACTION: '1',
    OOMWATCH_TRIGGER_SECONDS: '.5',
    OOMWATCH_COOLDOWN_MS: '0',
    OOMWATCH_PYSPY_TIMEOUT_MS: '2147483647',
    OOMWATCH_NOFILE_RISK: '65536',
    OOMWATCH_HEARTBEAT_MS: '10000',
    OOMWATCH_LOG_LEVEL: 'DEBUG',
    OOMWATCH_SERVICE_HOST: '10.0.0.1', // a service link: unknown OOMWATCH_* variables are ignored
  })
  t.match(c, {
    port: 0,
    host: '0.0.0.0',
    pyspy: '/usr/local/bin/py-spy',
    memoryLimit: 536870912,
    token: 'hunter2-hunter2-hunter2',
    procRoot,
    intervalMs: 50,
    fastIntervalMs: 50,
    refreshMs: 2000,
    scanMs: 250,
    windowMs: 1000,
    triggerFraction: 1,
    triggerSeconds: 0.5,
    cooldownMs: 0,
    pyspyTimeoutMs: 2147483647,
    nofileRisk: 65536,
    heartbeatMs: 10000,
    logLevel: 'debug',
  })
  t.ok(c.match?.test('python -m celery worker'))
  t.notOk(c.match?.test('python app.py'))

  const empty = config([], { OOMWATCH_PORT: '', OOMWATCH_TOKEN: '', OOMWATCH_MATCH: '', OOMWATCH_PROC: '' })
  t.equal(empty.port, 9642)
  t.equal(empty.procRoot, '/proc')
  t.notOk('token' in empty)
  t.notOk('match' in empty)
})

t.test('flags override the environment; the last of a repeated flag wins', async t => {
  const env = { OOMWATCH_PORT: '1234', OOMWATCH_HOST: 'localhost', OOMWATCH_TOKEN: 'from-env', OOMWATCH_TRIGGER_SECONDS: '5' }
  const c = config(['--port', '4321', '--token=from-flag', '--trigger-seconds', '1e-1', '--memory-limit', '1G', '--log-level', 'warn'], env)
  t.equal(c.port, 4321)
  t.equal(c.host, 'localhost')
  t.equal(c.token, 'from-flag')
  t.equal(c.triggerSeconds, 0.1)
  t.equal(c.memoryLimit, 1000000000)
  t.equal(c.logLevel, 'warn')
  t.equal(config(['--port', '1', '--port=2']).port, 2)
  // A bad variable that a flag overrides is not looked at.
  t.equal(config(['--port', '80'], { OOMWATCH_PORT: 'abc' }).port, 80)
})

t.test('--help, -h and --version return markers and win over problems', async t => {
  t.strictSame(loadConfig(['--help'], {}), { help: true })
  t.strictSame(loadConfig(['-h'], {}), { help: true })
  t.strictSame(loadConfig(['--prot', '1', '-h'], { OOMWATCH_PORT: 'abc' }), { help: true })
  t.strictSame(loadConfig(['--version'], {}), { version: true })
  t.strictSame(loadConfig(['--version', '--help'], {}), { version: true }, 'the first one given')
  t.strictSame(loadConfig(['--port', '-h'], {}), { help: true }, 'not taken as a value')
})

// One bad value per setting; the Record type makes the compiler demand every key.
const BAD: Record<keyof Config, string> = {
  port: '65536',
  host: 'not a host',
  pyspy: '',
  memoryLimit: '512MB',
  token: '',
  tokenFile: '',
  procRoot: '/nonexistent/oomwatch-test',
  match: '(',
  intervalMs: '0',
  fastIntervalMs: '1.5',
  refreshMs: '1e3',
  scanMs: ' 500 ',
  windowMs: '0x10',
  triggerFraction: '1.5',
  triggerSeconds: '0',
  cooldownMs: '-1',
  pyspyTimeoutMs: '2147483648',
  flamegraph: 'on',
  flamegraphSeconds: '61',
  flamegraphMax: '0',
  nofileRisk: '0',
  redact: '(',
  heartbeatMs: 'abc',
  logLevel: 'verbose',
  journalDir: '/etc/hostname',
  journalMaxBytes: '1Ki',
  maxClients: '0',
  maxConnections: '0',
  requestTimeoutMs: '99',
  allowedHosts: 'http://evil.example',
  clientBufferBytes: '1Ki',
  metricsPort: '9642x',
  metricsPid: 'yes',
  failOpen: 'maybe',
  clampNofile: '0',
  onRunaway: 'kill',
  stopGraceMs: '0',
  freezeMaxMs: '1.5',
  freezeFallback: 'kill',
  actOnEntrypoint: 'yes',
  allowUnauthenticated: 'yes',
  allowedOrigins: 'grafana.example',
}

t.test('every setting rejects a bad value, naming its flag, variable and value', async t => {
  t.strictSame(Object.keys(BAD).sort(), Object.keys(SETTINGS).sort())
  for (const [key, setting] of Object.entries(SETTINGS)) {
    const bad = BAD[key as keyof Config]
    const flagProblems = problemsOf([`--${setting.flag}=${bad}`])
    t.equal(flagProblems.length, 1, `${key} by flag`)
    const [p = ''] = flagProblems
    t.match(p, /expected /, key)
    t.ok(p.endsWith(`(setting --${setting.flag} / ${setting.env})`), `${key}: names flag and variable`)
    if (setting.secret === true) {
      t.ok(p.startsWith(`--${setting.flag}: `), `${key}: value not shown`)
    } else {
      t.ok(p.startsWith(`--${setting.flag} "${bad}": `), `${key}: value shown`)
    }
    // An empty variable is unset, so only non-empty bad values can come from the environment.
    if (bad !== '') {
      const envProblems = problemsOf([], { [setting.env]: bad })
      t.equal(envProblems.length, 1, `${key} by environment`)
      t.ok(envProblems[0]?.startsWith(`${setting.env}="${bad}": `), `${key}: variable and value`)
    }
  }
})

t.test('messages say what is accepted', async t => {
  t.strictSame(problemsOf([], { OOMWATCH_PORT: 'abc' }), [
    'OOMWATCH_PORT="abc": expected an integer from 0 to 65535 (setting --port / OOMWATCH_PORT)',
  ])
  t.strictSame(problemsOf(['--trigger-fraction', '1.5']), [
    '--trigger-fraction "1.5": expected a number greater than 0 and at most 1 (setting --trigger-fraction / OOMWATCH_TRIGGER_FRACTION)',
  ])
  t.strictSame(problemsOf(['--trigger-seconds', '-1']), [
    '--trigger-seconds "-1": expected a number greater than 0 (setting --trigger-seconds / OOMWATCH_TRIGGER_SECONDS)',
  ])
  t.match(problemsOf(['--interval', '1.5']), [/expected a whole number of milliseconds from 1 to 2147483647/])
  t.match(problemsOf(['--cooldown', 'x']), [/from 0 to 2147483647/])
  t.match(problemsOf(['--memory-limit', '512MB']), [
    /^--memory-limit "512MB": unknown suffix "MB"; expected a positive number of bytes: .*\(setting --memory-limit \/ OOMWATCH_MEMORY_LIMIT\)$/,
  ])
  t.match(problemsOf(['--match', '(']), [/^--match "\(": expected a regular expression \(Invalid regular expression: .*\)/])
  t.match(problemsOf(['--match=']), [/expected a non-empty regular expression/])
  t.match(problemsOf(['--log-level', 'verbose']), [/expected one of trace, debug, info, warn, error, fatal, silent/])
  t.match(problemsOf(['--host', 'http://x']), [/expected a host name or an IP address/])
  t.match(problemsOf(['--pyspy=']), [/^--pyspy "": expected a path to the py-spy executable/])
  t.match(problemsOf(['--token=']), ['--token: expected a non-empty token (setting --token / OOMWATCH_TOKEN)'])
})

t.test('integers and numbers parse strictly', async t => {
  for (const text of ['1.5', '1e3', ' 3', '3 ', '0x10', '+5', '-1', '', '65536', '99999999999999999999', '1_000']) {
    t.equal(problemsOf([`--port=${text}`]).length, 1, `port ${JSON.stringify(text)}`)
  }
  for (const text of ['0', '00', '65535', '08080']) {
    t.equal(config([`--port=${text}`]).port, Number(text), `port ${text}`)
  }
  for (const text of [' 0.5', '0.5 ', '0x1', 'Infinity', '1e999', '0', '0.0', '-0.5', '', 'NaN', '1/2', '+0.5']) {
    t.equal(problemsOf([`--trigger-fraction=${text}`]).length, 1, `fraction ${JSON.stringify(text)}`)
  }
  for (const [text, n] of [
    ['.5', 0.5],
    ['5e-1', 0.5],
    ['1.', 1],
    ['0.95', 0.95],
  ] as const) {
    t.equal(config([`--trigger-fraction=${text}`]).triggerFraction, n, `fraction ${text}`)
  }
  t.equal(config(['--trigger-seconds', '1e3']).triggerSeconds, 1000)
})

t.test('host', async t => {
  for (const host of ['0.0.0.0', '::', '::1', 'localhost', 'oomwatch.default.svc.cluster.local', 'my_host']) {
    t.equal(config(['--host', host], { OOMWATCH_ALLOW_UNAUTHENTICATED: 'true' }).host, host)
  }
  for (const host of ['-x', 'a b', '[::1]', 'host:80', 'x.']) t.equal(problemsOf([`--host=${host}`]).length, 1, host)
})

t.test('beyond loopback, a token or an explicit --allow-unauthenticated is required', async t => {
  t.match(problemsOf(['--host', '0.0.0.0']), [
    /^--host "0\.0\.0\.0": listening beyond loopback needs a token \(--token-file \/ OOMWATCH_TOKEN_FILE, or OOMWATCH_TOKEN\), or --allow-unauthenticated/,
  ])
  t.match(problemsOf([], { OOMWATCH_HOST: '10.1.2.3', OOMWATCH_ALLOW_UNAUTHENTICATED: 'false' }), [
    /^OOMWATCH_HOST="10\.1\.2\.3": listening beyond loopback/,
  ])
  t.equal(config(['--host', '0.0.0.0'], { OOMWATCH_TOKEN: 's3cret-s3cret-s3cret' }).host, '0.0.0.0', 'a token suffices')
  t.equal(config(['--host', '0.0.0.0', '--allow-unauthenticated', 'true']).allowUnauthenticated, true, 'so does the explicit choice')
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) t.equal(config(['--host', host]).host, host, `${host} is loopback`)
})

t.test('journal, clients and origins', async t => {
  const dir = t.testdir({ file: 'x' })
  t.equal(config(['--journal-dir', dir]).journalDir, dir)
  t.equal(config(['--journal-dir', `${dir}/new`]).journalDir, `${dir}/new`, 'a missing directory is made at start')
  t.match(problemsOf(['--journal-dir', `${dir}/file`]), [/expected a directory, found another kind of file/])
  t.equal(config(['--journal-max-bytes', '16Mi']).journalMaxBytes, 16 * 1024 * 1024)
  t.equal(config([], { OOMWATCH_MAX_CLIENTS: '5' }).maxClients, 5)
  t.same(config(['--allowed-origins', 'https://grafana.example, http://localhost:3000']).allowedOrigins, [
    'https://grafana.example',
    'http://localhost:3000',
  ])
  t.match(problemsOf(['--allowed-origins', 'https://ok.example,nope']), [/"nope" is not one/])
  t.equal(config(['--allow-unauthenticated', '1']).allowUnauthenticated, true)
})

t.test('procfs root must be an existing directory', async t => {
  const dir = t.testdir({ file: 'x' })
  t.equal(config(['--proc', dir]).procRoot, dir)
  t.match(problemsOf(['--proc', join(dir, 'missing')]), [/expected an existing directory; it does not exist/])
  t.match(problemsOf(['--proc', join(dir, 'file')]), [/expected an existing directory; it is not a directory/])
  t.match(problemsOf(['--proc', join(dir, 'file', 'sub')]), [/expected an existing directory \(ENOTDIR/])
})

t.test('--fast-interval must be at most --interval, wherever each came from', async t => {
  t.strictSame(problemsOf([], { OOMWATCH_FAST_INTERVAL_MS: '200' }), [
    'OOMWATCH_FAST_INTERVAL_MS="200": expected at most the interval (100 ms, the default of --interval / OOMWATCH_INTERVAL_MS) (setting --fast-interval / OOMWATCH_FAST_INTERVAL_MS)',
  ])
  t.strictSame(problemsOf(['--interval', '10']), [
    'default "20": expected at most the interval (10 ms, from --interval) (setting --fast-interval / OOMWATCH_FAST_INTERVAL_MS)',
  ])
  t.match(problemsOf(['--fast-interval', '50'], { OOMWATCH_INTERVAL_MS: '40' }), [
    /^--fast-interval "50": expected at most the interval \(40 ms, from OOMWATCH_INTERVAL_MS\)/,
  ])
  t.equal(config(['--fast-interval', '100']).fastIntervalMs, 100, 'equal is fine')
  // When either value is bad on its own, only that is reported.
  t.equal(problemsOf(['--interval', 'x', '--fast-interval', '500']).length, 1)
  t.equal(problemsOf(['--interval', '5', '--fast-interval', 'x']).length, 1)
})

t.test('several problems are reported at once', async t => {
  const err = t.throws(() =>
    loadConfig(['--port', 'abc', '--trigger-fraction', '2', '--prot', '1', 'extra'], {
      OOMWATCH_LOG_LEVEL: 'loud',
      OOMWATCH_MEMORY_LIMIT: '-5',
    }),
  ) as ConfigError
  t.type(err, ConfigError)
  t.equal(err.code, 'CONFIG_INVALID')
  t.equal(err.name, 'ConfigError')
  t.equal(err.problems.length, 6)
  t.match(
    err.problems.join('\n'),
    /unknown option --prot[^]*unexpected argument "extra"[^]*--port "abc"[^]*OOMWATCH_MEMORY_LIMIT="-5": negative[^]*--trigger-fraction "2"[^]*OOMWATCH_LOG_LEVEL="loud"/,
  )
  t.match(err.message, /^invalid configuration \(6 problems\):\n {2}unknown option --prot \(see --help\)\n/)
  t.throws(() => loadConfig(['--port', 'x'], {}), { message: /^invalid configuration \(1 problem\):\n/ })
})

t.test('unknown options, missing values and stray arguments', async t => {
  t.strictSame(problemsOf(['--prot', '8080']), ['unknown option --prot (see --help)'])
  t.strictSame(problemsOf(['--prot=8080']), ['unknown option --prot (see --help)'])
  t.strictSame(problemsOf(['-port', '8080']), ['unknown option -port (see --help)'], 'one problem, not four')
  t.strictSame(problemsOf(['-x']), ['unknown option -x (see --help)'])
  t.strictSame(problemsOf(['--prot', '--port', '1']), ['unknown option --prot (see --help)'], '--port still read')
  t.strictSame(problemsOf(['--port']), ['--port: missing value, expected <port> (setting --port / OOMWATCH_PORT)'])
  t.strictSame(problemsOf(['--port', '--host', 'localhost']), [
    '--port: missing value, expected <port>; a value starting with "-" is written --port=VALUE (setting --port / OOMWATCH_PORT)',
  ])
  t.equal(config(['--match=-v']).match?.source, '-v')
  t.match(problemsOf(['--port', '-1']), [/^--port "-1": expected an integer/], 'negative numbers are values')
  t.strictSame(problemsOf(['extra']), ['unexpected argument "extra" (oomwatch takes no arguments; see --help)'])
  t.strictSame(problemsOf(['--', '--port']), ['unexpected argument "--port" (oomwatch takes no arguments; see --help)'])
})

t.test('the token never appears in messages', async t => {
  const secret = 'hunter2-s3cret'
  const cases: [string[], Env][] = [
    [['--tokn', secret], {}],
    [['--tokn', secret, '--port', 'x'], {}],
    [['--token', `-${secret}`], {}],
    [['--token', secret, '--port', 'x'], { OOMWATCH_TOKEN: secret }],
    [['--port', 'x'], { OOMWATCH_TOKEN: secret }],
  ]
  for (const [argv, env] of cases) {
    const err = t.throws(() => loadConfig(argv, env)) as ConfigError
    t.notMatch(err.message, secret, argv.join(' '))
    t.notMatch(err.problems.join('\n'), secret)
  }
  t.strictSame(problemsOf(['--token', '-abc']), [
    '--token: missing value, expected <token>; a value starting with "-" is written --token=VALUE (setting --token / OOMWATCH_TOKEN)',
  ])
  t.equal(config(['--token=-abc']).token, '-abc')
})

t.test('Kubernetes service links get a hint', async t => {
  t.match(problemsOf([], { OOMWATCH_PORT: 'tcp://10.96.0.12:9642' }), [
    /^OOMWATCH_PORT="tcp:\/\/10.96.0.12:9642": expected an integer from 0 to 65535; this looks like the service link .*enableServiceLinks: false/,
  ])
})

t.test('a variable that is not a string names its type', async t => {
  t.strictSame(problemsOf([], { OOMWATCH_PORT: 8080 as unknown as string }), [
    'OOMWATCH_PORT: expected a string, got number (setting --port / OOMWATCH_PORT)',
  ])
})

t.test('help text is generated from the table', async t => {
  const help = helpText()
  for (const setting of Object.values(SETTINGS)) {
    t.match(help, new RegExp(`^ {2}--${setting.flag} ${setting.arg} +${setting.env}$`, 'm'), setting.flag)
    const fallback = setting.default === undefined ? `Unset: ${String(setting.unset)}.` : `Default: ${String(setting.default)}.`
    t.ok(help.replace(/\n +/g, ' ').includes(`${setting.describe} ${fallback}`), `${setting.flag}: description and default`)
  }
  t.match(help, /^Usage: oomwatch \[options\]$/m)
  t.match(help, /^ {2}-h, --help$/m)
  t.match(help, /^ {2}--version$/m)
  t.match(help, 'Default: 9642.')
  t.match(help, 'Default: 127.0.0.1.')
  for (const line of help.split('\n')) t.ok(line.length <= 80, `fits 80 columns: ${line}`)
})

t.test('redactConfig hides the token and makes the match printable', async t => {
  const dir = t.testdir({})
  writeFileSync(join(dir, 'unused'), '')
  const c = config(['--token', 'hunter2', '--match', 'celery', '--proc', dir])
  const shown = redactConfig(c)
  t.equal(shown.token, '[redacted]')
  t.equal(shown.match, 'celery')
  t.equal(shown.procRoot, dir)
  t.notMatch(JSON.stringify(shown), 'hunter2')
  t.notOk('pyspy' in shown)
  t.strictSame(redactConfig(config([])), DEFAULTS)
})

t.test('--metrics-port: a port of its own, and what a failed parse still gives a fail-open start', async t => {
  t.equal(config(['--metrics-port', '9643']).metricsPort, 9643)
  t.equal(config(['--port', '0', '--metrics-port', '0']).metricsPort, 0, 'both free ports: no clash')
  t.match(problemsOf(['--port', '9643', '--metrics-port', '9643']), [/--metrics-port.*expected another port than --port/])
  try {
    loadConfig(['--fail-open', 'true', '--metrics-port', '9643'], { OOMWATCH_INTERVAL_MS: 'soon' })
    t.fail('a bad interval is a configuration error')
  } catch (error) {
    t.type(error, ConfigError)
    const { parsed } = error as ConfigError
    t.equal(parsed.failOpen, true, 'the settings that parsed are kept')
    t.equal(parsed.metricsPort, 9643)
    t.equal(parsed.intervalMs, undefined, 'the bad one is not')
  }
})
