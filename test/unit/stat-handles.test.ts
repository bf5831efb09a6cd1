import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import t from 'tap'
import { ProcReader } from '../../src/proc/reader.js'
import { PreadWhole } from '../../src/proc/pread-whole.js'
import { StatHandles } from '../../src/proc/stat-handles.js'
import { makeFakeProc } from '../helpers/fake-proc.js'
import { PYTHON } from '../helpers/python.js'

const openFds = () => readdirSync('/proc/self/fd').length

/** A real Python process that sleeps until killed. */
async function sleeper() {
  const child = spawn(PYTHON, ['-c', 'import time; time.sleep(60)'], { stdio: 'ignore' })
  await once(child, 'spawn')
  return child
}

t.test('on /proc: one descriptor per process, kept across reads, the same figures as a fresh read', async t => {
  const child = await sleeper()
  t.teardown(() => child.kill('SIGKILL'))
  const pid = child.pid!
  const handles = new StatHandles(new ProcReader())
  t.ok(handles.keeps, '/proc is procfs')
  const before = openFds()
  const first = handles.read(pid)
  t.equal(handles.open, 1)
  t.equal(openFds(), before + 1, 'one descriptor opened')
  for (let i = 0; i < 5; i++) handles.read(pid)
  t.equal(openFds(), before + 1, 'and no more on later reads')
  const fresh = new ProcReader().stat(pid)
  t.equal(first?.pid, pid)
  t.equal(first?.startTime, fresh?.startTime)
  t.equal(first?.comm, fresh?.comm)
  t.equal(handles.read(pid)?.state, fresh?.state)
  handles.forget(pid)
  t.equal(handles.open, 0)
  t.equal(openFds(), before, 'forget closes it')
  handles.forget(pid) // twice is harmless
})

t.test('on /proc: a process gone after its descriptor was opened reads undefined, and the descriptor is closed', async t => {
  const child = await sleeper()
  const pid = child.pid!
  const handles = new StatHandles(new ProcReader())
  t.ok(handles.read(pid))
  const before = openFds()
  child.kill('SIGKILL')
  await once(child, 'exit') // reaped by Node: the pid is free for reuse
  t.equal(handles.read(pid), undefined, 'ESRCH through the kept descriptor')
  t.equal(handles.open, 0)
  t.equal(openFds(), before - 1)
  t.equal(handles.read(pid), undefined, 'and ENOENT on a new open')
  t.equal(handles.open, 0)
})

t.test('on /proc: a zombie reads state Z through its descriptor, then undefined once reaped', async t => {
  // The parent forks a child that exits at once and reaps it only when told to.
  const parent = spawn(
    PYTHON,
    [
      '-u',
      '-c',
      'import os, sys\npid = os.fork()\nif pid == 0: os._exit(0)\nprint(pid)\nsys.stdin.readline()\nos.waitpid(pid, 0)\nprint("reaped")\nsys.stdin.readline()',
    ],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  )
  t.teardown(() => parent.kill('SIGKILL'))
  const lines = createInterface({ input: parent.stdout })[Symbol.asyncIterator]()
  const zombie = Number((await lines.next()).value)
  const handles = new StatHandles(new ProcReader())
  let state: string | undefined
  for (let i = 0; i < 200 && state !== 'Z'; i++) {
    state = handles.read(zombie)?.state
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  t.equal(state, 'Z')
  t.equal(handles.open, 1)
  parent.stdin.write('\n')
  t.equal((await lines.next()).value, 'reaped')
  t.equal(handles.read(zombie), undefined)
  t.equal(handles.open, 0)
})

t.test('closeAll closes every descriptor', async t => {
  const children = [await sleeper(), await sleeper()]
  t.teardown(() => children.forEach(child => child.kill('SIGKILL')))
  const handles = new StatHandles(new ProcReader())
  const before = openFds()
  for (const child of children) handles.read(child.pid!)
  t.equal(handles.open, 2)
  handles.closeAll()
  t.equal(handles.open, 0)
  t.equal(openFds(), before)
})

t.test('a pid that never existed: undefined, nothing kept', async t => {
  const handles = new StatHandles(new ProcReader())
  t.equal(handles.read(999_999_999), undefined)
  t.equal(handles.open, 0)
})

t.test('a fixture tree is not procfs: every read opens the file anew, so a removed file is seen', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'oomwatch-stat-handles-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  makeFakeProc(dir)
  const proc = new ProcReader(dir)
  const handles = new StatHandles(proc)
  t.notOk(handles.keeps)
  t.strictSame(handles.read(4242), proc.stat(4242))
  t.equal(handles.open, 0)
  rmSync(join(dir, '4242', 'stat'))
  t.equal(handles.read(4242), undefined)
})

t.test('a root that cannot be examined is not procfs', async t => {
  t.notOk(new StatHandles(new ProcReader('/nonexistent/proc')).keeps)
})

t.test('PreadWhole: the whole file from offset 0 on every read, past its first buffer', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'oomwatch-pread-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'big')
  const text = 'x'.repeat(3000) + '\n'
  writeFileSync(path, text)
  const fd = openSync(path, 'r')
  t.teardown(() => closeSync(fd))
  const reader = new PreadWhole(16)
  t.equal(reader.read(fd), text)
  t.equal(reader.read(fd), text, 'again from the start, not EOF')
  writeFileSync(path, 'short\n')
  t.equal(reader.read(fd), 'short\n', 'a shorter content with the grown buffer')
})
