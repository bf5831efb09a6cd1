import t from 'tap'
import { STARTUP_MS } from '../../src/detect/newborn.js'
import { ProcReadError } from '../../src/proc/errors.js'
import { formatBytes } from '../../src/format/bytes.js'
import type { Decision } from '../../src/watch/decisions.js'
import type { Watched } from '../../src/watch/watched.js'
import { CONFIG, FakeBirths, FakeTree, HUGE_NOFILE, MiB, only, run, setCaughtIncident, stepOver } from '../helpers/fake-sensors.js'

/** The watched processes a list of decisions announced, by pid. */
function announced(decisions: readonly Decision[]): Map<number, Watched> {
  return new Map(only(decisions, 'watch').map(d => [d.watched.info.pid, d.watched]))
}

t.test('a birth is watched within a tick, read every fast tick while it starts, and the tick slows once it is over', async t => {
  const tree = new FakeTree()
  const births = new FakeBirths()
  const step = stepOver(tree, births)
  tree.cgroup('a', 30 * MiB)
  tree.spawn(10, { cgroup: 'a', ageMs: 60_000 })
  tree.spawn(1, { ageMs: 90_000 }) // the agent's own pid: never watched
  tree.now = 1000
  births.pending = true
  const first = step.tick(tree.now)
  t.same([...announced(first.decisions).keys()], [10], 'the first scan watches the Python process, not the agent')
  t.equal(first.delayMs, 100, 'a quiet pod ticks every intervalMs')
  t.ok(step.scanned)

  tree.now += 100
  tree.spawn(11, { cgroup: 'a' })
  births.pending = true
  const born = step.tick(tree.now)
  const newborn = announced(born.decisions).get(11)
  t.ok(newborn, 'the newborn is watched at the tick after its birth')
  t.equal(newborn?.startedAt, tree.now, 'its start, from its start time and the uptime')
  t.equal(born.delayMs, 20, 'a birth brings the tick down to fastIntervalMs')

  const bornAt = tree.now
  const { last } = run(step, tree, 20, bornAt + STARTUP_MS - 100, () => (tree.process(11).rssBytes += 1024))
  t.equal(last.delayMs, 20, 'still fast while it starts')
  // Its first sighting, its read at that same tick, then one a tick.
  t.equal(newborn?.series.length, 2 + (STARTUP_MS - 100) / 20, 'its RSS read at every tick, though its container is steady')
  const old = step.processes().find(p => p.pid === 10)
  t.equal(old?.memory.rssBytes, 20 * MiB, 'the elder is not read: its container is steady')
  const after = run(step, tree, 20, bornAt + STARTUP_MS + 40)
  t.equal(after.last.delayMs, 100, 'past its start-up the tick slows again')
  const length = newborn?.series.length
  run(step, tree, 100, bornAt + STARTUP_MS + 500)
  t.equal(newborn?.series.length, length, 'and it is read no more while its container is steady')
})

t.test('a fork that execs Python later is rechecked every tick, and its start-up runs from the exec', async t => {
  const tree = new FakeTree()
  const births = new FakeBirths()
  const step = stepOver(tree, births)
  tree.now = 1000
  births.pending = true
  step.tick(tree.now)
  tree.now += 100
  tree.spawn(12, { exe: '/bin/sh', ageMs: 10 })
  births.pending = true
  const shell = step.tick(tree.now)
  t.same(only(shell.decisions, 'watch'), [], 'a shell is not watched')
  t.equal(shell.delayMs, 20, 'but the tick is fast while it may exec')
  tree.now += 20
  tree.process(12).exe = '/usr/bin/python3.11'
  const exec = step.tick(tree.now)
  const found = announced(exec.decisions).get(12)
  t.ok(found, 'found at the next tick, with no birth to tell of it')
  t.equal(found?.startedAt, tree.now, 'its start-up timed from the exec seen')
  t.equal(found?.bornAt, tree.now - 30, 'its birth from its start time')
})

