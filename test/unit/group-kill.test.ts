// A container killed as a whole (cgroup v2's memory.oom.group, the kubelet's setting) is one
// story: a group-kill naming the runaway, and exits that link to it. Pure logic on the fake
// tree; the real kernel's group kill is test/e2e/v2-guest.test.ts's.
import t from 'tap'
import type { Watched } from '../../src/watch/watched.js'
import { FakeBirths, FakeTree, HUGE_NOFILE, MiB, only, run, setCaughtIncident, stepOver } from '../helpers/fake-sensors.js'

/** A pre-fork master (10) and three workers (11, 12, 13) in cgroup `g`; `oomGroup` as the kubelet sets it on v2. */
function preforkPod(oomGroup: boolean) {
  const tree = new FakeTree()
  const births = new FakeBirths()
  const step = stepOver(tree, births)
  const cgroup = tree.cgroup('g', 60 * MiB)
  cgroup.oomGroup = oomGroup
  tree.spawn(10, { cgroup: 'g', ageMs: 60_000, args: ['/app/master.py'], rssBytes: 25 * MiB })
  for (const pid of [11, 12, 13]) tree.spawn(pid, { cgroup: 'g', ageMs: 50_000, args: ['/app/worker.py'], rlimits: HUGE_NOFILE })
  births.pending = true
  step.tick(tree.now)
  return { tree, step, cgroup }
}

/** Worker 12 leaks until it is captured; its incident, with a stack, is set as the shell would. */
function captureLeak(tree: FakeTree, step: ReturnType<typeof stepOver>): Watched {
  const { decisions } = run(step, tree, 20, 300, () => {
    tree.group('g').usage += 2 * MiB
    tree.process(12).rssBytes += 2 * MiB
  })
  const capture = only(decisions, 'capture')[0]
  if (!capture) throw new Error('the leak was not captured')
  return setCaughtIncident(capture, '12-leak')
}

/** The kernel kills every process of `g`: the kill count rises by four, the memory goes. */
function killAll(tree: FakeTree, options: { groupKills?: number; unreaped?: number } = {}): void {
  tree.now += 20
  const cgroup = tree.group('g')
  cgroup.oomKills += 4
  if (options.groupKills !== undefined) cgroup.groupKills = options.groupKills
  cgroup.usage = 1 * MiB
  for (const pid of [10, 11, 12, 13]) if (pid !== options.unreaped) tree.processes.delete(pid)
}

t.test('memory.oom.group: one group-kill naming the runaway, its frame and incident; the others linked to it', async t => {
  const { tree, step } = preforkPod(true)
  captureLeak(tree, step)
  killAll(tree, { groupKills: 1 })
  const decisions = step.tick(tree.now).decisions
  const kinds = decisions.filter(d => d.kind === 'group-kill' || d.kind === 'exit').map(d => d.kind)
  t.equal(kinds[0], 'group-kill', 'the account comes first, before the exits it explains')
  const accounts = only(decisions, 'group-kill')
  t.equal(accounts.length, 1, 'one account for the container')
  const account = accounts[0]!.groupKill
  t.equal(account.runaway.pid, 12)
  t.equal(account.runaway.incidentId, '12-leak')
  t.same(account.runaway.culprit, { function: 'fd_table', file: '/app/leak.py', line: 12 })
  t.same([...account.killed].sort(), [10, 11, 12, 13], 'every watched process of the container')
  t.equal(account.groupKills, 1, "the kernel's group-kill count, where it keeps one")
  t.match(
    account.summary,
    /as a whole \(memory\.oom\.group\).*pid 12 \(worker\.py\) ran away: fd_table \(\/app\/leak\.py:12\) was growing memory, incident 12-leak/,
  )
  t.match(account.summary, /killed with it: pid 10 \(master\.py\), pid 11 \(worker\.py\), pid 13 \(worker\.py\)/)
  t.notMatch(account.summary, /no stack/, 'no "no stack" in it')

  const exits = new Map(only(decisions, 'exit').map(d => [d.exit.pid, d.exit]))
  t.same([...exits.keys()].sort(), [10, 11, 12, 13], 'every exit found in the same tick')
  for (const exit of exits.values()) t.equal(exit.oomKilled, true, `${exit.pid}: OOM-killed (each claims one of the four kills)`)
  const runaway = exits.get(12)!
  t.notOk(runaway.killedWith, "the runaway's own exit is not collateral")
  t.equal(runaway.postMortem?.culprit?.function, 'fd_table', 'it tells its own post-mortem')
  for (const pid of [10, 11, 13]) {
    const exit = exits.get(pid)!
    t.same(
      exit.killedWith,
      { pid: 12, cmdline: ['/usr/bin/python3.11', '/app/worker.py'], incidentId: '12-leak' },
      `${pid}: linked to the runaway`,
    )
    t.match(
      exit.postMortem?.summary,
      new RegExp(
        `^pid ${pid} was killed with its container \\(memory\\.oom\\.group\\) because pid 12 \\(worker\\.py\\) ran away, incident 12-leak`,
      ),
    )
    t.notMatch(exit.postMortem?.summary, /no stack was caught/, `${pid}: never told "no stack was caught"`)
    t.notOk(exit.postMortem?.culprit, `${pid}: no culprit of its own`)
  }
  t.equal(only(decisions, 'oom-kill').length, 0, 'every kill explained: no oom-kill')
})

t.test('exits found over two ticks still link to the one group kill', async t => {
  const { tree, step } = preforkPod(true)
  captureLeak(tree, step)
  killAll(tree, { unreaped: 13 }) // 13 still there a tick longer
  const first = step.tick(tree.now).decisions
  t.equal(only(first, 'group-kill').length, 1)
  tree.processes.delete(13)
  tree.now += 20
  const second = step.tick(tree.now).decisions
  t.equal(only(second, 'group-kill').length, 0, 'no second account')
  const late = only(second, 'exit').find(d => d.exit.pid === 13)?.exit
  t.equal(late?.killedWith?.pid, 12, 'the late one is linked to the same runaway')
})

t.test('a group kill before any stack: the largest is the runaway, the only one told "no stack was caught"', async t => {
  const { tree, step } = preforkPod(true)
  tree.process(11).rssBytes = 48 * MiB
  run(step, tree, 100, 6000, () => {}) // past a refresh (5 s): its RSS is read
  killAll(tree)
  const decisions = step.tick(tree.now).decisions
  const account = only(decisions, 'group-kill')[0]!.groupKill
  t.equal(account.runaway.pid, 11, 'the largest: the kernel picks by size too')
  t.notOk(account.runaway.incidentId)
  t.match(account.summary, /pid 11 \(worker\.py\) ran away: the largest, at 48 MiB; no stack was caught before the kill/)
  const exits = only(decisions, 'exit').map(d => d.exit)
  t.equal(exits.filter(e => /no stack was caught/.test(e.postMortem?.summary ?? '')).length, 1, 'only its own exit says so')
  t.equal(exits.find(e => e.pid === 11)?.killedWith, undefined)
})

t.test('without memory.oom.group (v1, or the setting off) nothing changes: no group-kill, no links', async t => {
  const { tree, step } = preforkPod(false)
  captureLeak(tree, step)
  killAll(tree)
  const decisions = step.tick(tree.now).decisions
  t.equal(only(decisions, 'group-kill').length, 0)
  t.notOk(
    only(decisions, 'exit').some(d => d.exit.killedWith),
    'no exit is linked',
  )
})
