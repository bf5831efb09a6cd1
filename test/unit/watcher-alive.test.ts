import pino from 'pino'
import t from 'tap'
import { DEFAULTS, type Config } from '../../src/config.js'
import { ProcReader } from '../../src/proc/reader.js'
import { Watcher } from '../../src/watch/watcher.js'
import { makeFakeProc } from '../helpers/fake-proc.js'

// /livez follows the loop: a loop that stopped ticking (an exception, a hang) is not live.
t.test('the watcher is alive while it ticks, and not once its ticks stop', async t => {
  const proc = makeFakeProc(t.testdir())
  let now = 1_000_000
  const watcher = new Watcher({
    config: { ...(DEFAULTS as Config), procRoot: proc.dir },
    proc: new ProcReader(proc.dir),
    hostMemoryBytes: 1 << 30,
    pageSize: 4096,
    ownPids: new Set(),
    emit: () => {},
    capture: async () => ({ threads: [], pyspyMs: 0 }),
    logger: pino({ level: 'silent' }),
    now: () => now,
  })
  t.notOk(watcher.alive, 'not before the first tick')
  watcher.start()
  t.ok(watcher.alive, 'alive after a tick')
  t.ok(watcher.ready, 'and ready: the first scan is done')
  now += 4_000
  t.ok(watcher.alive, 'still alive 4 s later (a busy node gets 5 s)')
  now += 2_000
  t.notOk(watcher.alive, 'not alive when no tick ended for 6 s')
  await watcher.stop()
  t.notOk(watcher.alive, 'nor once stopped')
})