t.test('a script that execs Python long after its start is found within a refresh, even while births never stop', async t => {
  const tree = new FakeTree()
  const births = new FakeBirths()
  const step = stepOver(tree, births)
  tree.now = 1000
  births.pending = true
  step.tick(tree.now)
  tree.now += 100
  tree.spawn(13, { exe: '/bin/sh', ageMs: 10 })
  births.pending = true
  step.tick(tree.now)
  // A minute of a busy host: a birth at every tick, so every tick lists /proc.
  for (let at = 0; at < 600; at++) {
    tree.now += 100
    births.pending = true
    step.tick(tree.now)
  }
  tree.process(13).exe = '/usr/bin/python3.11'
  const execAt = tree.now
  let found: number | undefined
  while (found === undefined && tree.now - execAt <= CONFIG.refreshMs + 100) {
    tree.now += 100
    births.pending = true
    if (announced(step.tick(tree.now).decisions).has(13)) found = tree.now
  }
  t.ok(found, `found ${found === undefined ? 'never' : `${found - execAt} ms after its exec`}, within a refresh (${CONFIG.refreshMs} ms)`)
})

/** A leak in cgroup `a`: usage +2 MiB a tick (100 MiB/s of 256 MiB), each member's RSS by its own step. */
function leak(tree: FakeTree, steps: Record<number, number>): () => void {
  return () => {
    tree.group('a').usage += 2 * MiB
    for (const [pid, bytes] of Object.entries(steps)) tree.process(Number(pid)).rssBytes += bytes
  }
}

t.test('culprit choice: a group runaway captures the member that grew most, once per reason per cooldown', async t => {
  const tree = new FakeTree()
  const births = new FakeBirths()
  const step = stepOver(tree, births)
  tree.cgroup('a', 30 * MiB)
  for (const pid of [20, 21, 22]) tree.spawn(pid, { cgroup: 'a', ageMs: 60_000 })
  births.pending = true
  step.tick(tree.now)
  const { decisions, last } = run(step, tree, 20, 400, leak(tree, { 20: 1.5 * MiB, 22: 0.5 * MiB }))
  const captures = only(decisions, 'capture')
  t.equal(captures.length, 1, 'one capture: the gate is held while it runs')
  t.equal(captures[0]?.watched.info.pid, 20, 'of the fastest grower, not the slower one nor the steady one')
  t.equal(captures[0]?.verdict.state, 'runaway')
  t.equal(captures[0]?.verdict.reason, 'time-to-limit', 'predicted to reach its limit within 3 s')
  t.equal(last.delayMs, 20, 'fast ticks while it rises')
  captures[0]?.watched.gate.leave()
  const later = run(step, tree, 20, 800, leak(tree, { 20: 1.5 * MiB, 22: 0.5 * MiB }))
  t.same(only(later.decisions, 'capture'), [], 'the same reason is not captured again within the cooldown')
  t.ok(captures[0] && step.stillRunaway(captures[0].watched), 'and it is still heading for the limit')
})

t.test('a starting culprit growing like a start-up is held; an elder that grew by more than noise is captured instead', async t => {
  const setup = (withElder: boolean) => {
    const tree = new FakeTree()
    const births = new FakeBirths()
    const step = stepOver(tree, births)
    tree.cgroup('a', 30 * MiB)
    if (withElder) tree.spawn(31, { cgroup: 'a', ageMs: 60_000 })
    tree.spawn(30, { cgroup: 'a', ageMs: 0 })
    births.pending = true
    step.tick(tree.now)
    return run(step, tree, 20, 600, leak(tree, withElder ? { 30: 1.2 * MiB, 31: 0.4 * MiB } : { 30: 1.2 * MiB }))
  }
  const alone = setup(false)
  t.same(only(alone.decisions, 'capture'), [], 'a newborn alone, growing at 60 MiB/s in its start-up: no capture')
  t.equal(alone.last.delayMs, 20, 'but watched at the fast tick')
  const both = setup(true)
  const captures = only(both.decisions, 'capture')
  t.equal(captures.length, 1)
  t.equal(captures[0]?.watched.info.pid, 31, 'the elder is the runaway, though the newborn grew faster')
  t.equal(captures[0]?.verdict.reason, 'time-to-limit', "on the group's verdict")
})

