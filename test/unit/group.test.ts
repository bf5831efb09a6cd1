import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { MemoryCgroup } from '../../src/cgroup/memory-cgroup.js'
import { Group } from '../../src/watch/group.js'

const MiB = 1 << 20
const LIMIT = 256 * MiB // noise floor 2.56 MiB: kept at a move of 0.64 MiB; an exit at a fall of 2.56 MiB

/** A cgroup v1 directory whose usage the test writes, and a group over it. */
function groupOver(t: Test) {
  const dir = join(t.testdir(), 'cg')
  mkdirSync(dir)
  const setUsage = (bytes: number) => writeFileSync(join(dir, 'memory.usage_in_bytes'), `${bytes}\n`)
  setUsage(10 * MiB)
  writeFileSync(join(dir, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n')
  const cgroup: MemoryCgroup = { id: '1:test', version: 1, dir, via: 'agent-mount', chain: [dir], path: '/' }
  const group = new Group(
    '1:test',
    { bytes: LIMIT, source: 'cgroup-v1', path: join(dir, 'memory.limit_in_bytes'), via: 'agent-mount' },
    cgroup,
  )
  t.teardown(() => group.close())
  return { group, setUsage, dir }
}

t.test('usage is read every tick, kept when it moved or the interval passed', async t => {
  const { group, setUsage } = groupOver(t)
  t.equal(group.sample(0, 100), true, 'the first read is kept')
  setUsage(10 * MiB + 100_000)
  t.equal(group.sample(20, 100), false, 'a small move within the interval is not')
  t.equal(group.sample(100, 100), true, 'the interval passed: kept')
  setUsage(11 * MiB)
  t.equal(group.sample(120, 100), true, 'a move of a quarter of the noise floor is kept at once')
  t.same(
    group.series.toArray().map(s => s.t),
    [0, 100, 120],
    'the series holds what was kept',
  )
  t.equal(group.fell, false)
})

t.test('a fall of the noise floor says a member may have exited, for that tick only', async t => {
  const { group, setUsage } = groupOver(t)
  setUsage(50 * MiB)
  group.sample(0, 100)
  setUsage(49 * MiB)
  group.sample(20, 100)
  t.equal(group.fell, false, 'a 1 MiB fall (a freed buffer) is not an exit')
  setUsage(45 * MiB)
  group.sample(40, 100)
  t.equal(group.fell, true, 'a 4 MiB fall is')
  group.sample(60, 100)
  t.equal(group.fell, false, 'and the next read clears it')
})

t.test('a usage that cannot be read: the error once, then members are judged one by one', async t => {
  const { group, dir } = groupOver(t)
  group.sample(0, 100)
  group.close()
  rmSync(join(dir, 'memory.usage_in_bytes'))
  const fresh = new Group('1:test', group.limit, group.cgroup)
  t.ok(fresh.openError, 'opening it fails with an error to report')
  t.equal(fresh.hasUsage, false, 'and the group has no usage of its own')
  t.equal(fresh.sample(20, 100), false, 'nothing to read, nothing kept')
  t.equal(fresh.fell, false)
})
