import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { DEFAULTS, type Config } from '../../src/config.js'
import { createLogger } from '../../src/log.js'
import { ProcReadError } from '../../src/proc/errors.js'
import { ProcReader } from '../../src/proc/reader.js'
import type { EventPayload } from '../../src/protocol/events.js'
import { Watcher } from '../../src/watch/watcher.js'
import { makeFakeProc } from '../helpers/fake-proc.js'

/** A procfs reader whose listing of /proc fails while `failing` says so, the way a full descriptor table makes it fail. */
class FailingReader extends ProcReader {
  failing: (() => Error) | undefined
  listings = 0
  override listPids(): number[] {
    this.listings++
    if (this.failing) throw this.failing()
    return super.listPids()
  }
}

function capturedLogger() {
  const lines: Record<string, unknown>[] = []
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
  return { logger: createLogger('info', sink), lines }
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !check(); waited += 10) {
    if (waited > 10_000) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

// Under a connection flood the scan of /proc threw EMFILE, uncaught, and the loop (and
// the agent) ended. No error in a tick, of any kind, may end it.
t.test('a tick that throws does not stop the later ticks; each kind of failure is logged once', async t => {
  const proc = makeFakeProc(t.testdir())
  const reader = new FailingReader(proc.dir)
  const { logger, lines } = capturedLogger()
  const events: EventPayload[] = []
  let now = 1_000_000
  const watcher = new Watcher({
    config: { ...(DEFAULTS as Config), procRoot: proc.dir, intervalMs: 10, fastIntervalMs: 10, scanMs: 10 },
    proc: reader,
    hostMemoryBytes: 1 << 30,
    pageSize: 4096,
    ownPids: new Set(),
    emit: payload => void events.push(payload),
    capture: async () => ({ threads: [], pyspyMs: 0 }),
    logger,
    // Every tick lists /proc, as after a birth.
    births: { moved: () => true, close: () => {} },
    now: () => now,
  })
  t.teardown(() => watcher.stop())
  reader.failing = () => new ProcReadError(proc.dir, Object.assign(new Error('too many open files'), { code: 'EMFILE' }))
  watcher.start()
  await until(() => reader.listings >= 5, 'five failing ticks')
  t.notOk(watcher.ready, 'no scan done yet')
  t.notOk(watcher.alive, '/livez tells the truth: no tick has done its work')
  reader.failing = () => new TypeError('cmdline is not iterable')
  const before = reader.listings
  await until(() => reader.listings >= before + 5, 'five more failing ticks, of another kind')

  reader.failing = undefined
  await until(() => events.some(e => e.type === 'process' && e.pid === 4242), 'the process event once the reads work again')
  t.ok(watcher.ready, 'the first scan is done')
  t.ok(watcher.alive, 'and the loop is live')
  now += 60_000
  t.notOk(watcher.alive, 'a loop that stops ticking is still told apart')

  const reported = lines.filter(line => String(line.msg).includes('a tick failed'))
  t.equal(reported.length, 2, `one line per kind of failure, not per tick: ${reported.map(line => line.msg).join(' | ')}`)
  // The serialized errors, as pino wrote them.
  t.match(reported[0]?.err, { type: 'ProcReadError', code: 'PROC_READ', errno: 'EMFILE' })
  t.match(reported[1]?.err, { type: 'TypeError', message: 'cmdline is not iterable' })
  t.ok(reported.every(line => line.level === 'warn'))
})

t.test('a decision whose event cannot be emitted does not cost the other decisions, nor the loop', async t => {
  const proc = makeFakeProc(t.testdir())
  const reader = new FailingReader(proc.dir)
  const { logger, lines } = capturedLogger()
  const emitted: number[] = []
  const watcher = new Watcher({
    config: { ...(DEFAULTS as Config), procRoot: proc.dir, intervalMs: 10, fastIntervalMs: 10, scanMs: 10 },
    proc: reader,
    hostMemoryBytes: 1 << 30,
    pageSize: 4096,
    ownPids: new Set(),
    emit: payload => {
      // A sink that throws for one process (a bug in a sink, say).
      if (payload.type === 'process' && payload.pid === 4242) throw new RangeError('a sink failed')
      if (payload.type === 'process') emitted.push(payload.pid)
    },
    capture: async () => ({ threads: [], pyspyMs: 0 }),
    logger,
    births: { moved: () => true, close: () => {} },
  })
  t.teardown(() => watcher.stop())
  watcher.start()
  const listed = reader.listings
  await until(() => reader.listings >= listed + 5, 'later ticks')
  t.same(emitted, [4343], 'the other process is still told of')
  t.ok(watcher.alive)
  t.equal(lines.filter(line => String(line.msg).includes('a sink failed')).length, 1, 'logged once')
})
