import { readFileSync } from 'node:fs'
import t from 'tap'
import { parseLimits } from '../../src/proc/limits.js'
import type { ProcReader } from '../../src/proc/reader.js'
import { parseStat } from '../../src/proc/stat.js'
import { Discovery } from '../../src/watch/discovery.js'

const FIXTURE = new URL('../fixtures/proc/4242/', import.meta.url)
const LIMITS = parseLimits(readFileSync(new URL('limits', FIXTURE), 'utf8'))
const STAT = parseStat(readFileSync(new URL('stat', FIXTURE), 'utf8'))

/** A /proc whose processes' executables the test sets as it goes (a fork that execs later); nothing else changes. */
function fakeProc(exes: Map<number, string | undefined>): ProcReader {
  return {
    exe: (pid: number) => exes.get(pid),
    cmdline: (pid: number) => (exes.has(pid) ? [exes.get(pid)!, 'app.py'] : undefined),
    maps: () => '',
    stat: (pid: number) => (exes.has(pid) ? { ...STAT, pid } : undefined),
    limits: (pid: number) => (exes.has(pid) ? LIMITS : undefined),
  } as unknown as ProcReader
}

const PYTHON = '/usr/bin/python3.11'

t.test('a pid born as a shell that execs Python is found at the next tick, its start-up timed from the exec', async t => {
  const exes = new Map([[10, '/bin/sh']])
  const discovery = new Discovery(fakeProc(exes), undefined, () => t.fail('no read error'))
  t.equal(discovery.examine(10, 0, true), undefined, 'a shell: not Python yet')
  t.equal(discovery.hasYoung(0), true, 'born since the last scan: it may exec any moment')
  t.same(discovery.recheck(20, 'young'), [], 'still the shell at the next tick')
  exes.set(10, PYTHON)
  const [found, ...more] = discovery.recheck(40, 'young')
  t.equal(found?.pid, 10, 'exec seen at the tick after it')
  t.equal(found?.execSeenAt, 40, 'and when: its interpreter starts then, whatever the age of its pid')
  t.same(more, [])
  t.equal(discovery.hasYoung(40), false, 'found: no longer awaited')
})

t.test('a pid seen at the first scan is not young; a wrapper that execs late is found at a full recheck', async t => {
  const exes = new Map([[11, '/bin/sh']])
  const discovery = new Discovery(fakeProc(exes), undefined, () => t.fail('no read error'))
  t.equal(discovery.examine(11, 0, false), undefined)
  t.equal(discovery.hasYoung(0), false, 'not born since a scan: the tick stays quiet')
  exes.set(11, PYTHON)
  t.same(discovery.recheck(100, 'young'), [], 'the per-tick recheck is for the young only')
  t.equal(discovery.recheck(2000, 'recent')[0]?.pid, 11, 'the full recheck (every scan interval) finds the late exec')
})

t.test('young pids age out, and a vanished one is not waited for', async t => {
  const exes = new Map([
    [12, '/bin/sh'],
    [13, '/bin/sh'],
  ])
  const discovery = new Discovery(fakeProc(exes), undefined, () => t.fail('no read error'))
  discovery.examine(12, 0, true)
  discovery.examine(13, 0, true)
  exes.delete(13)
  t.same(discovery.recheck(20, 'young'), [], 'nothing found')
  t.equal(discovery.hasYoung(20), true, '12 still young')
  t.equal(discovery.hasYoung(1001), false, 'after a second it is taken as settled')
  exes.set(12, PYTHON)
  t.same(discovery.recheck(1002, 'young'), [], 'and no longer rechecked every tick')
  t.equal(discovery.recheck(4000, 'recent')[0]?.pid, 12, 'but still at the full recheck while within 5 s')
  t.same(discovery.recheck(6000, 'recent'), [], 'a pid settled for 5 s is not looked at again at the scan interval')
})

t.test('a script that execs Python long after its start is found at the late recheck', async t => {
  const exes = new Map<number, string | undefined>([
    [15, '/bin/sh'],
    [16, undefined],
  ])
  let reads = 0
  const proc = fakeProc(exes)
  const counting = { ...proc, exe: (pid: number) => (reads++, exes.get(pid)) } as unknown as ProcReader
  const discovery = new Discovery(counting, undefined, () => t.fail('no read error'))
  discovery.examine(15, 0)
  discovery.examine(16, 0)
  exes.set(15, PYTHON)
  t.same(discovery.recheck(60_000, 'recent'), [], 'a minute later, the scan-interval recheck no longer looks')
  reads = 0
  const late = discovery.recheck(60_000, 'late')
  t.equal(late[0]?.pid, 15, 'the late recheck finds it')
  t.equal(late[0]?.execSeenAt, 60_000, 'and times its start-up from the exec it saw')
  t.equal(reads, 1, 'one readlink: the kernel thread (no exe) is not read again')
})

t.test('a pid judged not Python is not examined again while its executable stays the same', async t => {
  const exes = new Map([[14, '/bin/sh']])
  let reads = 0
  const proc = fakeProc(exes)
  const counting = { ...proc, exe: (pid: number) => (reads++, exes.get(pid)) } as unknown as ProcReader
  const discovery = new Discovery(counting, undefined, () => t.fail('no read error'))
  discovery.examine(14, 0, true)
  discovery.recheck(20, 'young')
  discovery.recheck(40, 'young')
  t.equal(reads, 3, 'one readlink per look')
  t.equal(discovery.recheck(6000, 'recent').length + discovery.recheck(6020, 'young').length, 0)
  t.equal(reads, 3, 'none once settled')
})