t.test('without a usage of their own, members are judged one by one and the group takes the most urgent verdict', async t => {
  const tree = new FakeTree()
  const births = new FakeBirths()
  const step = stepOver(tree, births)
  tree.spawn(40, { ageMs: 60_000 })
  tree.spawn(41, { ageMs: 60_000 })
  births.pending = true
  const first = step.tick(tree.now)
  const group = announced(first.decisions).get(40)?.group
  if (!group) throw new Error('40 is not watched')
  t.equal(group.hasUsage, false, 'the env limit: no cgroup to read')
  t.equal(group.members.size, 2, 'both share it')
  const { decisions } = run(step, tree, 20, 400, () => (tree.process(40).rssBytes += 3 * MiB))
  const captures = only(decisions, 'capture')
  t.equal(captures.length, 1)
  t.equal(captures[0]?.watched.info.pid, 40, 'the grower, judged against the limit alone')
  t.equal(group.verdict?.state, 'runaway', "the steady member's verdict does not hide it")
})

t.test('OOM attribution: a kill explains one exit of its cgroup; the post-mortem tells the last incident', async t => {
  const tree = new FakeTree()
  const births = new FakeBirths()
  const step = stepOver(tree, births)
  const cgroup = tree.cgroup('a', 30 * MiB)
  cgroup.oomKills = 1 // a kill before we looked explains nothing
  tree.spawn(20, { cgroup: 'a', ageMs: 60_000, rlimits: HUGE_NOFILE })
  tree.spawn(21, { cgroup: 'a', ageMs: 60_000 })
  births.pending = true
  step.tick(tree.now)
  const { decisions } = run(step, tree, 20, 300, leak(tree, { 20: 2 * MiB }))
  const [capture] = only(decisions, 'capture')
  if (!capture) throw new Error('the leak was not captured')
  const w = capture.watched
  setCaughtIncident(capture, '20-abc')
  // The kernel kills 20: the count rises, its memory goes, and the fall is seen at once.
  tree.now += 20
  cgroup.oomKills = 2
  cgroup.usage -= 40 * MiB
  tree.processes.delete(20)
  const kill = step.tick(tree.now)
  const exits = only(kill.decisions, 'exit')
  t.equal(exits.length, 1, 'found at the tick of the fall, with no scan')
  const exit = exits[0]?.exit
  if (!exit) throw new Error('no exit')
  t.equal(exit.pid, 20)
  t.equal(exit.oomKilled, true, 'the kill is its')
  t.equal(exit.lastIncidentId, '20-abc')
  t.equal(exit.peakRssBytes, w.peakRss)
  t.equal(exit.postMortem?.culprit?.function, 'fd_table')
  t.equal(
    exit.postMortem?.summary,
    `pid 20 was OOM-killed: fd_table (/app/leak.py:12) was growing memory; ` +
      `peak RSS ${formatBytes(w.peakRss)}, limit 256 MiB (cgroup-v2). ` +
      `Likely cause: ${w.risks[0]?.message}`,
  )
  t.ok(tree.forgotten.includes(20), 'its stat handle is let go')
  tree.now += 20
  tree.processes.delete(21)
  births.pending = true
  const other = only(step.tick(tree.now).decisions, 'exit')
  t.equal(other[0]?.exit.pid, 21)
  t.equal(other[0]?.exit.oomKilled, false, 'one kill explains one exit: the next one is not an OOM kill')
  t.notOk(other[0] && 'postMortem' in other[0].exit)
  t.same(step.processes(), [])
})

