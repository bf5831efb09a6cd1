import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { ProcParseError } from '../../src/proc/errors.js'
import { identifyPython } from '../../src/proc/python.js'
import { ProcReader } from '../../src/proc/reader.js'

const root = fileURLToPath(new URL('../fixtures/proc', import.meta.url))
const reader = new ProcReader(root)

t.test('listPids: numeric entries only, ascending', async t => {
  t.strictSame(reader.listPids(), [2, 4242, 4343, 4444, 4545], 'odd/ is not a pid')
})

t.test('python3.11 process', async t => {
  t.equal(reader.stat(4242)?.comm, 'python3')
  t.equal(reader.status(4242)?.swapBytes, 2048 * 1024)
  t.strictSame(reader.limits(4242)?.NOFILE, { soft: 1048576, hard: 1073741816, units: 'files' })
  t.strictSame(reader.cmdline(4242), ['/usr/local/bin/python3', '-m', 'app.worker'])
  t.equal(reader.exe(4242), '/usr/local/bin/python3.11')
  t.match(reader.maps(4242), /\/usr\/local\/lib\/libpython3\.11\.so\.1\.0\n/)
  t.match(reader.cgroup(4242), /^0::\/$/m)
  t.match(reader.mountinfo(4242), / \/proc rw,relatime - proc proc rw\n/)
  t.strictSame(identifyPython(reader.exe(4242), reader.maps(4242)), { via: 'exe', detail: '/usr/local/bin/python3.11' })
})

t.test('identity of every fixture pid', async t => {
  const identify = (pid: number) => identifyPython(reader.exe(pid), reader.maps(pid))
  t.strictSame(identify(4343), { via: 'libpython', detail: '/usr/local/lib/libpython3.11.so.1.0' }, 'uwsgi')
  t.strictSame(identify(4545), { via: 'exe', detail: '/usr/local/bin/python3.11 (deleted)' }, 'deleted exe')
  t.equal(identify(4444), undefined, 'sleep')
  t.equal(identify(2), undefined, 'kernel thread')
})

t.test('kernel thread: no exe, empty cmdline and maps', async t => {
  t.equal(reader.exe(2), undefined)
  t.strictSame(reader.cmdline(2), [])
  t.equal(reader.maps(2), '')
  t.equal(reader.status(2)?.rssBytes, undefined)
})

t.test('a pid that does not exist gives undefined everywhere', async t => {
  t.equal(reader.stat(999999), undefined)
  t.equal(reader.status(999999), undefined)
  t.equal(reader.limits(999999), undefined)
  t.equal(reader.cmdline(999999), undefined)
  t.equal(reader.exe(999999), undefined)
  t.equal(reader.maps(999999), undefined)
  t.equal(reader.cgroup(999999), undefined)
  t.equal(reader.mountinfo(999999), undefined)
})

t.test('path', async t => {
  t.equal(new ProcReader().path(42, 'limits'), '/proc/42/limits')
  t.equal(new ProcReader().root, '/proc')
})

t.test('read failures other than a vanished process throw ProcReadError', async t => {
  const dir = t.testdir({
    // a regular file where a pid directory should be: ENOTDIR
    '100': 'not a directory',
    // a directory where a file should be: EISDIR
    '200': { stat: {}, exe: {}, cmdline: {} },
    // a file where the exe symlink should be: EINVAL from readlink
    '300': { exe: 'not a link' },
    // text that is not what the kernel prints: the parse error comes through as is
    '400': { stat: 'garbage', status: '', limits: '' },
  })
  const r = new ProcReader(dir)
  t.throws(() => r.stat(100), { name: 'ProcReadError', code: 'PROC_READ', errno: 'ENOTDIR', path: `${dir}/100/stat` })
  t.throws(() => r.stat(200), { code: 'PROC_READ', errno: 'EISDIR', message: `cannot read ${dir}/200/stat: EISDIR` })
  t.throws(() => r.cmdline(200), { code: 'PROC_READ', errno: 'EISDIR' })
  t.throws(() => r.exe(200), { code: 'PROC_READ', errno: 'EINVAL' })
  t.throws(() => r.exe(300), { code: 'PROC_READ', errno: 'EINVAL' })
  t.throws(() => r.stat(400), ProcParseError)
  t.throws(() => r.status(400), { code: 'PROC_PARSE', kind: 'status' })
  t.throws(() => r.limits(400), { code: 'PROC_PARSE', kind: 'limits' })
  t.throws(() => r.stat(100), { cause: { code: 'ENOTDIR' } }, 'the fs error is the cause')
})

t.test('listPids on a root that is not there', async t => {
  const missing = `${t.testdir()}/nope`
  t.throws(() => new ProcReader(missing).listPids(), { code: 'PROC_READ', errno: 'ENOENT', path: missing })
})

// chmod 000 stops nobody but root, so this runs only for an unprivileged user.
const isRoot = process.getuid?.() === 0
t.test('an unreadable file is PROC_ACCESS', { skip: isRoot && 'root reads through chmod 000' }, async t => {
  const dir = t.testdir({ '500': { limits: 'x' } })
  chmodSync(`${dir}/500/limits`, 0)
  t.throws(() => new ProcReader(dir).limits(500), { code: 'PROC_ACCESS', errno: 'EACCES' })
})

t.test('a real python process under /proc', async t => {
  const script = 'import sys, time; sys.stdout.write("ready\\n"); sys.stdout.flush(); time.sleep(30)'
  const child = spawn('python3', ['-c', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  // Wait for the interpreter's own output: python3 may be a shim (pyenv) that execs
  // the real binary, and until then exe is the shell. Racing 'exit' makes a missing
  // python3 fail fast (once rejects on 'error').
  const first = await Promise.race([
    once(child.stdout, 'data').then(([chunk]) => String(chunk)),
    once(child, 'exit').then(([code]) => `exited with ${String(code)}`),
  ])
  // Chunks split anywhere; the first one's start is enough to know the script runs.
  t.match(first, /^ready/)
  const pid = child.pid
  if (pid === undefined) throw new Error('spawn gave no pid')

  const proc = new ProcReader()
  t.ok(proc.listPids().includes(pid), 'listed')
  const exe = proc.exe(pid)
  t.equal(identifyPython(exe, undefined)?.via, 'exe', `exe ${exe} is an interpreter`)
  t.equal(proc.stat(pid)?.pid, pid)
  t.equal(proc.stat(pid)?.ppid, process.pid)
  t.equal(proc.status(pid)?.ppid, process.pid)
  t.ok((proc.status(pid)?.rssBytes ?? 0) > 0, 'has a resident set')
  t.strictSame(proc.cmdline(pid)?.slice(-2), ['-c', script])
  t.equal(proc.limits(pid)?.NOFILE?.units, 'files')

  child.kill('SIGTERM')
  await once(child, 'exit')
  // 'exit' fires after Node has reaped the child, so its /proc entry is gone.
  t.equal(proc.stat(pid), undefined)
  t.equal(proc.exe(pid), undefined)
  t.notOk(proc.listPids().includes(pid))
})
