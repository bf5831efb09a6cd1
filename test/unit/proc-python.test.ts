import { readFileSync } from 'node:fs'
import t from 'tap'
import { findLibpython, identifyPython, isPythonExecutable } from '../../src/proc/python.js'

const fixtures = new URL('../fixtures/proc/', import.meta.url)
const text = (rel: string): string => readFileSync(new URL(rel, fixtures), 'utf8')

t.test('isPythonExecutable', async t => {
  const yes = [
    '/usr/bin/python',
    '/usr/bin/python3',
    '/usr/local/bin/python3.11',
    '/usr/bin/python2.7',
    '/usr/bin/python3.13t',
    '/usr/bin/python3.11d',
    '/usr/bin/python3.6m',
    '/usr/bin/python3.6dm',
    '/usr/bin/python3.12',
    '/root/.pyenv/versions/3.11.7/bin/python3.11',
    '/usr/bin/python3.11 (deleted)',
    'python3',
  ]
  const no = [
    '/usr/bin/python3.11-config',
    '/usr/bin/python-config',
    '/usr/local/bin/pythonista',
    '/usr/local/bin/py-spy',
    '/usr/local/bin/ipython',
    '/usr/bin/sleep',
    '/usr/local/bin/uwsgi',
    '/opt/python3/bin/node',
    '/usr/bin/python3.11.bak',
    '/usr/bin/python3.11 (deleted) ',
    '/usr/bin/pythont',
    '',
  ]
  for (const p of yes) t.ok(isPythonExecutable(p), p)
  for (const p of no) t.notOk(isPythonExecutable(p), p)
})

t.test('findLibpython', async t => {
  t.equal(findLibpython(text('4343/maps')), '/usr/local/lib/libpython3.11.so.1.0', 'uwsgi embedding 3.11')
  t.equal(findLibpython(text('odd/maps-spaces')), '/opt/My Apps/py env/lib/libpython3.12.so.1.0', 'a pathname with spaces')
  t.equal(findLibpython(text('4444/maps')), undefined, 'sleep maps none')
  t.equal(findLibpython(''), undefined, 'kernel thread: empty maps')

  const line = (path: string): string => `7f59d4e00000-7f59d4ef5000 r--p 00000000 fe:00 26933                      ${path}\n`
  const anon = '7f59d45df000-7f59d4712000 rw-p 00000000 00:00 0 \n'
  for (const lib of ['/usr/lib/libpython2.7.so', '/usr/lib/libpython3.13t.so', '/usr/lib/libpython3.6m.so.1.0', '/usr/lib/libpython3.so']) {
    t.equal(findLibpython(anon + line(lib)), lib, lib)
  }
  t.equal(
    findLibpython(line('/usr/lib/libpython3.11.so.1.0 (deleted)')),
    '/usr/lib/libpython3.11.so.1.0 (deleted)',
    'a deleted libpython still counts, and says so',
  )
  for (const notLib of [
    '/opt/libpython-tools/helper.so',
    '/usr/lib/libpython3.11.a',
    '/srv/libpython3.11.so.txt',
    '/usr/lib/libpythonista.so',
  ]) {
    t.equal(findLibpython(line(notLib)), undefined, notLib)
  }
  t.equal(findLibpython('libpython3.11.so\n'), undefined, 'a line that is not a maps row')
})

t.test('identifyPython', async t => {
  t.strictSame(
    identifyPython('/usr/local/bin/python3.11', text('4242/maps')),
    { via: 'exe', detail: '/usr/local/bin/python3.11' },
    'the exe decides first',
  )
  t.strictSame(identifyPython('/usr/local/bin/python3.11 (deleted)', undefined), {
    via: 'exe',
    detail: '/usr/local/bin/python3.11 (deleted)',
  })
  t.strictSame(identifyPython('/usr/local/bin/uwsgi', text('4343/maps')), {
    via: 'libpython',
    detail: '/usr/local/lib/libpython3.11.so.1.0',
  })
  t.strictSame(identifyPython(undefined, text('4343/maps')), { via: 'libpython', detail: '/usr/local/lib/libpython3.11.so.1.0' })
  t.equal(identifyPython('/usr/bin/sleep', text('4444/maps')), undefined)
  t.equal(identifyPython('/usr/local/bin/uwsgi', undefined), undefined, 'maps not read')
  t.equal(identifyPython(undefined, ''), undefined, 'kernel thread')
  t.equal(identifyPython(undefined, undefined), undefined)
})
