import { spawnSync } from 'node:child_process'
import { symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { BirthSignal, parseLastPid } from '../../src/proc/last-pid.js'
import { parseUptime, processAgeMs } from '../../src/proc/uptime.js'

t.test('parseLastPid: the fifth field of /proc/loadavg', async t => {
  t.equal(parseLastPid('0.68 0.21 0.07 1/83 4057\n'), 4057)
  t.equal(parseLastPid('0.00 0.00 0.00 1/1 1'), 1, 'no newline')
  t.equal(parseLastPid('12.50 3.10 1.00 14/3021 4194303\n'), 4194303, 'pid_max on a large host')
  t.equal(parseLastPid(''), undefined)
  t.equal(parseLastPid('0.68 0.21 0.07 1/83 x\n'), undefined, 'not a number')
  t.equal(parseLastPid('4057'), undefined, 'one field is not loadavg')
})

t.test('parseUptime: seconds since boot', async t => {
  t.equal(parseUptime('350735.47 234388.90\n'), 350735.47)
  t.equal(parseUptime('12 3\n'), 12, 'whole seconds')
  t.equal(parseUptime('garbage'), undefined)
  t.equal(parseUptime(''), undefined)
})

t.test('BirthSignal on this machine: a fork moves it, quiet does not', async t => {
  const births = new BirthSignal('/proc', process.pid)
  t.teardown(() => births.close())
  t.equal(births.available, true, "/proc is this process's own procfs")
  t.equal(births.moved(), true, 'the first look counts as a birth')
  spawnSync('true')
  t.equal(births.moved(), true, 'a child was born')
  // Other work on the machine may fork between two looks: a few tries for a quiet pair.
  let quiet = false
  for (let i = 0; i < 20 && !quiet; i++) {
    births.moved()
    quiet = !births.moved()
  }
  t.ok(quiet, 'two looks with no birth between them say so')
  births.close()
  t.equal(births.moved(), false, 'closed: no signal')
  births.close()
  t.pass('close is idempotent')
})

t.test('BirthSignal on a procfs that is not this process own: unavailable', async t => {
  const root = t.testdir()
  writeFileSync(join(root, 'loadavg'), '0.00 0.00 0.00 1/1 77\n')
  t.equal(new BirthSignal(root, process.pid).available, false, 'no self link: a fixture tree')
  symlinkSync('4242', join(root, 'self'))
  t.equal(new BirthSignal(root, process.pid).available, false, "self names another pid: another PID namespace's procfs")
})

t.test('BirthSignal with its own self but no loadavg: a ProcReadError naming the file', async t => {
  const root = t.testdir()
  symlinkSync(String(process.pid), join(root, 'self'))
  t.throws(() => new BirthSignal(root, process.pid), { code: 'PROC_READ', path: join(root, 'loadavg') })
})

t.test('BirthSignal over a loadavg that does not end in a pid: a ProcParseError, not a birth every tick', async t => {
  const root = t.testdir()
  symlinkSync(String(process.pid), join(root, 'self'))
  writeFileSync(join(root, 'loadavg'), 'not a loadavg\n')
  const births = new BirthSignal(root, process.pid)
  t.teardown(() => births.close())
  t.throws(() => births.moved(), { code: 'PROC_PARSE', kind: 'loadavg' })
})

t.test('processAgeMs: uptime minus the start time in clock ticks', async t => {
  t.equal(processAgeMs(1000, 12.5), 2500, 'started at 10 s, now 12.5 s after boot')
  t.equal(processAgeMs(1300, 12.5), 0, 'a start time after the uptime read (read in that order): 0, never negative')
})
