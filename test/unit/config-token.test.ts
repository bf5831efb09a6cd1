import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { startWarnings } from '../../src/config.js'
import { readTokenFile, tokenProblem } from '../../src/config/token.js'
import { config, problemsOf } from '../helpers/config.js'

// The token's rules as the real configuration reader applies them: one source, a token file
// that gives a token, no placeholder, and a long enough token beyond loopback.

const GOOD = 'Zx3kq9P-7mWd_2LrT8vB4nYc'

t.test('--token-file / OOMWATCH_TOKEN_FILE: a file that holds the token', async t => {
  const dir = t.testdir({ token: `${GOOD}\n`, crlf: `${GOOD}\r\n`, bare: GOOD })
  const path = join(dir, 'token')
  t.equal(config(['--token-file', path]).tokenFile, path)
  t.equal(config([], { OOMWATCH_TOKEN_FILE: path, OOMWATCH_HOST: '0.0.0.0' }).tokenFile, path, 'it counts as a token beyond loopback')
  t.notOk('token' in config(['--token-file', path]), 'the token itself is read by the agent, at each check')
  for (const name of ['token', 'crlf', 'bare']) t.same(readTokenFile(join(dir, name)), { token: GOOD }, `${name}: trailing newline trimmed`)
})

t.test('both a token and a token file: exit 2, naming both', async t => {
  const path = join(t.testdir({ token: GOOD }), 'token')
  t.strictSame(problemsOf(['--token', GOOD, '--token-file', path]), [
    `--token-file "${path}": the token is also set by --token: set one of the two (the file is safer) ` +
      '(setting --token-file / OOMWATCH_TOKEN_FILE)',
  ])
  t.match(problemsOf([], { OOMWATCH_TOKEN: GOOD, OOMWATCH_TOKEN_FILE: path }), [
    /^OOMWATCH_TOKEN_FILE=".*": the token is also set by OOMWATCH_TOKEN/,
  ])
  t.match(problemsOf(['--token-file', path], { OOMWATCH_TOKEN: GOOD }), [/also set by OOMWATCH_TOKEN/])
})

t.test('a token file that gives no token at start: exit 2, naming the file and the fix', async t => {
  const dir = t.testdir({ empty: '', newline: '\n', big: 'x'.repeat(5000), sub: {} })
  const cases: [string, RegExp][] = [
    [
      join(dir, 'missing'),
      /: it does not exist: mount the Secret there \(a volume of type secret\) or point the setting at the token file/,
    ],
    [join(dir, 'empty'), /: it is empty: write the token into it/],
    [join(dir, 'newline'), /: it is empty/],
    [join(dir, 'big'), /: it holds more than 4096 bytes/],
    [join(dir, 'sub'), /: it is a directory: name the file inside it/],
    ['/dev/zero', /: it is not a regular file/],
  ]
  for (const [path, reason] of cases) {
    const problems = problemsOf(['--token-file', path])
    t.equal(problems.length, 1, path)
    t.ok(problems[0]?.startsWith(`--token-file "${path}": `), `${path}: names the file`)
    t.match(problems[0], reason)
    t.ok(problems[0]?.endsWith('(setting --token-file / OOMWATCH_TOKEN_FILE)'))
  }
})

t.test('beyond loopback, a token shorter than 16 characters: exit 2, with how to make one', async t => {
  const fifteen = 'a'.repeat(15)
  t.strictSame(problemsOf(['--host', '0.0.0.0'], { OOMWATCH_TOKEN: fifteen }), [
    'OOMWATCH_TOKEN: a token must be at least 16 characters when listening beyond loopback (this one has 15); ' +
      "make one with: head -c 24 /dev/urandom | base64 | tr '+/' '-_' (setting --token / OOMWATCH_TOKEN)",
  ])
  t.notMatch(problemsOf(['--host', '10.0.0.1', '--token', fifteen]).join(), fifteen, 'the token is never shown')
  t.equal(config(['--host', '0.0.0.0'], { OOMWATCH_TOKEN: 'a'.repeat(16) }).host, '0.0.0.0', '16 suffice')
  for (const host of ['127.0.0.1', '::1', 'localhost'])
    t.equal(config(['--host', host, '--token', 'abc']).token, 'abc', `${host}: any length`)
  const path = join(t.testdir({ token: `${fifteen}\n` }), 'token')
  t.match(problemsOf(['--host', '::', '--token-file', path]), [
    new RegExp(`^--token-file "${path}": the token in it: a token must be at least 16 characters`),
  ])
  t.equal(config(['--token-file', path]).tokenFile, path, 'on loopback, from a file as well')
})

t.test("the placeholder of sidecar.yaml's Secret is never a token, on any address", async t => {
  for (const placeholder of ['REPLACE-ME-with-a-random-token-of-24-bytes', 'replace-me', 'change-me-to-a-long-random-string']) {
    t.match(problemsOf(['--token', placeholder]), [/^--token: this is the placeholder of sidecar\.yaml's Secret, not a token/], placeholder)
    t.match(problemsOf(['--host', '0.0.0.0'], { OOMWATCH_TOKEN: placeholder }), [/placeholder/])
  }
  const path = join(t.testdir(), 'token')
  writeFileSync(path, 'REPLACE-ME-with-a-random-token\n')
  t.match(problemsOf([], { OOMWATCH_TOKEN_FILE: path }), [/^OOMWATCH_TOKEN_FILE=".*": the token in it: this is the placeholder/])
  t.equal(tokenProblem('my-REPLACE-ME-token-0123456789', true), undefined, 'only a token that starts with it')
})

t.test('a token given as a flag is warned about at start; from the environment or a file, not', async t => {
  t.match(startWarnings(['--token', GOOD]), [
    /--token: any process of the pod can read it in \/proc\/<pid>\/cmdline; set OOMWATCH_TOKEN or --token-file/,
  ])
  t.equal(startWarnings([`--token=${GOOD}`]).length, 1)
  t.notMatch(startWarnings(['--token', GOOD]).join(), GOOD, 'never the token itself')
  t.same(startWarnings(['--port', '0']), [])
  t.same(startWarnings(['--token-file', '/run/secrets/token']), [])
})
