import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import type { CgroupParseError } from '../../src/cgroup/errors.js'
import { CgroupClosedError, CgroupReadError, quote } from '../../src/cgroup/errors.js'
import { parseBytes, parseKeyedCounters, parseLimit, parseMountinfo, parseProcCgroup } from '../../src/cgroup/parse.js'

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/cgroup/${name}`, import.meta.url), 'utf8')

const throwsParse = (t: Test, fn: () => unknown, message: RegExp): void => {
  t.throws(fn, { code: 'CGROUP_PARSE', name: 'CgroupParseError', message })
}

t.test('parseProcCgroup', async t => {
  t.test('v1 host captured on this machine', async t => {
    const entries = parseProcCgroup(fixture('files/v1-host-cgroup'))
    t.equal(entries.length, 10)
    t.strictSame(entries[0], { hierarchy: 9, controllers: ['name=systemd'], path: '/' })
    t.strictSame(
      entries.find(e => e.controllers.includes('memory')),
      { hierarchy: 4, controllers: ['memory'], path: '/process_api/73031379dfdf942a8b400fce6f47498f' },
    )
    t.strictSame(entries[9], { hierarchy: 0, controllers: [], path: '/' })
  })

  t.test('v1 container with co-mounted controllers', async t => {
    const entries = parseProcCgroup(fixture('procfs-v1/300/cgroup'))
    t.equal(entries.length, 12)
    t.strictSame(entries[2]?.controllers, ['net_cls', 'net_prio'])
    t.equal(entries[5]?.hierarchy, 7)
    t.match(entries[5]?.path, /^\/kubepods\/burstable\/pod7c1e/)
  })

  t.test('v2 paths climbing out of the reader namespace, colons, deleted', async t => {
    t.strictSame(parseProcCgroup(fixture('procfs-v2/101/cgroup')), [
      { hierarchy: 0, controllers: [], path: '/../cri-containerd-9f2c4b7d1e3a.scope' },
    ])
    t.strictSame(parseProcCgroup('0::/a:b/c\n'), [{ hierarchy: 0, controllers: [], path: '/a:b/c' }])
    t.strictSame(parseProcCgroup('0::/gone.scope (deleted)\n'), [{ hierarchy: 0, controllers: [], path: '/gone.scope' }])
    t.strictSame(parseProcCgroup(''), [])
    t.strictSame(parseProcCgroup('\n0::/\n\n'), [{ hierarchy: 0, controllers: [], path: '/' }])
  })

  t.test('bad input', async t => {
    throwsParse(
      t,
      () => parseProcCgroup(fixture('procfs-odd/502/cgroup')),
      /^cannot parse \/proc\/<pid>\/cgroup: "this is not a cgroup file" \(expected id:controllers:path\)$/,
    )
    throwsParse(t, () => parseProcCgroup('0:/'), /expected id:controllers:path/)
    throwsParse(t, () => parseProcCgroup('x::/'), /hierarchy ID is not a number/)
    throwsParse(t, () => parseProcCgroup('0::relative'), /path is not absolute/)
    throwsParse(t, () => parseProcCgroup('0::'), /path is not absolute/)
  })
})

t.test('parseMountinfo', async t => {
  t.test('captured on this machine', async t => {
    const mounts = parseMountinfo(fixture('files/v1-host-mountinfo'))
    t.equal(mounts.length, 19)
    t.strictSame(
      mounts.find(m => m.superOptions.includes('memory')),
      {
        root: '/',
        mountPoint: '/sys/fs/cgroup/memory',
        fsType: 'cgroup',
        superOptions: ['rw', 'memory'],
      },
    )
    t.strictSame(
      mounts.find(m => m.fsType === 'cgroup2'),
      {
        root: '/',
        mountPoint: '/sys/fs/cgroup/unified',
        fsType: 'cgroup2',
        superOptions: ['rw'],
      },
    )
  })

  t.test('container with optional fields and a non-root mount root', async t => {
    const mounts = parseMountinfo(fixture('procfs-v1/300/mountinfo'))
    const memory = mounts.find(m => m.mountPoint === '/sys/fs/cgroup/memory')
    t.equal(
      memory?.root,
      '/kubepods/burstable/pod7c1e2d3f-0a4b-4c5d-8e6f-90a1b2c3d4e5/3b5f6a7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192',
    )
    t.strictSame(memory?.superOptions, ['rw', 'memory'])
    t.equal(mounts[0]?.fsType, 'overlay')
  })

  t.test('octal escapes, many optional fields, empty source', async t => {
    t.strictSame(parseMountinfo(fixture('files/mountinfo-escaped')), [
      { root: '/', mountPoint: '/srv/my cgroups', fsType: 'cgroup2', superOptions: ['rw'] },
      { root: '/dir\twith\nodd\\chars', mountPoint: '/mnt/a\\b', fsType: 'cgroup', superOptions: ['rw', 'memory'] },
      { root: '/', mountPoint: '/mnt/empty-source', fsType: 'tmpfs', superOptions: ['rw', 'size=4k'] },
    ])
    t.strictSame(parseMountinfo(''), [])
  })

  t.test('bad input', async t => {
    throwsParse(
      t,
      () => parseMountinfo(fixture('files/mountinfo-truncated')),
      /^cannot parse \/proc\/<pid>\/mountinfo: "33 31 0:27 \/ \/sys\/fs\/cgroup rw,nosuid"/,
    )
    // A separator too early (fewer than 6 fields before it) is not a separator.
    throwsParse(t, () => parseMountinfo('1 2 0:1 / - cgroup2 cgroup2 rw'), /mountinfo/)
    // Trailing junk after the super options.
    throwsParse(t, () => parseMountinfo('1 2 0:1 / /x rw - cgroup2 cgroup2 rw extra'), /mountinfo/)
    throwsParse(t, () => parseMountinfo('1 2 0:1 / /x rw - cgroup2 cgroup2'), /mountinfo/)
  })
})

t.test('parseLimit', async t => {
  t.equal(parseLimit('536870912\n', 2), 536870912)
  t.equal(parseLimit('max\n', 2), undefined)
  t.equal(parseLimit('268435456\n', 1), 268435456)
  t.equal(parseLimit(fixture('files/v1-memory.limit_in_bytes-unlimited'), 1), undefined)
  t.equal(parseLimit('9223372036854771712', 2), undefined)
  t.equal(parseLimit(String(2 ** 62 - 4096), 1), 2 ** 62 - 4096)
  t.equal(parseLimit('0\n', 2), 0)
  throwsParse(t, () => parseLimit(fixture('procfs-odd/501/root/sys/fs/cgroup/memory.max'), 2), /^cannot parse memory\.max: ""$/)
  throwsParse(t, () => parseLimit('max\n', 1), /^cannot parse memory\.limit_in_bytes: "max\\n"$/)
  throwsParse(t, () => parseLimit('-1\n', 1), /memory\.limit_in_bytes: "-1\\n"/)
  throwsParse(t, () => parseLimit('12 34', 2), /memory\.max/)
})

t.test('parseBytes', async t => {
  t.equal(parseBytes('123604992\n'), 123604992)
  t.equal(parseBytes(fixture('files/v1-memory.usage_in_bytes')), Number(fixture('files/v1-memory.usage_in_bytes').trim()))
  t.equal(parseBytes('0'), 0)
  throwsParse(t, () => parseBytes(''), /^cannot parse memory usage: ""$/)
  throwsParse(t, () => parseBytes('garbage', 'memory.current'), /^cannot parse memory\.current: "garbage"$/)
  throwsParse(t, () => parseBytes('9223372036854771712'), /beyond 2\^53/)
  const long = 'x'.repeat(200)
  const err = t.throws(() => parseBytes(long)) as CgroupParseError
  t.equal(err.message, `cannot parse memory usage: "${'x'.repeat(80)}…"`)
  t.equal(err.text, long, 'the error keeps the whole text')
  t.equal(err.file, 'memory usage')
})

t.test('parseKeyedCounters', async t => {
  t.strictSame(parseKeyedCounters(fixture('files/v2-memory.events')), {
    low: 0,
    high: 0,
    max: 17,
    oom: 2,
    oom_kill: 2,
    oom_group_kill: 0,
  })
  t.strictSame(parseKeyedCounters(fixture('procfs-v1/300/root/sys/fs/cgroup/memory/memory.oom_control')), {
    oom_kill_disable: 0,
    under_oom: 0,
    oom_kill: 3,
  })
  t.strictSame(parseKeyedCounters(fixture('files/v1-memory.oom_control')), {
    oom_kill_disable: 0,
    under_oom: 0,
    oom_kill: 0,
  })
  t.strictSame(parseKeyedCounters(fixture('files/v1-memory.oom_control-old')), { oom_kill_disable: 0, under_oom: 0 })
  const v1stat = parseKeyedCounters(fixture('files/v1-memory.stat'))
  t.equal(Object.keys(v1stat).length, 42)
  t.equal(v1stat['hierarchical_memory_limit'], 9223372036854771712)
  t.type(v1stat['total_rss'], 'number')
  const v2stat = parseKeyedCounters(fixture('files/v2-memory.stat'))
  t.equal(v2stat['anon'], 104857600)
  t.equal(v2stat['pgmajfault'], 12)
  t.strictSame(parseKeyedCounters('a 1\na 2\n'), { a: 2 }, 'last line wins')
  t.strictSame(parseKeyedCounters(''), {})
  throwsParse(t, () => parseKeyedCounters('oom_kill\n'), /^cannot parse cgroup counters: "oom_kill" \(expected "key value"\)$/)
  throwsParse(t, () => parseKeyedCounters('oom_kill -1', 'memory.events'), /^cannot parse memory\.events: "oom_kill -1"/)
  throwsParse(t, () => parseKeyedCounters('total=17069 N0=17069'), /cgroup counters/)
})

t.test('errors', async t => {
  t.equal(quote('abc'), '"abc"')
  t.equal(quote('a'.repeat(80)), `"${'a'.repeat(80)}"`)
  const cause = Object.assign(new Error('gone'), { code: 'ENODEV' })
  const read = new CgroupReadError('/x/memory.current', cause)
  t.equal(read.code, 'CGROUP_READ')
  t.equal(read.name, 'CgroupReadError')
  t.equal(read.path, '/x/memory.current')
  t.equal(read.cause, cause)
  t.equal(read.message, 'cannot read /x/memory.current: ENODEV')
  t.equal(new CgroupReadError('/y', new Error('no code')).message, 'cannot read /y')
  t.equal(new CgroupReadError('/y', undefined).message, 'cannot read /y')
  const closed = new CgroupClosedError('/z')
  t.equal(closed.code, 'CGROUP_CLOSED')
  t.equal(closed.name, 'CgroupClosedError')
  t.ok(closed instanceof Error)
})
