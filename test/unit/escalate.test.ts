import t from 'tap'
import { escalateKill } from '../../src/exec/escalate.js'

/** A target that records the signals it is sent and ends when `endsOn` arrives (or when told). */
function target(options: { gone?: boolean; endsOn?: NodeJS.Signals } = {}) {
  const sent: NodeJS.Signals[] = []
  const ended = new AbortController()
  if (options.gone) ended.abort()
  return {
    sent,
    end: () => ended.abort(),
    target: {
      gone: ended.signal,
      kill: (signal: NodeJS.Signals) => {
        if (ended.signal.aborted) return false
        sent.push(signal)
        if (signal === options.endsOn) queueMicrotask(() => ended.abort())
        return true
      },
    },
  }
}

t.test('gone before any signal: nothing sent', async t => {
  const { sent, target: gone } = target({ gone: true })
  t.equal(await escalateKill(gone, 60_000), 'gone')
  t.strictSame(sent, [])
})

t.test('ends on SIGTERM: the grace is cut short, no SIGKILL', async t => {
  const { sent, target: polite } = target({ endsOn: 'SIGTERM' })
  const started = performance.now()
  t.equal(await escalateKill(polite, 60_000), 'terminated')
  t.ok(performance.now() - started < 10_000, 'did not wait out the grace')
  t.strictSame(sent, ['SIGTERM'])
})

t.test('ends during the grace: terminated', async t => {
  const { sent, end, target: slow } = target()
  setTimeout(end, 20)
  t.equal(await escalateKill(slow, 60_000), 'terminated')
  t.strictSame(sent, ['SIGTERM'])
})

t.test('still there after the grace: SIGKILL', async t => {
  const { sent, target: stubborn } = target({ endsOn: 'SIGKILL' })
  const started = performance.now()
  t.equal(await escalateKill(stubborn, 50), 'killed')
  t.ok(performance.now() - started >= 45, 'after the grace')
  t.strictSame(sent, ['SIGTERM', 'SIGKILL'])
})

t.test('gone just as the grace ends (SIGKILL finds nothing): terminated', async t => {
  const sent: NodeJS.Signals[] = []
  const outcome = await escalateKill({ gone: new AbortController().signal, kill: signal => (sent.push(signal), signal === 'SIGTERM') }, 10)
  t.equal(outcome, 'terminated')
  t.strictSame(sent, ['SIGTERM', 'SIGKILL'])
})
