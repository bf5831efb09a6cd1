import t from 'tap'
import { escapeControls } from '../../src/format/escape-controls.js'

t.test('control characters become escapes; other text stays', async t => {
  const cases: [string, string][] = [
    ['plain /app/worker.py --x', 'plain /app/worker.py --x'],
    ['\x1b]0;title\x07', '\\x1b]0;title\\x07'],
    ['a\nINCIDENT fake-1 pid 1 forged', 'a\\nINCIDENT fake-1 pid 1 forged'],
    ['cr\rtab\t', 'cr\\rtab\\t'],
    ['\x00\x1f\x7f', '\\x00\\x1f\\x7f'],
    ['\x85\x9b31m', '\\x85\\x9b31m'],
    ['\u2028\u2029', '\\u2028\\u2029'],
    ['evil\u202efdp.py', 'evil\\u202efdp.py'],
    [
      '\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069\u200e\u200f\u061c',
      '\\u202a\\u202b\\u202c\\u202d\\u2066\\u2067\\u2068\\u2069\\u200e\\u200f\\u061c',
    ],
    ['naïve 日本 émoji 🐍 \\n', 'naïve 日本 émoji 🐍 \\n'],
  ]
  // Named by expectation: a raw NEL or separator in a test name would break the TAP stream itself.
  for (const [input, expected] of cases) t.equal(escapeControls(input), expected, expected)
})

t.test('no control character survives, whatever the input', async t => {
  let all = ''
  for (let code = 0; code < 0x3000; code++) all += String.fromCharCode(code)
  // eslint-disable-next-line no-control-regex -- looking for them is the point
  t.notMatch(escapeControls(all), /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/)
})
