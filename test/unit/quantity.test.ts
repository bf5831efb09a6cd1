import t from 'tap'
import { formatBytes } from '../../src/format/bytes.js'
import { parseQuantity, QuantityError, tryParseQuantity } from '../../src/quantity.js'

const GOOD: [string, number][] = [
  ['268435456', 268435456],
  ['512Mi', 536870912],
  ['0512Mi', 536870912],
  ['1Ki', 1024],
  ['1Gi', 1073741824],
  ['1Ti', 2 ** 40],
  ['1Pi', 2 ** 50],
  ['1.5Gi', 1610612736],
  ['.5Ki', 512],
  ['0.001Ei', 1152921504606847], // 2^60 / 1000, rounded up
  ['128k', 128000],
  ['500M', 500000000],
  ['1G', 1000000000],
  ['1T', 1e12],
  ['1P', 1e15],
  ['0.001E', 1e15],
  ['1e9', 1000000000],
  ['1E9', 1000000000],
  ['1e+3', 1000],
  ['2.5e3', 2500],
  ['5.', 5],
  ['1.5', 2], // a fractional byte rounds up, as in Kubernetes
  ['0.1', 1],
  ['12345e-2', 124],
  ['100e-2', 1],
  ['1e-1', 1],
  ['1e-3', 1],
  ['1e-99999999999999999999', 1],
  ['2.007k', 2007], // 2007.0000000000002 in floats
  ['1.0000000001k', 1001],
  ['9007199254740991', Number.MAX_SAFE_INTEGER],
]

t.test('accepted quantities give exact bytes', async t => {
  for (const [text, bytes] of GOOD) {
    t.equal(parseQuantity(text), bytes, text)
    t.equal(tryParseQuantity(text), bytes, `${text} (try)`)
  }
})

const BAD: [string, RegExp][] = [
  ['', /empty/],
  ['-1', /negative/],
  ['-512Mi', /negative/],
  ['0', /zero/],
  ['0Mi', /zero/],
  ['0.0', /zero/],
  ['0e5', /zero/],
  ['100m', /milli \("m"\)/],
  ['512MB', /unknown suffix "MB"/],
  ['1gb', /unknown suffix "gb"/],
  ['1KiB', /unknown suffix "KiB"/],
  ['1e', /unknown suffix "e"/],
  ['0x10', /unknown suffix "x10"/],
  ['1 Gi', /whitespace/],
  [' 1', /whitespace/],
  ['1\n', /whitespace/],
  ['abc', /not a number/],
  ['Mi', /not a number/],
  ['+1', /not a number/],
  ['.', /not a number/],
  ['2E', /too large/],
  ['1Ei', /too large/],
  ['9007199254740992', /too large/],
  ['1e16', /too large/],
  ['1e17', /too large/],
  ['1e99999999999999999999', /too large/],
]

t.test('rejected quantities say why, show the value and what is accepted', async t => {
  for (const [text, reason] of BAD) {
    t.throws(() => parseQuantity(text), { name: 'QuantityError', code: 'QUANTITY_INVALID', value: text }, text)
    const err = tryParseQuantity(text)
    if (!(err instanceof QuantityError)) {
      t.fail(`${JSON.stringify(text)} accepted`)
      continue
    }
    t.match(err.message, `"${text}"`, `${text}: value in quotes`)
    t.match(err.message, reason, `${text}: reason`)
    t.match(err.detail, reason, `${text}: detail has the reason`)
    t.match(err.detail, /expected a positive number of bytes: plain digits .* Ki Mi Gi Ti Pi Ei .* k M G T P E/)
  }
})

t.test('a value that is not a string names its type', async t => {
  const err = tryParseQuantity(512 as unknown as string)
  t.type(err, QuantityError)
  t.match((err as QuantityError).message, /^invalid byte quantity 512: expected a string, got number;/)
})

t.test('formatBytes', async t => {
  const cases: [number, string][] = [
    [0, '0 B'],
    [812, '812 B'],
    [812.6, '812.6 B'],
    [1023, '1023 B'],
    [1024, '1 KiB'],
    [1536, '1.5 KiB'],
    [1048575, '1 MiB'], // 1023.999 KiB rounds to 1024.0, which is 1 MiB
    [1234567, '1.2 MiB'],
    [268435456, '256 MiB'],
    [1610612736, '1.5 GiB'],
    [2 ** 40 * 3.25, '3.3 TiB'],
    [2 ** 50, '1 PiB'],
    [2 ** 63, '8 EiB'],
    [2 ** 70, '1024 EiB'],
    [-1536, '-1.5 KiB'],
    [-0.01, '0 B'],
    [Number.NaN, 'NaN B'],
    [Number.POSITIVE_INFINITY, 'Infinity B'],
  ]
  for (const [n, text] of cases) t.equal(formatBytes(n), text, String(n))
})
