import t from 'tap'
import { DEFAULT_REDACT, REDACTED, redactPatternProblem, secretRedactor } from '../../src/format/redact-secrets.js'

const redact = secretRedactor(DEFAULT_REDACT)
const one = (arg: string) => redact.cmdline([arg])[0]

t.test('an option and its value: the value hidden, the option kept', async t => {
  const cases: [string[], string[]][] = [
    [
      ['--password', 'hunter2'],
      ['--password', REDACTED],
    ],
    [['--password=hunter2'], ['--password=***']],
    [
      ['--token', 'abc', 'serve'],
      ['--token', '***', 'serve'],
    ],
    [
      ['--api-key', 'k'],
      ['--api-key', '***'],
    ],
    [['--apiKey=k'], ['--apiKey=***']],
    [
      ['--db-password', 'p', '--port', '5432'],
      ['--db-password', '***', '--port', '5432'],
    ],
    [
      ['--client_secret', 's'],
      ['--client_secret', '***'],
    ],
    [['--access-token=t'], ['--access-token=***']],
    [
      ['--auth', 'user:pw'],
      ['--auth', '***'],
    ],
    [
      ['--authorization', 'Bearer x'],
      ['--authorization', '***'],
    ],
    [
      ['--credentials', 'c'],
      ['--credentials', '***'],
    ],
    [
      ['--passwd', 'p'],
      ['--passwd', '***'],
    ],
    [
      ['--passphrase', 'p'],
      ['--passphrase', '***'],
    ],
    [
      ['-pass', 'p'],
      ['-pass', '***'],
    ],
    [
      ['--PASSWORD', 'p'],
      ['--PASSWORD', '***'],
    ],
    [
      ['--secret-key-file', '/run/k'],
      ['--secret-key-file', '***'],
    ],
  ]
  for (const [args, expected] of cases) t.same(redact.cmdline(args), expected, args.join(' '))
})

t.test('a KEY=value argument: the value hidden', async t => {
  const cases: [string, string][] = [
    ['DB_PASSWORD=hunter2', 'DB_PASSWORD=***'],
    ['api_key=x', 'api_key=***'],
    ['AWS_SECRET_ACCESS_KEY=wJalr/K7MDENG+bPxRfiCY', 'AWS_SECRET_ACCESS_KEY=***'],
    ['PGPASSWORD=x', 'PGPASSWORD=***'],
    ['db.password=x', 'db.password=***'],
    ['GITHUB_TOKEN=ghp_x', 'GITHUB_TOKEN=***'],
    ['SECRET_KEY_BASE=x', 'SECRET_KEY_BASE=***'],
    ['--password=with spaces in it', '--password=***'],
    ['MYSQL_PWD=x', 'MYSQL_PWD=***'],
  ]
  for (const [arg, expected] of cases) t.equal(one(arg), expected, arg)
})

t.test('URLs with a password: the password hidden, user and host kept', async t => {
  const cases: [string, string][] = [
    ['postgres://user:pass@host/db', 'postgres://user:***@host/db'],
    ['redis://:hunter2@cache:6379/0', 'redis://:***@cache:6379/0'],
    ['amqp://u:p@ss@rabbit//', 'amqp://u:***@rabbit//'],
    ['--db=mysql+pymysql://u:pw@h:3306/x?charset=utf8', '--db=mysql+pymysql://u:***@h:3306/x?charset=utf8'],
    ['DATABASE_URL=postgresql://app:s3cret@db/app', 'DATABASE_URL=postgresql://app:***@db/app'],
    ['a postgres://u:p@h and redis://:q@r', 'a postgres://u:***@h and redis://:***@r'],
  ]
  for (const [arg, expected] of cases) t.equal(one(arg), expected, arg)
})

t.test('key=value pairs inside a longer argument: a libpq DSN, a query string, a process title', async t => {
  t.equal(one('host=db user=app password=hunter2 dbname=x'), 'host=db user=app password=*** dbname=x')
  t.equal(one('https://api.example/v1?access_token=abc&page=2'), 'https://api.example/v1?access_token=***&page=2')
  t.equal(one('worker: --dsn=host=h password=x'), 'worker: --dsn=host=h password=***')
  t.equal(redact.text('/opt/app token=abc'), '/opt/app token=***', 'text: an executable path or title')
})

t.test('false-positive guards: what only looks like a secret stays', async t => {
  const kept: string[][] = [
    ['python3', 'monkey.py'],
    ['--keyboard-layout', 'us'],
    ['--max-keys', '5'],
    ['--tokenizer', 'bert-base'],
    ['--max-tokens', '512'],
    ['--passes', '3'],
    ['--bypass-cache', 'yes'],
    ['-p', '8080'],
    ['-W', 'ignore', '-X', 'importtime'],
    ['--password'],
    ['--password='],
    ['http://host:8080/path', 'https://git@github.com/x.git', 'ssh://git@host:22/repo'],
    ['--token', '--verbose'],
    ['lr=0.1', 'tokenizer=bert', 'keys=3'],
    ['http://h/a@b', 'http://h:80?x=a@b'],
  ]
  for (const args of kept) t.same(redact.cmdline(args), args, args.join(' '))
})

t.test('decided false positives: a key word is enough, whatever the value', async t => {
  // Losing a sort key from the stream costs less than shipping a key off the node.
  t.same(redact.cmdline(['--sort-key', 'name']), ['--sort-key', REDACTED])
  t.same(redact.cmdline(['--no-auth', 'app.py']), ['--no-auth', REDACTED])
  t.same(redact.cmdline(['--author', 'Ada']), ['--author', REDACTED])
})

t.test('the pattern: off, extended, refused', async t => {
  const off = secretRedactor('off')
  const args = ['--password', 'x', 'postgres://u:p@h/db']
  t.same(off.cmdline(args), args, 'off changes nothing')
  t.equal(off.text('token=x'), 'token=x')
  const extended = secretRedactor(`${DEFAULT_REDACT}|session|cookie`)
  t.same(extended.cmdline(['--session-id', 's', '--password', 'p']), ['--session-id', REDACTED, '--password', REDACTED])
  t.same(
    secretRedactor('pin').cmdline(['--pin', '1234', '--password', 'p']),
    ['--pin', REDACTED, '--password', 'p'],
    'a pattern replaces the default',
  )
  t.equal(redactPatternProblem(DEFAULT_REDACT), undefined)
  t.equal(redactPatternProblem('off'), undefined)
  t.match(redactPatternProblem('('), /^expected a regular expression of secret key words, or off \(.*\)$/)
  t.match(redactPatternProblem(''), /^expected a regular expression/)
  const input = ['--password', 'x']
  redact.cmdline(input)
  t.same(input, ['--password', 'x'], 'the input is not changed')
})
