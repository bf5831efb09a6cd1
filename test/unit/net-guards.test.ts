import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t from 'tap'
import { createLogger } from '../../src/log.js'
import { connectionCap, ownNofileSoft } from '../../src/stream/fd-budget.js'
import { serverTimeouts } from '../../src/stream/connection-guard.js'
import { hostAllowed } from '../../src/stream/host-check.js'
import { RateLimiter } from '../../src/stream/rate-limit.js'
import { RefusalLog } from '../../src/stream/refusal-log.js'

t.test('the rate limiter lets one line per kind per window through, with the count held back before it', async t => {
  const limiter = new RateLimiter(10_000)
  t.equal(limiter.take('a', 0), 0, 'the first one at once')
  t.equal(limiter.take('a', 1), undefined, 'held back')
  t.equal(limiter.take('a', 9_999), undefined)
  t.equal(limiter.take('b', 5), 0, 'each kind on its own')
  t.equal(limiter.take('a', 10_000), 2, 'the next one a window later, with the two held back')
  t.equal(limiter.take('a', 10_001), undefined)
  t.same(limiter.drain(15_000), [], 'nothing to sum up before the window has passed')
  t.same(limiter.drain(20_000), [['a', 1]], 'then what was held back, once')
  t.equal(limiter.take('a', 20_001), undefined, 'the summary was a line: its window goes on')
  t.same(limiter.drain(30_001), [['a', 1]])
  t.same(limiter.drain(40_002), [], 'a quiet kind is forgotten')
  t.equal(limiter.take('a', 40_003), 0, 'and logged at once when it comes back')
  limiter.take('b', 40_004)
  limiter.take('b', 40_004)
  t.same(limiter.drain(40_005, true), [['b', 1]], 'everything, at the end')
})

t.test('refusals are logged at a bounded rate, and what was held back is summed up when the window passes', async t => {
  const lines: Record<string, unknown>[] = []
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
  let now = 0
  const log = new RefusalLog(createLogger('info', sink), 50, () => now)
  t.teardown(() => log.close())
  for (let i = 0; i < 10; i++) log.note('capacity', { remote: '127.0.0.1' }, 'closed a connection')
  log.note('host', { host: 'evil.example' }, 'refused a host')
  now = 60
  await new Promise(resolve => setTimeout(resolve, 120))
  t.match(lines, [
    { kind: 'capacity', suppressed: 0, remote: '127.0.0.1', msg: 'closed a connection' },
    { kind: 'host', suppressed: 0, host: 'evil.example' },
    { kind: 'capacity', suppressed: 9, summary: true, msg: '9 more: closed a connection' },
  ])
  log.note('capacity', {}, 'closed a connection')
  log.close()
  log.close()
  log.note('capacity', {}, 'closed a connection')
  t.equal(lines.length, 4, 'held back, then summed up at close; nothing after it')
  t.match(lines[3], { kind: 'capacity', suppressed: 1, summary: true })
})

t.test('a Host names this agent when it is localhost, an IP address, or an allowed name, with any port', async t => {
  for (const host of ['127.0.0.1', '127.0.0.1:8080', 'localhost', 'LocalHost:1', '[::1]', '[::1]:9', '10.0.0.5:80', '[fe80::1]']) {
    t.ok(hostAllowed(host), host)
  }
  t.ok(hostAllowed(undefined), 'no Host: not a browser')
  t.ok(hostAllowed('oomwatch.internal:8080', ['oomwatch.internal']))
  for (const host of [
    'evil.example',
    'evil.example:8080',
    'localhost.',
    'localhost.evil.example',
    '127.0.0.1.nip.io',
    '[evil]',
    '',
    'a b',
    '127.1',
    'x:y:z',
  ]) {
    t.notOk(hostAllowed(host, ['oomwatch.internal']), JSON.stringify(host))
  }
})

t.test('the connection cap keeps half the soft NOFILE limit for the watch', async t => {
  t.same(connectionCap(256, 200), { maxConnections: 100, source: 'nofile' })
  t.same(connectionCap(256, 1024), { maxConnections: 256, source: 'setting' })
  t.same(connectionCap(256, 1_048_576), { maxConnections: 256, source: 'setting' })
  t.same(connectionCap(256, 'unlimited'), { maxConnections: 256, source: 'setting' })
  t.same(connectionCap(256, undefined), { maxConnections: 256, source: 'setting' })
  t.same(connectionCap(256, 1), { maxConnections: 1, source: 'nofile' }, 'at least one')
  const limits = join(t.testdir(), 'limits')
  writeFileSync(
    limits,
    [
      'Limit                     Soft Limit           Hard Limit           Units',
      'Max open files            200                  4096                 files',
      '',
    ].join('\n'),
  )
  t.equal(ownNofileSoft(limits), 200)
  t.equal(ownNofileSoft(join(t.testdir(), 'missing')), undefined)
  t.type(ownNofileSoft(), 'number', "this process's own")
})

t.test("node:http's timeouts follow the request timeout", async t => {
  t.same(serverTimeouts({ requestTimeoutMs: 10_000 }), {
    headersTimeout: 10_000,
    requestTimeout: 10_000,
    keepAliveTimeout: 5000,
    connectionsCheckingInterval: 1000,
  })
  t.match(serverTimeouts({ requestTimeoutMs: 100 }), { keepAliveTimeout: 100, connectionsCheckingInterval: 250 })
})
