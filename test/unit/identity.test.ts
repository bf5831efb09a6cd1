import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { isRunning, isStillRunning } from '../../src/proc/identity.js'
import { watchGone } from '../../src/proc/watch-gone.js'
import { makeFakeProc } from '../helpers/fake-proc.js'

/** The captured python3.11 process 4242 of the fake tree started at 39913 ticks. */
const PID = 4242
const START = 39913

/** Rewrites field 3 (state) of the fake process's stat. */
function setState(dir: string, state: string): void {
  const path = join(dir, String(PID), 'stat')
  writeFileSync(path, readFileSync(path, 'utf8').replace(') S ', `) ${state} `))
}

t.test('isStillRunning: a pure judgement of one stat', async t => {
  t.ok(isStillRunning({ state: 'S', startTime: START }, START), 'sleeping, same start: the same live process')
  t.ok(isStillRunning({ state: 'R', startTime: START }), 'without a start time, any live process')
  t.ok(isStillRunning({ state: 'T', startTime: START }, START), 'a stopped (frozen) process still runs')
  t.notOk(isStillRunning({ state: 'S', startTime: START + 1 }, START), 'another start time: a reused pid')
  t.notOk(isStillRunning({ state: 'Z', startTime: START }, START), 'a zombie is gone')
  t.notOk(isStillRunning({ state: 'X', startTime: START }), 'dead is gone')
  t.notOk(isStillRunning(undefined, START), 'no stat: gone')
})

t.test('isRunning on a fake /proc tree', async t => {
  const { dir } = makeFakeProc(t.testdir())
  t.ok(isRunning(dir, PID, START), 'the process as first seen')
  t.ok(isRunning(dir, PID), 'by pid alone')
  t.notOk(isRunning(dir, PID, START + 500), 'the pid with another start time: reused')
  t.notOk(isRunning(dir, 99999, START), 'no such pid')
  writeFileSync(join(dir, '4343', 'stat'), '4343 (uwsgi')
  t.notOk(isRunning(dir, 4343), 'a stat that does not parse: gone, never a throw')
  setState(dir, 'Z')
  t.notOk(isRunning(dir, PID, START), 'a zombie')
  t.notOk(isRunning(dir, PID), 'a zombie, by pid alone')
})

t.test('watchGone: aborts once the process is gone, and stop() ends the watch', async t => {
  const { dir } = makeFakeProc(t.testdir())
  const watch = watchGone(dir, { pid: PID, startTime: START })
  t.notOk(watch.gone.aborted, 'running: not gone')
  await new Promise(resolve => setTimeout(resolve, 50))
  t.notOk(watch.gone.aborted, 'still running after a few looks')
  setState(dir, 'Z')
  const started = performance.now()
  await new Promise(resolve => watch.gone.addEventListener('abort', resolve, { once: true }))
  t.ok(performance.now() - started < 1000, 'seen within the longest pause (100 ms), with room for a busy machine')
  watch.stop()

  const reused = watchGone(dir, { pid: 4343, startTime: 1 })
  t.ok(reused.gone.aborted, 'a pid that names another process is gone at the first look')
  reused.stop()

  const stopped = watchGone(dir, { pid: 4343, startTime: readStart(dir, 4343) })
  stopped.stop()
  rmSync(join(dir, '4343'), { recursive: true })
  await new Promise(resolve => setTimeout(resolve, 150))
  t.notOk(stopped.gone.aborted, 'after stop(), nothing more is looked at')
})

function readStart(dir: string, pid: number): number {
  return Number(
    readFileSync(join(dir, String(pid), 'stat'), 'utf8')
      .split(') ')[1]!
      .split(' ')[19],
  )
}
