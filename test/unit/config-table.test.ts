import t from 'tap'
import { DEFAULTS, SETTINGS, type Config, type Defaults } from '../../src/config.js'
import { boolean, integer, oneOf, type Parsed } from '../../src/config/parse.js'
import { optional, withDefault, type ConfigOf, type ValueOf } from '../../src/config/setting.js'

// Compile-time checks: `npx tsc --noEmit -p .` fails when a derived type drifts.
type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false
function assertType<T extends true>(): T | undefined {
  return undefined
}
assertType<Equal<Config['port'], number>>()
assertType<Equal<Config['onRunaway'], 'none' | 'stop' | 'freeze'>>()
assertType<Equal<Config['freezeFallback'], 'release' | 'stop'>>()
assertType<Equal<Config['logLevel'], 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent'>>()
assertType<Equal<Config['match'], RegExp | undefined>>()
assertType<Equal<Config['allowedOrigins'], string[] | undefined>>()
assertType<Equal<keyof Config, keyof typeof SETTINGS>>()
assertType<Equal<keyof Defaults, { [K in keyof Config]-?: undefined extends Config[K] ? never : K }[keyof Config]>>()

t.test('the Config type follows each row: name, parser, optionality', async t => {
  const table = {
    count: withDefault({ flag: 'count', env: 'X_COUNT', arg: '<n>', describe: 'A count.', default: 3, parse: integer(0, 9) }),
    // An inline parser: the members without a value do not widen the type to include undefined.
    name: optional({
      flag: 'name',
      env: 'X_NAME',
      arg: '<s>',
      describe: 'A name.',
      unset: 'none',
      parse: text => (text ? { value: text } : { reason: 'expected a name' }),
    }),
    mode: withDefault({ flag: 'mode', env: 'X_MODE', arg: '<a|b>', describe: 'A mode.', default: 'a', parse: oneOf(['a', 'b']) }),
  }
  assertType<Equal<ConfigOf<typeof table>, { count: number; name?: string; mode: 'a' | 'b' }>>()
  assertType<Equal<ValueOf<typeof table.name>, string>>()
  // @ts-expect-error a default must be of the parser's type
  withDefault({ flag: 'f', env: 'X_F', arg: '<n>', describe: 'F.', default: 'three', parse: integer(0, 9) })
  // @ts-expect-error a default must be one of the choices
  withDefault({ flag: 'f', env: 'X_F', arg: '<a|b>', describe: 'F.', default: 'c', parse: oneOf(['a', 'b']) })
  // @ts-expect-error an optional setting says what happens when it is unset
  optional({ flag: 'f', env: 'X_F', arg: '<n>', describe: 'F.', parse: integer(0, 9) })
  // @ts-expect-error a setting with a default has no unset text
  withDefault({ flag: 'f', env: 'X_F', arg: '<b>', describe: 'F.', default: true, unset: 'off', parse: boolean })
  t.equal(table.count.default, 3)
})

t.test('every flag and variable is declared once, under one prefix', async t => {
  const rows = Object.values(SETTINGS)
  t.equal(new Set(rows.map(s => s.flag)).size, rows.length, 'flags are unique')
  t.equal(new Set(rows.map(s => s.env)).size, rows.length, 'variables are unique')
  for (const s of rows) {
    t.match(s.flag, /^[a-z]+(?:-[a-z]+)*$/, `${s.flag}: kebab-case`)
    t.match(s.env, /^OOMWATCH_[A-Z_]+$/, `${s.env}: OOMWATCH_ prefix`)
    t.ok(s.default === undefined ? typeof s.unset === 'string' : s.unset === undefined, `${s.flag}: a default or an unset text, not both`)
  }
})

t.test('the help-text order is the table order', async t => {
  t.strictSame(Object.keys(SETTINGS), [
    'port',
    'host',
    'metricsPort',
    'pyspy',
    'memoryLimit',
    'token',
    'tokenFile',
    'procRoot',
    'match',
    'intervalMs',
    'fastIntervalMs',
    'refreshMs',
    'scanMs',
    'windowMs',
    'triggerFraction',
    'triggerSeconds',
    'cooldownMs',
    'pyspyTimeoutMs',
    'flamegraph',
    'flamegraphSeconds',
    'flamegraphMax',
    'nofileRisk',
    'redact',
    'heartbeatMs',
    'logLevel',
    'journalDir',
    'journalMaxBytes',
    'maxClients',
    'maxConnections',
    'requestTimeoutMs',
    'allowedHosts',
    'metricsPid',
    'failOpen',
    'clientBufferBytes',
    'clampNofile',
    'onRunaway',
    'stopGraceMs',
    'freezeMaxMs',
    'freezeFallback',
    'actOnEntrypoint',
    'allowUnauthenticated',
    'allowedOrigins',
  ])
})

t.test('every default, written as the help text shows it, parses back to itself', async t => {
  for (const [key, setting] of Object.entries(SETTINGS)) {
    if (setting.default === undefined) continue
    const parsed: Parsed<unknown> = setting.parse(String(setting.default))
    t.strictSame(parsed, { value: setting.default }, `${key}: "${String(setting.default)}"`)
  }
  const defaulted = Object.entries(SETTINGS).flatMap(([key, setting]) => (setting.default === undefined ? [] : [key]))
  t.strictSame(Object.keys(DEFAULTS), defaulted, 'DEFAULTS holds exactly those')
})

t.test('oneOf lists its choices and takes them exactly', async t => {
  t.strictSame(oneOf(['none', 'stop', 'freeze'])('stop'), { value: 'stop' })
  t.strictSame(oneOf(['none', 'stop', 'freeze'])('STOP'), { reason: 'expected none, stop or freeze' })
  t.strictSame(oneOf(['release', 'stop'])(''), { reason: 'expected release or stop' })
  t.strictSame(oneOf(['on'])('off'), { reason: 'expected on' })
})
