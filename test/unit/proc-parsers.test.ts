import { readFileSync } from 'node:fs'
import t from 'tap'
import { parseCmdline } from '../../src/proc/cmdline.js'
import { errnoOf, ProcParseError, ProcReadError } from '../../src/proc/errors.js'
import { parseLimits } from '../../src/proc/limits.js'
import { parseStat } from '../../src/proc/stat.js'
import { parseStatus } from '../../src/proc/status.js'

const fixtures = new URL('../fixtures/proc/', import.meta.url)
const text = (rel: string): string => readFileSync(new URL(rel, fixtures), 'utf8')
const bytes = (rel: string): Buffer => readFileSync(new URL(rel, fixtures))

t.test('parseLimits', async t => {
  t.test('python3.11 on a LimitNOFILE=infinity node: every row', async t => {
    t.strictSame(parseLimits(text('4242/limits')), {
      CPU: { soft: 'unlimited', hard: 'unlimited', units: 'seconds' },
      FSIZE: { soft: 'unlimited', hard: 'unlimited', units: 'bytes' },
      DATA: { soft: 'unlimited', hard: 'unlimited', units: 'bytes' },
      STACK: { soft: 8388608, hard: 'unlimited', units: 'bytes' },
      CORE: { soft: 0, hard: 'unlimited', units: 'bytes' },
      RSS: { soft: 'unlimited', hard: 'unlimited', units: 'bytes' },
      NPROC: { soft: 96365, hard: 96365, units: 'processes' },
      NOFILE: { soft: 1048576, hard: 1073741816, units: 'files' },
      MEMLOCK: { soft: 8388608, hard: 8388608, units: 'bytes' },
      AS: { soft: 'unlimited', hard: 'unlimited', units: 'bytes' },
      LOCKS: { soft: 'unlimited', hard: 'unlimited', units: 'locks' },
      SIGPENDING: { soft: 96365, hard: 96365, units: 'signals' },
      MSGQUEUE: { soft: 819200, hard: 819200, units: 'bytes' },
      NICE: { soft: 0, hard: 0, units: '' },
      RTPRIO: { soft: 0, hard: 0, units: '' },
      RTTIME: { soft: 'unlimited', hard: 'unlimited', units: 'us' },
    })
  })

  t.test('kernel thread keeps the kernel default NOFILE', async t => {
    t.strictSame(parseLimits(text('2/limits')).NOFILE, { soft: 1024, hard: 4096, units: 'files' })
  })

  t.test('this process, read live', async t => {
    const table = parseLimits(readFileSync('/proc/self/limits', 'utf8'))
    t.equal(Object.keys(table).length, 16, 'all 16 rows of a current kernel')
    t.equal(table.NOFILE?.units, 'files')
  })

  t.test('a read cut inside a number drops that row and keeps the rest', async t => {
    const table = parseLimits(text('odd/limits-truncated'))
    t.equal(table.NOFILE, undefined, 'the hard limit 200 is a fragment of 20000')
    t.strictSame(table.NPROC, { soft: 96365, hard: 96365, units: 'processes' })
    t.equal(Object.keys(table).length, 7)
  })

  t.test('the last row without a newline', async t => {
    const head = 'Limit                     Soft Limit           Hard Limit           Units     \n'
    const row = 'Max open files            1024                 4096                 files'
    t.strictSame(parseLimits(head + row), { NOFILE: { soft: 1024, hard: 4096, units: 'files' } }, 'kept when it ends in a whole unit word')
    t.throws(() => parseLimits(head + row.slice(0, -1)), { code: 'PROC_PARSE' }, 'dropped when the unit is cut')
    t.throws(
      () => parseLimits(head + 'Max nice priority         0                    0'),
      { code: 'PROC_PARSE' },
      'dropped without units: nothing shows it is complete',
    )
  })

  t.test('an unknown title keeps its title; spacing is free', async t => {
    t.strictSame(parseLimits('Max quantum foam  12 unlimited widgets\nMax open files 1 2 files\n'), {
      'Max quantum foam': { soft: 12, hard: 'unlimited', units: 'widgets' },
      NOFILE: { soft: 1, hard: 2, units: 'files' },
    })
  })

  t.test('malformed rows are skipped', async t => {
    const table = parseLimits(
      [
        'Limit                     Soft Limit           Hard Limit           Units     ',
        'Max open files            lots                 4096                 files     ',
        'Max processes             -1                   5                    processes ',
        'garbage',
        '',
        'Max file locks            unlimited            unlimited            locks     ',
        '',
      ].join('\n'),
    )
    t.strictSame(table, { LOCKS: { soft: 'unlimited', hard: 'unlimited', units: 'locks' } })
  })

  t.test('no valid row at all throws', async t => {
    for (const input of ['', 'Limit                     Soft Limit           Hard Limit           Units     \n', '\0\0\0']) {
      t.throws(() => parseLimits(input), { name: 'ProcParseError', code: 'PROC_PARSE', message: 'limits: no limit rows' })
    }
  })
})