t.test('a first-instant leak killed before any stack is told as one, not as silence', async t => {
  const tree = new FakeTree()
  const births = new FakeBirths()
  const step = stepOver(tree, births)
  const cgroup = tree.cgroup('a', 30 * MiB)
  tree.now = 1000
  births.pending = true
  step.tick(tree.now)
  tree.now += 20
  tree.spawn(60, { cgroup: 'a', ageMs: 20, rssBytes: 30 * MiB })
  births.pending = true
  step.tick(tree.now)
  run(step, tree, 20, tree.now + 140, () => (tree.process(60).rssBytes += 2 * MiB))
  tree.now += 20
  cgroup.oomKills = 1
  tree.processes.delete(60)
  const [exit] = only(step.tick(tree.now).decisions, 'exit')
  t.equal(exit?.exit.livedMs, 180)
  t.equal(
    exit?.exit.postMortem?.summary,
    `pid 60 was OOM-killed: no stack was caught before the kill (it lived 180 ms, seen 20 ms after its start, no incident); ` +
      `peak RSS ${formatBytes(44 * MiB)}, limit 256 MiB (cgroup-v2)`,
  )
})

t.test('a kill of a process never watched is told once its grace is over, with the survivors and the highest usage seen', async t => {
  const tree = new FakeTree()
  const births = new FakeBirths()
  const step = stepOver(tree, births)
  const cgroup = tree.cgroup('a', 30 * MiB)
  tree.spawn(20, { cgroup: 'a', ageMs: 60_000 })
  births.pending = true
  step.tick(tree.now)
  run(step, tree, 100, 1000)
  // Something not watched grows in the container (seen in its usage, no birth among the watched), then the kernel kills it.
  run(step, tree, 100, 1300, () => (cgroup.usage += 60 * MiB))
  tree.now += 100
  cgroup.oomKills = 1
  cgroup.usage = 30 * MiB
  t.same(only(step.tick(tree.now).decisions, 'oom-kill'), [], 'not at once: a watched victim may be found a tick later')
  const { decisions } = run(step, tree, 20, tree.now + 600)
  const kills = only(decisions, 'oom-kill')
  t.equal(kills.length, 1, 'told once, after the grace')
  t.same(only(decisions, 'exit'), [], 'and no watched process is said to have died')
  const kill = kills[0]!.oomKill
  t.match(kill, {
    type: 'oom-kill',
    kills: 1,
    survivors: [20],
    peakUsageSeenBytes: 210 * MiB,
    cgroup: { version: 2, dir: '/sys/fs/cgroup/a' },
  })
  t.notOk('lastExit' in kill)
  t.equal(
    kill.summary,
    'the kernel OOM-killed a process oomwatch was not watching, in the container /sys/fs/cgroup/a (limit 256 MiB, cgroup-v2): ' +
      'not a Python process, or one born and killed between two looks (100 ms apart in a quiet pod; --interval shortens it); ' +
      'the highest usage seen in it was 210 MiB',
  )
  t.same(only(run(step, tree, 100, tree.now + 6000).decisions, 'oom-kill'), [], 'a kill is told once')
})

t.test('a kill born, grown and killed between two looks, with no fall seen, is still told by the next refresh', async t => {
  const tree = new FakeTree()
  const births = new FakeBirths()
  const step = stepOver(tree, births)
  const cgroup = tree.cgroup('a', 30 * MiB)
  tree.spawn(20, { cgroup: 'a', ageMs: 60_000 })
  births.pending = true
  step.tick(tree.now)
  run(step, tree, 100, 1000)
  cgroup.oomKills = 1 // usage the same before and after: no tick saw it move
  const { decisions } = run(step, tree, 100, 1000 + CONFIG.refreshMs + 1000)
  t.equal(only(decisions, 'oom-kill')[0]?.oomKill.kills, 1)
})

