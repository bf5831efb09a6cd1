import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { startAgent } from '../helpers/agent.js'
import { connect, type Received, type TestClient } from '../helpers/client.js'
import { makeTestCgroup, type TestCgroup } from '../helpers/memory-cgroup.js'
import { deathOf, isAlive, readPidfile } from '../helpers/process.js'
import { LEAKY_DAEMON, PYTHON } from '../helpers/python.js'
import type { ExitPayload, IncidentPayload } from '../../src/protocol/events.js'

// The product's promise, at its hardest: a daemon that leaks from its first instant (no
// --delay: the table is built right after the double fork) fills a 256 MiB container in
// 200 to 300 ms, so it is caught only by an agent that watches processes from birth. And
// the other side of that promise: a heavy but healthy start-up is not a runaway. The agent
// runs with its defaults; margins are printed as comments, never asserted as timings.
const MiB = 1024 * 1024
const LIMIT = 256 * MiB
const FIRST_INSTANT_LEAK = [PYTHON, LEAKY_DAEMON, '--entries', '10000000', '--rate', '0', '--delay', '0']
const HEAVY_STARTUP = fileURLToPath(new URL('../fixtures/python/heavy_startup.py', import.meta.url))
/** After a death, how long the incident and the exit may take to arrive: a py-spy dump that raced the kill ends by its 5 s timeout. */
const AFTER_DEATH_MS = 10_000
/** After a death, how long its process event may still be on its way; none at all means the agent never saw it. */
const SCAN_GRACE_MS = 2000
/** How long a healthy process is watched for a (wrong) incident after it is ready. */
const QUIET_MS = 3000

type Incident = IncidentPayload & Received
type Exit = ExitPayload & Received

/** At an incident's arrival: whether its process was alive, and the cgroup's oom_kill count. */
type AtIncident = Map<number, { alive: boolean; oomKills: number }>

/** An agent with its defaults, one WebSocket client, and what was true as each incident arrived. */
async function watch(t: Test, cgroup: TestCgroup) {
  const agent = await startAgent()
  t.teardown(() => agent.stop())
  const atIncident: AtIncident = new Map()
  const client = await connect(agent.port, {
    // Checked the moment the stack arrives: proof that it came before the kill. A process
    // the OOM killer has taken stays out of the zombie state while its memory is freed, so
    // the kill count is read too: it says whether the kernel had already struck.
    onEvent: event => event.type === 'incident' && atIncident.set(event.pid, { alive: isAlive(event.pid), oomKills: cgroup.oomKills() }),
  })
  t.teardown(() => client.close())
  return { client, atIncident }
}

/** What the client received about one pid, in one line: why an awaited event is missing. */
function seenOf(client: TestClient, pid: number): string {
  const mine = client.events.filter(e => 'pid' in e && e.pid === pid).map(e => e.type)
  return mine.length > 0
    ? `the client got ${mine.join(', ')} for pid ${pid}`
    : `the client got no event at all for pid ${pid} (the agent never saw it)`
}

/** One life of the first-instant leak in `cgroup`: started, and followed to its death. */
async function leakOnce(cgroup: TestCgroup, options: { daemonize: boolean; pidfile: string }) {
  const killsBefore = cgroup.oomKills()
  const command = [...FIRST_INSTANT_LEAK, ...(options.daemonize ? ['--daemonize', '--pidfile', options.pidfile] : [])]
  const [bin, ...args] = cgroup.wrap(command)
  const child = spawn(bin!, args, { stdio: 'ignore' })
  // A daemon's pidfile is written only a few ms before its leak: its pid may be known only
  // after the agent has already reported it. Events are matched by pid afterwards.
  const pid = options.daemonize ? await readPidfile(options.pidfile) : child.pid!
  const diedAt = await deathOf(pid)
  return { pid, diedAt, killsBefore, killsAfter: cgroup.oomKills() }
}

type Life = Awaited<ReturnType<typeof leakOnce>>

/**
 * Asserts that one life of the leak was caught before the kernel's OOM killer took it, as
 * e2e-oom.test.ts does for leaks that start later, and prints its margin.
 */