t.test('parseStatus', async t => {
  t.test('python3.11', async t => {
    t.strictSame(parseStatus(text('4242/status')), {
      name: 'python3',
      rssBytes: 13488 * 1024,
      hwmBytes: 13488 * 1024,
      swapBytes: 2048 * 1024,
      threads: 1,
      ppid: 1,
      uid: 0,
    })
  })

  t.test('uwsgi runs as www-data', async t => {
    const s = parseStatus(text('4343/status'))
    t.equal(s.name, 'uwsgi')
    t.equal(s.uid, 33)
    t.equal(s.threads, 3)
  })

  t.test('a name with spaces and parentheses', async t => {
    t.equal(parseStatus(text('4545/status')).name, 'my (weird) proc')
    t.equal(parseStatus('Name:\t lead\n').name, ' lead', 'only the tab goes')
    t.equal(parseStatus('Name:bare\n').name, 'bare')
  })

  t.test('kernel thread: no Vm lines', async t => {
    t.strictSame(parseStatus(text('2/status')), { name: 'kthreadd', threads: 1, ppid: 0, uid: 0 })
  })

  t.test('a malformed value is absent, not wrong', async t => {
    t.strictSame(parseStatus('Name:\tx\nVmRSS:\t12 MB\nThreads:\tmany\n'), {
      name: 'x',
      rssBytes: undefined,
      threads: undefined,
    })
  })

  t.test('no Name: line throws', async t => {
    t.throws(() => parseStatus('VmRSS:\t1 kB\n'), { code: 'PROC_PARSE', message: 'status: no Name: line' })
    t.throws(() => parseStatus(''), ProcParseError)
  })
})

