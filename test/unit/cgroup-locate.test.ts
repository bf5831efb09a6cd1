import t from 'tap'
import { readFileSync } from 'node:fs'
import { ancestorDirs, locateMemoryCgroup } from '../../src/cgroup/locate.js'
import { parseMountinfo, parseProcCgroup, type MountEntry } from '../../src/cgroup/parse.js'

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/cgroup/${name}`, import.meta.url), 'utf8')

/** Locates from a fixture process dir's own cgroup + mountinfo files. */
const locateFixture = (proc: string) =>
  locateMemoryCgroup(parseProcCgroup(fixture(`${proc}/cgroup`)), parseMountinfo(fixture(`${proc}/mountinfo`)))

const cgroup2 = (root: string, mountPoint = '/sys/fs/cgroup'): MountEntry => ({
  root,
  mountPoint,
  fsType: 'cgroup2',
  superOptions: ['rw', 'nsdelegate'],
})
const v1memory = (root: string, mountPoint = '/sys/fs/cgroup/memory'): MountEntry => ({
  root,
  mountPoint,
  fsType: 'cgroup',
  superOptions: ['rw', 'memory'],
})

t.test('locateMemoryCgroup on fixture mount tables', async t => {
  t.strictSame(locateFixture('procfs-v2/100'), { version: 2, mountPoint: '/sys/fs/cgroup', relative: '' }, 'container in its own cgroupns')
  t.strictSame(
    locateFixture('procfs-v2/101'),
    { version: 2, mountPoint: '/sys/fs/cgroup', relative: '' },
    'read from a sibling cgroupns (/.. paths)',
  )
  t.strictSame(locateFixture('procfs-v2/200'), {
    version: 2,
    mountPoint: '/sys/fs/cgroup',
    relative:
      'kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8a3c5e0f_4b1d_4c9e_9d7a_2f1e6b0c7d11.slice/cri-containerd-5d8e2a917c44.scope',
  })
  t.strictSame(
    locateFixture('procfs-v1/300'),
    { version: 1, mountPoint: '/sys/fs/cgroup/memory', relative: '' },
    'v1 bind mount of the container cgroup',
  )
  t.strictSame(
    locateFixture('procfs-hybrid/400'),
    {
      version: 1,
      mountPoint: '/sys/fs/cgroup/memory',
      relative: 'user.slice/user-1000.slice/session-3.scope',
    },
    'hybrid host: v1 memory wins over the controller-less cgroup2 mount',
  )
  t.strictSame(locateFixture('procfs-odd/500'), { version: 2, mountPoint: '/srv/my cgroups', relative: 'app' }, 'unescaped mount point')
  t.equal(locateFixture('procfs-odd/504'), undefined, 'cgroup outside the mount root')
})

t.test('this machine (captured): v1 memory beside an empty unified hierarchy', async t => {
  const entries = parseProcCgroup(fixture('files/v1-host-cgroup'))
  const mounts = parseMountinfo(fixture('files/v1-host-mountinfo'))
  t.strictSame(locateMemoryCgroup(entries, mounts), {
    version: 1,
    mountPoint: '/sys/fs/cgroup/memory',
    relative: 'process_api/73031379dfdf942a8b400fce6f47498f',
  })
})

t.test('selection rules', async t => {
  const v2only = [{ hierarchy: 0, controllers: [], path: '/a/b' }]
  const withV1 = [{ hierarchy: 4, controllers: ['memory'], path: '/x' }, ...v2only]

  t.equal(locateMemoryCgroup([], [cgroup2('/')]), undefined, 'no entries')
  t.equal(
    locateMemoryCgroup([{ hierarchy: 3, controllers: ['cpu'], path: '/' }], [cgroup2('/'), v1memory('/')]),
    undefined,
    'neither a v1 memory line nor a 0:: line',
  )
  t.equal(locateMemoryCgroup(v2only, [v1memory('/')]), undefined, 'v2 line but no cgroup2 mount')
  t.equal(locateMemoryCgroup(withV1, [cgroup2('/')]), undefined, 'a v1 memory line without its mount does not fall back to v2')
  t.strictSame(locateMemoryCgroup(withV1, [cgroup2('/'), v1memory('/')]), {
    version: 1,
    mountPoint: '/sys/fs/cgroup/memory',
    relative: 'x',
  })
  t.equal(locateMemoryCgroup(v2only, [{ ...cgroup2('/'), fsType: 'cgroup' }]), undefined, 'a v1 mount is not a cgroup2 mount')
  t.equal(locateMemoryCgroup(withV1, [{ ...v1memory('/'), superOptions: ['rw', 'cpu'] }]), undefined, 'v1 mount without memory')

  t.strictSame(
    locateMemoryCgroup(v2only, [cgroup2('/', '/host'), cgroup2('/a', '/ctr'), cgroup2('/', '/other')]),
    { version: 2, mountPoint: '/ctr', relative: 'b' },
    'deepest mount root wins',
  )
  t.strictSame(
    locateMemoryCgroup(v2only, [cgroup2('/a', '/first'), cgroup2('/a', '/second')]),
    { version: 2, mountPoint: '/second', relative: 'b' },
    'on a tie the later (shadowing) mount wins',
  )
  t.strictSame(locateMemoryCgroup(v2only, [cgroup2('/a/b')]), { version: 2, mountPoint: '/sys/fs/cgroup', relative: '' })
  t.equal(locateMemoryCgroup(v2only, [cgroup2('/a/b/c')]), undefined, 'mount root below the cgroup')
  t.equal(locateMemoryCgroup(v2only, [cgroup2('/a/bc')]), undefined, 'prefix by segment, not by text')
  t.equal(
    locateMemoryCgroup([{ hierarchy: 0, controllers: [], path: '/ab' }], [cgroup2('/a')]),
    undefined,
    'sibling with a common text prefix',
  )

  const outside = [{ hierarchy: 0, controllers: [], path: '/../sibling' }]
  t.equal(locateMemoryCgroup(outside, [cgroup2('/')]), undefined, 'a cgroup outside the reader namespace is not below its root')
  t.strictSame(locateMemoryCgroup(outside, [cgroup2('/..')]), { version: 2, mountPoint: '/sys/fs/cgroup', relative: 'sibling' })
  t.strictSame(locateMemoryCgroup(outside, [cgroup2('/../sibling')]), { version: 2, mountPoint: '/sys/fs/cgroup', relative: '' })
})

t.test('ancestorDirs', async t => {
  t.strictSame(ancestorDirs('/sys/fs/cgroup', ''), ['/sys/fs/cgroup'])
  t.strictSame(ancestorDirs('/sys/fs/cgroup', 'kubepods.slice/pod.slice/ctr.scope'), [
    '/sys/fs/cgroup/kubepods.slice/pod.slice/ctr.scope',
    '/sys/fs/cgroup/kubepods.slice/pod.slice',
    '/sys/fs/cgroup/kubepods.slice',
    '/sys/fs/cgroup',
  ])
  t.strictSame(ancestorDirs('/proc/42/root/sys/fs/cgroup/memory', 'a'), [
    '/proc/42/root/sys/fs/cgroup/memory/a',
    '/proc/42/root/sys/fs/cgroup/memory',
  ])
  t.strictSame(ancestorDirs('/', 'a/b'), ['/a/b', '/a', '/'])
  t.strictSame(ancestorDirs('/srv/my cgroups', 'app'), ['/srv/my cgroups/app', '/srv/my cgroups'])
})