async function assertCaught(t: Test, client: TestClient, atIncident: AtIncident, life: Life, label: string) {
  const { pid } = life
  t.equal(life.killsAfter, life.killsBefore + 1, `${label}: the kernel OOM-killed it (the cgroup oom_kill count rose by one)`)
  // A process the agent never saw has no events to wait for: one scan after its death says so.
  const seen = await client.waitFor(e => e.type === 'process' && e.pid === pid, SCAN_GRACE_MS).catch(() => undefined)
  if (!seen) {
    t.fail(`${label}: the agent saw pid ${pid} (a process event)`, { seen: seenOf(client, pid) })
    return undefined
  }
  const incident = await client.waitFor((e): e is Incident => e.type === 'incident' && e.pid === pid, AFTER_DEATH_MS).catch(() => undefined)
  if (!incident) {
    t.fail(`${label}: an incident for pid ${pid} reached the client`, { seen: seenOf(client, pid) })
    return undefined
  }
  t.equal(atIncident.get(pid)?.alive, true, `${label}: the incident reached the client while the process was still alive`)
  t.equal(
    atIncident.get(pid)?.oomKills,
    life.killsBefore,
    `${label}: and before the kernel's OOM killer struck (the oom_kill count had not risen)`,
  )
  t.notOk(incident.capture.error, `${label}: py-spy captured the stack`, { error: incident.capture.error })
  t.equal(incident.culprit?.function, 'fd_table_from_limit', `${label}: the culprit is the leaking function`)
  t.match(incident.culprit?.file, /leaky_daemon\.py$/, `${label}: in the leaking file`)
  t.ok(incident.rlimits.NOFILE, `${label}: the rlimit snapshot includes NOFILE`)
  const exit = await client.waitFor((e): e is Exit => e.type === 'exit' && e.pid === pid, AFTER_DEATH_MS).catch(() => undefined)
  t.equal(exit?.oomKilled, true, `${label}: the exit event says OOM-killed`, { seen: seenOf(client, pid) })
  t.equal(exit?.lastIncidentId, incident.id, `${label}: and names the incident`)
  t.comment(
    `${label}: stack arrived ${Math.round(life.diedAt - incident.receivedAt)} ms before the kill; ` +
      `reason ${incident.reason}, usage ${Math.round(incident.memory.fractionOfLimit * 100)}% growing ${Math.round(incident.memory.growthBytesPerSec / MiB)} MiB/s, ` +
      `trigger-to-stack ${incident.capture.triggerToStackMs} ms, py-spy ${incident.capture.pyspyMs} ms`,
  )
  return incident
}

t.test('a double-forked daemon leaking from its first instant is caught before the kill', async t => {
  const cases = [
    { name: 'daemonized (double-forked)', daemonize: true },
    { name: 'direct child', daemonize: false },
  ]
  for (const leak of cases) {
    await t.test(leak.name, async t => {
      const cgroup = makeTestCgroup(LIMIT)
      t.teardown(() => cgroup.remove())
      const { client, atIncident } = await watch(t, cgroup)
      const life = await leakOnce(cgroup, { daemonize: leak.daemonize, pidfile: join(t.testdir(), 'daemon.pid') })
      await assertCaught(t, client, atIncident, life, leak.name)
    })
  }
})

t.test('a crash loop is caught each time', async t => {
  const LIVES = 3
  const cgroup = makeTestCgroup(LIMIT)
  t.teardown(() => cgroup.remove())
  const { client, atIncident } = await watch(t, cgroup)
  const lives: Life[] = []
  // As a supervisor restarts it: each life starts as soon as the last one is dead.
  for (let i = 0; i < LIVES; i++) lives.push(await leakOnce(cgroup, { daemonize: false, pidfile: '' }))
  t.equal(new Set(lives.map(life => life.pid)).size, LIVES, 'every life is a new pid')
  const ids: string[] = []
  for (const [i, life] of lives.entries()) {
    const incident = await assertCaught(t, client, atIncident, life, `life ${i + 1} (pid ${life.pid})`)
    if (incident) ids.push(incident.id)
  }
  t.equal(new Set(ids).size, ids.length, 'each life has an incident of its own')
})