t.test('parseStat', async t => {
  t.test('python3.11', async t => {
    t.strictSame(parseStat(text('4242/stat')), {
      pid: 4242,
      comm: 'python3',
      state: 'S',
      ppid: 1,
      startTime: 39913,
      rssPages: 3352,
    })
  })

  t.test('kernel thread', async t => {
    t.strictSame(parseStat(text('2/stat')), { pid: 2, comm: 'kthreadd', state: 'S', ppid: 0, startTime: 20, rssPages: 0 })
  })

  t.test('comm with spaces and parentheses runs to the last )', async t => {
    const s = parseStat(text('4545/stat'))
    t.equal(s.comm, 'my (weird) proc')
    t.equal(s.state, 'S')
    t.equal(s.startTime, 39913)
    t.equal(
      parseStat(text('4444/stat').replace('(sleep)', '(a) R 1 2 (b)')).comm,
      'a) R 1 2 (b',
      'a comm that imitates the fields does not shift them',
    )
  })

  t.test('truncated input', async t => {
    t.throws(() => parseStat(text('odd/stat-truncated')), { code: 'PROC_PARSE', message: 'stat: truncated: no field 22 (starttime)' })
    t.throws(() => parseStat('4444 (sleep) S'), { message: 'stat: truncated: no field 4 (ppid)' })
    t.throws(() => parseStat('4444 (sleep)'), { message: 'stat: truncated: no field 3 (state)' })
    t.throws(() => parseStat('4444 (sle'), { message: "stat: no ')' after the command name" })
    t.throws(() => parseStat('4444 '), { message: "stat: no '(' before the command name" })
    t.throws(() => parseStat(''), ProcParseError)
  })

  t.test('a field that is not a number', async t => {
    const stat = text('4444/stat')
    t.throws(() => parseStat(stat.replace('4444 (', 'x (')), { message: "stat: pid is not a number: 'x'" })
    t.throws(() => parseStat(stat.replace(' S 1 ', ' S -1 ')), { message: "stat: ppid is not a number: '-1'" })
    t.throws(() => parseStat(stat.replace(' 2990080 406 ', ' 2990080 -406 ')), { message: "stat: rss is not a number: '-406'" })
  })
})

t.test('parseCmdline', async t => {
  t.strictSame(parseCmdline(bytes('4242/cmdline')), ['/usr/local/bin/python3', '-m', 'app.worker'])
  t.strictSame(parseCmdline(bytes('4343/cmdline')), ['uwsgi', '--ini', '/etc/uwsgi/app.ini'])
  t.strictSame(parseCmdline(bytes('2/cmdline')), [], 'kernel thread')
  t.strictSame(parseCmdline(''), [], 'zombie')
  t.strictSame(parseCmdline('prog\0\0'), ['prog', ''], 'a real empty last argument is kept')
  t.strictSame(parseCmdline('prog\0\0x\0'), ['prog', '', 'x'])
  t.strictSame(parseCmdline('celery: worker (main)'), ['celery: worker (main)'], 'setproctitle without NUL')
  t.strictSame(parseCmdline(Buffer.from('caf\u00e9\0', 'utf8')), ['caf\u00e9'])
})

t.test('errors', async t => {
  t.test('ProcParseError', async t => {
    const err = new ProcParseError('stat', "no ')' after the command name")
    t.ok(err instanceof Error)
    t.equal(err.name, 'ProcParseError')
    t.equal(err.code, 'PROC_PARSE')
    t.equal(err.kind, 'stat')
    t.equal(err.message, "stat: no ')' after the command name")
  })

  t.test('ProcReadError codes follow the errno', async t => {
    const sys = (code: string): Error => Object.assign(new Error(`${code}: boom`), { code })
    for (const [errno, code] of [
      ['EACCES', 'PROC_ACCESS'],
      ['EPERM', 'PROC_ACCESS'],
      ['EISDIR', 'PROC_READ'],
    ] as const) {
      const cause = sys(errno)
      const err = new ProcReadError('/proc/1/maps', cause)
      t.equal(err.code, code, errno)
      t.equal(err.errno, errno)
      t.equal(err.path, '/proc/1/maps')
      t.equal(err.cause, cause)
      t.equal(err.message, `cannot read /proc/1/maps: ${errno}`)
      t.equal(err.name, 'ProcReadError')
    }
    const odd = new ProcReadError('/proc', 'not an error')
    t.equal(odd.code, 'PROC_READ')
    t.equal(odd.errno, undefined)
    t.equal(odd.message, 'cannot read /proc: not an error')
  })

  t.test('errnoOf', async t => {
    t.equal(errnoOf(Object.assign(new Error('x'), { code: 'ENOENT' })), 'ENOENT')
    t.equal(errnoOf(Object.assign(new Error('x'), { code: 42 })), undefined)
    t.equal(errnoOf(new Error('x')), undefined)
    t.equal(errnoOf(null), undefined)
    t.equal(errnoOf('ENOENT'), undefined)
  })
})
