import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { freezeProcess, signalSame, stopProcess } from '../../src/act/signals.js'
import { isRunning } from '../../src/proc/identity.js'
import { parseStat } from '../../src/proc/stat.js'

const state = (pid: number) => parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8')).state

// Real processes (children of this test, but signalled by pid as the actor does any process).

/** Starts `sh -c body`, ready once it printed its first line; killed at teardown. */
async function start(t: Test, body: string): Promise<{ pid: number; startTime: number; exited: Promise<unknown> }> {
  const child = spawn('sh', ['-c', body], { stdio: ['ignore', 'pipe', 'ignore'] })
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  const exited = once(child, 'exit')
  await once(child.stdout, 'data')
  const pid = child.pid!
  return { pid, startTime: parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8')).startTime, exited }
}

t.test('signalSame: only the process that started then', async t => {
  const { pid, startTime } = await start(t, 'echo up; exec sleep 1000')
  t.notOk(signalSame('/proc', pid, startTime + 1, 'SIGKILL'), 'another start time: not sent')
  t.ok(signalSame('/proc', pid, startTime, 'SIGSTOP'), 'the same process: sent')
  // A signal arrives when the kernel next schedules the process.
  while (state(pid) !== 'T') await sleep(5)
  t.pass('and it arrived')
  t.ok(signalSame('/proc', pid, startTime, 'SIGCONT'))
})

t.test('stopProcess: SIGTERM ends it, within a fraction of the grace', async t => {
  const { pid, startTime, exited } = await start(t, 'echo up; exec sleep 1000')
  const started = performance.now()
  t.equal(await stopProcess('/proc', pid, startTime, 30_000), 'terminated')
  t.ok(performance.now() - started < 5_000, 'seen gone long before the grace')
  await exited
})

t.test('stopProcess: a frozen process is continued, so that SIGTERM can end it', async t => {
  const { pid, startTime, exited } = await start(t, 'echo up; exec sleep 1000')
  process.kill(pid, 'SIGSTOP')
  t.equal(await stopProcess('/proc', pid, startTime, 30_000), 'terminated')
  await exited
})

t.test('stopProcess: one that ignores SIGTERM gets SIGKILL after the grace', async t => {
  const { pid, startTime, exited } = await start(t, `trap '' TERM; echo up; while :; do sleep 0.05; done`)
  const started = performance.now()
  t.equal(await stopProcess('/proc', pid, startTime, 300), 'killed')
  t.ok(performance.now() - started >= 290, 'after the grace')
  t.match(await exited, [null, 'SIGKILL'])
})

t.test('stopProcess: gone before any signal, or a reused pid', async t => {
  const { pid, startTime } = await start(t, 'echo up; exec sleep 1000')
  t.equal(await stopProcess('/proc', pid, startTime + 1, 300), 'gone', 'another start time: left alone')
  t.ok(isRunning('/proc', pid, startTime), 'it still runs')
})

t.test('freezeProcess: reports stopped only once the process is in state T', async t => {
  const { pid, startTime } = await start(t, 'echo up; exec sleep 1000')
  const freeze = await freezeProcess('/proc', pid, startTime, 5_000)
  t.match(freeze, { outcome: 'stopped' })
  t.equal(state(pid), 'T', 'and it is')
  process.kill(pid, 'SIGCONT')
})

t.test('freezeProcess: still not stopped after the wait is pending, with the state it is in', async t => {
  // A runaway inside memory reclaim (state D) stops only when it leaves the kernel; a stat that
  // keeps saying D stands in for it, in a procfs copy whose only file is that stat.
  const { pid, startTime } = await start(t, 'echo up; exec sleep 1000')
  const procRoot = t.testdir()
  const real = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const close = real.lastIndexOf(')')
  mkdirSync(join(procRoot, String(pid)))
  writeFileSync(join(procRoot, String(pid), 'stat'), `${real.slice(0, close + 2)}D${real.slice(close + 3)}`)
  const started = performance.now()
  t.same(await freezeProcess(procRoot, pid, startTime, 200), { outcome: 'pending', state: 'D' })
  t.ok(performance.now() - started >= 190, 'after the whole wait')
  process.kill(pid, 'SIGCONT')
})

t.test('freezeProcess: gone, or another process on the pid, is left alone', async t => {
  const { pid, startTime } = await start(t, 'echo up; exec sleep 1000')
  t.same(await freezeProcess('/proc', pid, startTime + 1, 200), { outcome: 'gone' })
  // A SIGSTOP sent would show as T within milliseconds.
  await sleep(100)
  t.not(state(pid), 'T', 'not signalled')
})
