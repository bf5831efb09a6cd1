import { spawn } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import { startAgent } from '../helpers/agent.js'
import { connect, type Received } from '../helpers/client.js'
import { expectedCgroupVersion, IN_GUEST } from '../helpers/guest.js'
import { makeTestCgroup } from '../helpers/memory-cgroup.js'
import { deathOf, isAlive, readPidfile } from '../helpers/process.js'
import { LEAKY_DAEMON, PYTHON } from '../helpers/python.js'
import type { ExitPayload, IncidentPayload } from '../../src/protocol/events.js'

// The real race: a seed-shaped daemon leaks into a 256 MiB memory cgroup until the
// kernel's OOM killer takes it; the agent runs with its defaults. Margins are printed
// as test comments for the closing note and bench/, never asserted as timings. Also run in
// the cgroup v2 guest (v2-kernel.test.ts), where only the sampled-peak margin is not asserted.
const LIMIT = 256 * 1024 * 1024
const ENTRIES = '10000000' // ~700 MB of set: far past the limit

type Incident = IncidentPayload & Received
type Exit = ExitPayload & Received

const cases = [
  { name: 'slow leak (~40 MB/s)', args: ['--rate', '40000000'], daemonize: false },
  { name: 'unthrottled leak', args: ['--rate', '0'], daemonize: false },
  { name: 'daemonized (double-forked) slow leak', args: ['--rate', '40000000'], daemonize: true },
]

for (const leak of cases) {
  t.test(leak.name, async t => {
    const cgroup = makeTestCgroup(LIMIT)
    t.teardown(() => cgroup.remove())
    const agent = await startAgent()
    t.teardown(() => agent.stop())
    const aliveAtIncident = new Map<number, boolean>()
    const client = await connect(agent.port, {
      // Checked the moment the stack arrives: proof that it came before the kill.
      onEvent: event => event.type === 'incident' && aliveAtIncident.set(event.pid, isAlive(event.pid)),
    })
    t.teardown(() => client.close())
    const pidfile = join(t.testdir(), 'daemon.pid')
    const command = [
      PYTHON,
      LEAKY_DAEMON,
      '--entries',
      ENTRIES,
      '--delay',
      '1',
      ...leak.args,
      ...(leak.daemonize ? ['--daemonize', '--pidfile', pidfile] : []),
    ]
    const [bin, ...args] = cgroup.wrap(command)
    const child = spawn(bin!, args, { stdio: 'ignore' })
    const pid = leak.daemonize ? await readPidfile(pidfile) : child.pid!
    const killsBefore = cgroup.oomKills()
    const died = deathOf(pid)
    t.equal(cgroup.version, expectedCgroupVersion(cgroup.version), `the test cgroup is v${cgroup.version}`)

    const incident = (await client.waitFor(e => e.type === 'incident' && e.pid === pid)) as Incident
    const exit = (await client.waitFor(e => e.type === 'exit' && e.pid === pid, 60_000)) as Exit
    const diedAt = await died

    t.equal(cgroup.oomKills(), killsBefore + 1, 'the kernel OOM-killed it (the cgroup oom_kill count rose by one)')
    t.equal(aliveAtIncident.get(pid), true, 'the incident reached the client while the process was still alive')
    t.notOk(incident.capture.error, 'py-spy captured the stack')
    const functions = incident.threads.flatMap(thread => thread.frames.map(frame => frame.function))
    t.ok(functions.includes('fd_table_from_limit'), 'the stack names the leaking function')
    t.equal(incident.culprit?.function, 'fd_table_from_limit', 'the culprit is the leaking function')
    t.match(incident.culprit?.file, /leaky_daemon\.py$/, 'in the leaking file')
    t.ok(incident.rlimits.NOFILE, 'the rlimit snapshot includes NOFILE')
    // The kernel's per-CPU RSS counters are read approximately: allow a few percent.
    t.ok(
      (incident.process.hwmBytes ?? 0) >= (incident.memory.rssBytes ?? Infinity) * 0.95,
      'its peak RSS (VmHWM) is about the RSS at the trigger or more',
    )
    t.equal(incident.memory.limitBytes, LIMIT, 'the limit is the cgroup limit')
    t.equal(incident.memory.limitSource, `cgroup-v${cgroup.version}`, 'and names its source')
    // Through the root of whichever process of the cgroup the agent met first (a daemon's parent, say).
    const limitFile = cgroup.version === 2 ? 'memory.max' : 'memory.limit_in_bytes'
    t.match(incident.memory.limitPath, `${cgroup.dir}/${limitFile}`, "and its file, the test cgroup's")
    t.match(incident.memory.limitPath, /^\/proc\/\d+\/root\//, 'reached through /proc/<pid>/root')
    t.equal(exit.oomKilled, true, 'the exit event says OOM-killed')
    t.equal(exit.lastIncidentId, incident.id, 'and names the incident')
    t.equal(exit.postMortem?.culprit?.function, 'fd_table_from_limit', 'its post-mortem names the culprit')
    t.equal(exit.postMortem?.limitBytes, LIMIT, 'and the limit')
    const peak = exit.postMortem?.peakRssBytes ?? 0
    const peakPercent = Math.round((peak / LIMIT) * 100)
    t.ok(peak >= (incident.memory.rssBytes ?? Infinity), `and a peak RSS (${peakPercent}% of the limit) no lower than at the trigger`)
    // The peak is the highest RSS sampled (every 20 ms in a race). The unthrottled leak grows
    // its set by doubling it: its last step to the limit is one allocation, which no sampling
    // sees, so its sampled peak can be anywhere from the trigger's 25% to ~60%.
    // A margin: under the guest's emulated CPUs the sampling and the leak's pace mean nothing.
    if (leak.args.includes('40000000') && !IN_GUEST)
      t.ok(peak > LIMIT * 0.5, `a throttled leak's sampled peak is past half the limit (${peakPercent}%)`)
    t.match(exit.postMortem?.summary, /was OOM-killed: fd_table_from_limit \(.*leaky_daemon\.py:\d+\) was growing memory; peak RSS/)
    t.ok(incident.seq < exit.seq, 'the incident came before the exit')
    t.comment(
      `${leak.name}: stack arrived ${Math.round(diedAt - incident.receivedAt)} ms before the kill; ` +
        `reason ${incident.reason}, usage ${Math.round(incident.memory.fractionOfLimit * 100)}%, ` +
        `trigger-to-stack ${incident.capture.triggerToStackMs} ms, py-spy ${incident.capture.pyspyMs} ms, sampled peak RSS ${peakPercent}%`,
    )
  })
}