t.test('a watched victim found a tick after its kill claims it: an exit with oomKilled, no oom-kill', async t => {
  const tree = new FakeTree()
  const births = new FakeBirths()
  const step = stepOver(tree, births)
  const cgroup = tree.cgroup('a', 30 * MiB)
  tree.spawn(20, { cgroup: 'a', ageMs: 60_000 })
  tree.spawn(21, { cgroup: 'a', ageMs: 60_000 })
  births.pending = true
  step.tick(tree.now)
  run(step, tree, 100, 1000)
  // The kill is counted and the memory reaped while 20 is still on its way out.
  tree.now += 100
  cgroup.oomKills = 1
  cgroup.usage = 10 * MiB
  tree.process(20).state = 'R'
  const first = step.tick(tree.now).decisions
  t.same(only(first, 'exit'), [], 'not gone yet')
  tree.now += 20
  tree.processes.delete(20)
  const { decisions } = run(step, tree, 20, tree.now + 1000)
  const all = [...step.tick(tree.now).decisions, ...decisions]
  t.same(
    only(all, 'exit').map(d => [d.exit.pid, d.exit.oomKilled]),
    [[20, true]],
    'found within the grace, read every tick meanwhile',
  )
  t.same(only(all, 'oom-kill'), [], 'the kill is its, not an unwatched one')
})

t.test('a container lingers after its last watched process left: a kill in it is told with that process, then it is let go', async t => {
  const tree = new FakeTree()
  const births = new FakeBirths()
  const step = stepOver(tree, births)
  const cgroup = tree.cgroup('a', 30 * MiB)
  tree.spawn(30, { cgroup: 'a', args: ['-m', 'launcher'] })
  births.pending = true
  step.tick(tree.now)
  // The launcher double-forks and leaves; the daemon it started leaks and is killed before any look.
  tree.now += 100
  tree.processes.delete(30)
  cgroup.usage = 12 * MiB
  t.same(
    only(step.tick(tree.now).decisions, 'exit').map(d => d.exit.pid),
    [30],
  )
  cgroup.oomKills = 1
  const { decisions } = run(step, tree, 100, tree.now + CONFIG.refreshMs + 1000)
  const kill = only(decisions, 'oom-kill')[0]?.oomKill
  t.match(kill, { kills: 1, survivors: [], lastExit: { pid: 30, cmdline: ['/usr/bin/python3.11', '-m', 'launcher'] } })
  t.match(kill?.summary, /; pid 30 \(launcher\) had left it \d+(\.\d)? s before: a process it started may be the one$/)
  t.same(tree.closedCgroups, [], 'still watched for kills')
  run(step, tree, 100, 70_000)
  t.same(tree.closedCgroups, ['a'], 'let go a minute after its last process')
  cgroup.oomKills = 2
  t.same(only(run(step, tree, 100, 80_000).decisions, 'oom-kill'), [], 'a container no longer watched tells nothing')
})

t.test('a tick that fails midway returns the decisions made before, with the error: an exit decided is still told', async t => {
  const tree = new FakeTree()
  const births = new FakeBirths()
  const step = stepOver(tree, births)
  tree.cgroup('a', 30 * MiB)
  tree.spawn(20, { cgroup: 'a', ageMs: 60_000 })
  tree.spawn(21, { cgroup: 'a', ageMs: 60_000 })
  births.pending = true
  step.tick(tree.now)
  // At the next refresh 20 is gone (its exit is decided, and it is forgotten), then reading 21 hits a bug.
  tree.processes.delete(20)
  const read = tree.stats.read
  const bug = new TypeError('a bug in a parser')
  tree.stats.read = pid => {
    if (pid === 21) throw bug
    return read(pid)
  }
  tree.now += CONFIG.refreshMs
  const result = step.tick(tree.now)
  t.equal(result.error, bug, 'the error is returned, not thrown')
  t.same(
    only(result.decisions, 'exit').map(d => d.exit.pid),
    [20],
    'the exit decided before it is kept',
  )
  t.equal(result.delayMs, CONFIG.fastIntervalMs, 'and the next tick comes soon')
  tree.stats.read = read
  tree.now += CONFIG.refreshMs
  const next = step.tick(tree.now)
  t.equal(next.error, undefined, 'the next tick is a normal one')
  t.same(
    step.processes().map(p => p.pid),
    [21],
  )
})