t.test('a start-up that imports a large module set fires no incident', async t => {
  const STARTS = 5
  const containers = [
    // A worker (re)starting beside a process the agent already watches, as under a pre-fork server.
    { name: `256 MiB container, ${STARTS} start-ups one after another beside an idle Python process`, limitMiB: 256, idle: true },
    // Alone; one start-up (about 60 MiB) still stays below half of the limit.
    { name: `128 MiB container, ${STARTS} start-ups one after another`, limitMiB: 128, idle: false },
  ]
  for (const container of containers) {
    await t.test(container.name, async t => {
      const cgroup = makeTestCgroup(container.limitMiB * MiB)
      t.teardown(() => cgroup.remove())
      const { client } = await watch(t, cgroup)
      const idle = container.idle ? await startIdle(t, cgroup, client) : undefined
      const started: number[] = []
      for (let i = 0; i < STARTS; i++) {
        const [bin, ...args] = cgroup.wrap([PYTHON, HEAVY_STARTUP])
        const child = spawn(bin!, args, { stdio: ['ignore', 'pipe', 'inherit'] })
        t.teardown(() => child.kill('SIGKILL'))
        started.push(child.pid!)
        const ready = await readyLine(child.stdout)
        const grew = ready.rss_ready - ready.rss_start
        t.comment(
          `start-up ${i + 1} (pid ${child.pid}): ${ready.modules} modules${ready.missing.length > 0 ? ` (missing: ${ready.missing.join(' ')})` : ''}; RSS ${mib(ready.rss_start)} at entry, ` +
            `${mib(ready.rss_imports)} after the imports, ${mib(ready.rss_ready)} ready, ${Math.round(ready.seconds * 1000)} ms after its fork ` +
            `(${Math.round(ready.rss_ready / MiB / ready.seconds)} MiB/s from birth)`,
        )
        t.ok(grew >= 20 * MiB, `start-up ${i + 1}: RSS really grew at start-up (${mib(grew)}, at least 20 MiB)`)
        await sleep(QUIET_MS)
        const incident = client.events.find((e): e is Incident => e.type === 'incident' && e.pid === child.pid)
        t.notOk(incident, `start-up ${i + 1}: no incident in the ${QUIET_MS} ms after it was ready`, {
          summary: incident?.summary,
          memory: incident?.memory,
        })
        const seen = await client.waitFor(e => e.type === 'process' && e.pid === child.pid, 5000).catch(() => undefined)
        t.ok(seen, `start-up ${i + 1}: the agent saw it (a process event)`)
        child.kill('SIGKILL')
        await deathOf(child.pid!)
      }
      // An incident that came late (after its 3 s) for an earlier start-up is counted too.
      const late = client.events.filter(e => e.type === 'incident' && started.includes(e.pid))
      t.same(
        late.map(e => ('pid' in e ? e.pid : 0)),
        [],
        'no incident for any start-up, at any time',
      )
      if (idle)
        t.notOk(
          client.events.some(e => e.type === 'incident' && e.pid === idle.pid),
          'no incident for the idle process',
        )
    })
  }
})

/** Starts leaky_daemon.py without a leak in `cgroup`, and waits for the agent to report it. */
async function startIdle(t: Test, cgroup: TestCgroup, client: TestClient) {
  const [bin, ...args] = cgroup.wrap([PYTHON, LEAKY_DAEMON, '--entries', '0'])
  const idle = spawn(bin!, args, { stdio: 'ignore' })
  t.teardown(() => idle.kill('SIGKILL'))
  const seen = await client.waitFor(e => e.type === 'process' && e.pid === idle.pid, 5000).catch(() => undefined)
  t.ok(seen, 'the agent saw the idle process (a process event)')
  return idle
}

/** What heavy_startup.py reports on its `ready` line. */
interface Ready {
  /** How many of its modules imported, and which this interpreter lacks. */
  modules: number
  missing: string[]
  /** RSS at the interpreter's entry, after the imports, and when ready (after the cache). */
  rss_start: number
  rss_imports: number
  rss_ready: number
  /** From the process's fork to ready. */
  seconds: number
}

/** Resolves with the fixture's `ready {json}` line, once the whole line has arrived. */
function readyLine(stdout: NodeJS.ReadableStream): Promise<Ready> {
  return new Promise((resolve, reject) => {
    let text = ''
    const onData = (chunk: Buffer) => {
      text += String(chunk)
      const line = text.split('\n').find((l, i, all) => i < all.length - 1 && l.startsWith('ready '))
      if (!line) return
      stdout.off('data', onData)
      resolve(JSON.parse(line.slice('ready '.length)) as Ready)
    }
    stdout.on('data', onData)
    stdout.once('end', () => reject(new Error(`heavy_startup.py ended without a ready line; it printed: ${text}`)))
  })
}

function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`
}