t.test('a reused pid is an exit and a birth in one tick', async t => {
  const tree = new FakeTree()
  const births = new FakeBirths()
  const step = stepOver(tree, births)
  tree.cgroup('a', 30 * MiB)
  tree.spawn(70, { cgroup: 'a', ageMs: 60_000 })
  births.pending = true
  const first = announced(step.tick(tree.now).decisions).get(70)
  tree.spawn(70, { cgroup: 'a', ageMs: 1000 }) // born while the scan looked away
  const { decisions } = run(step, tree, 100, 5000)
  t.same(
    decisions.map(d => d.kind),
    ['exit', 'watch'],
    'found at the refresh of every member',
  )
  const [exit] = only(decisions, 'exit')
  const reborn = announced(decisions).get(70)
  t.equal(exit?.exit.pid, 70)
  t.not(reborn, first)
  t.equal(reborn?.info.startTime, tree.processes.get(70)?.startTime, 'the new process')
})

t.test('without a birth signal, or once it fails, /proc is listed every scanMs; failures are decisions to report', async t => {
  const tree = new FakeTree()
  const births = new FakeBirths()
  const step = stepOver(tree, births)
  births.failure = new ProcReadError('/proc/loadavg', Object.assign(new Error('EIO'), { code: 'EIO' }))
  const failed = step.tick(tree.now)
  const [problem] = only(failed.decisions, 'problem')
  t.equal(problem?.key, 'births')
  t.match(problem?.consequence, /every 500 ms/)
  t.ok(births.closed, 'the signal is closed')
  tree.spawn(80, { ageMs: 60_000 })
  const early = run(step, tree, 100, 400)
  t.same(only(early.decisions, 'watch'), [], 'not before scanMs')
  const due = run(step, tree, 100, 500)
  t.same([...announced(due.decisions).keys()], [80], 'listed at scanMs')
})

t.test('a steady container near its limit ticks faster, easing towards fastIntervalMs', async t => {
  const tree = new FakeTree()
  const births = new FakeBirths()
  const step = stepOver(tree, births)
  tree.cgroup('a', 0.7 * 256 * MiB)
  tree.spawn(90, { cgroup: 'a', ageMs: 60_000 })
  births.pending = true
  step.tick(tree.now)
  const { last } = run(step, tree, 100, 300)
  t.equal(last.delayMs, 60, 'half way between half the limit and the trigger fraction')
})

t.test('a command line is redacted where it enters the core: every event of the process is built from the copy', async t => {
  const args = ['/app/worker.py', '--password', 'hunter2', 'DB_PASSWORD=hunter2', 'postgres://u:hunter2@h/db']
  const tree = new FakeTree()
  tree.now = 1000
  tree.spawn(10, { args, rlimits: HUGE_NOFILE })
  const births = new FakeBirths()
  births.pending = true
  const step = stepOver(tree, births)
  const watched = announced(step.tick(tree.now).decisions).get(10)
  const redacted = ['/usr/bin/python3.11', '/app/worker.py', '--password', '***', 'DB_PASSWORD=***', 'postgres://u:***@h/db']
  t.same(watched?.info.cmdline, redacted)
  t.notMatch(JSON.stringify(watched), /hunter2/, 'nothing the step keeps of it holds the secret')
  t.same(step.processes()[0]?.cmdline, redacted, 'the processes a hello lists')
  tree.now += 100
  tree.processes.delete(10)
  births.pending = true
  const [exit] = only(step.tick(tree.now).decisions, 'exit')
  t.same(exit?.exit.cmdline, redacted, 'its exit')

  const off = new FakeTree()
  off.now = 1000
  off.spawn(10, { args })
  const offBirths = new FakeBirths()
  offBirths.pending = true
  const whole = announced(stepOver(off, offBirths, { redact: 'off' }).tick(off.now).decisions).get(10)
  t.same(whole?.info.cmdline, ['/usr/bin/python3.11', ...args], 'off: the command line whole')
})
