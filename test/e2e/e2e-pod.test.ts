import t, { type Test } from 'tap'
import { connect, type Received } from '../helpers/client.js'
import { expectedCgroupVersion } from '../helpers/guest.js'
import { startPod } from '../helpers/pod.js'
import { isAlive } from '../helpers/process.js'
import { LEAKY_DAEMON, PYTHON } from '../helpers/python.js'
import type { ExitPayload, IncidentPayload, ProcessPayload } from '../../src/protocol/events.js'

// sidecar.yaml, without a cluster: a pod built from namespaces (see helpers/pod.ts), the
// real CLI as the sidecar with sidecar.yaml's securityContext, the seed-shaped daemon
// leaking into the app container's 256 MiB limit until the kernel OOM-kills it.
const LIMIT = 256 * 1024 * 1024
const TOKEN = 'pod-test-token'

type Process = ProcessPayload & Received
type Incident = IncidentPayload & Received
type Exit = ExitPayload & Received

const leak = [PYTHON, LEAKY_DAEMON, '--entries', '10000000', '--delay', '1', '--rate', '40000000']
const isLeak = (cmdline: string[]) => cmdline.some(arg => arg.endsWith('leaky_daemon.py'))

async function runPod(t: Test, agentCaps: string[]) {
  const pod = await startPod(
    {
      appLimitBytes: LIMIT,
      app: leak,
      agentCaps,
      // As sidecar.yaml sets them: the Downward API's limits.memory of the app container
      // (in bytes, divisor 1), the token from a Secret; port 0 because tests share a host.
      agentEnv: { OOMWATCH_MEMORY_LIMIT: String(LIMIT), OOMWATCH_TOKEN: TOKEN, OOMWATCH_PORT: '0', OOMWATCH_HOST: '127.0.0.1' },
    },
    t.testdir(),
  )
  t.teardown(() => pod.stop())
  const aliveAtIncident = new Map<number, boolean>()
  const client = await connect(pod.port, {
    headers: { Authorization: `Bearer ${TOKEN}` },
    // Checked the moment the stack arrives: proof that it came before the kill.
    onEvent: event => {
      if (event.type !== 'incident') return
      const hostPid = pod.hostPidOfApp(event.pid)
      aliveAtIncident.set(event.pid, hostPid !== undefined && isAlive(hostPid))
    },
  })
  t.teardown(() => client.close())
  const killsBefore = pod.appOomKills()
  await pod.startApp()
  const proc = (await client
    .waitFor(e => e.type === 'process' && isLeak(e.cmdline))
    .catch((error: Error) => {
      // Say why the agent did not see it: its warnings name the file it could not read.
      const warnings = pod.logs.filter(l => l.level === 'warn').map(l => String(l.msg))
      throw new Error(`${error.message}; the agent never reported the app process; its warnings: ${warnings.join(' | ') || 'none'}`)
    })) as Process
  const incident = (await client.waitFor(e => e.type === 'incident' && e.pid === proc.pid)) as Incident
  const exit = (await client.waitFor(e => e.type === 'exit' && e.pid === proc.pid, 60_000)) as Exit
  return { pod, proc, incident, exit, killsBefore, aliveAtIncident: aliveAtIncident.get(proc.pid) }
}

t.test('sidecar with CAP_SYS_PTRACE: the limit through /proc/<pid>/root, the stack before the OOM kill', async t => {
  const { pod, proc, incident, exit, killsBefore, aliveAtIncident } = await runPod(t, ['sys_ptrace'])
  const limit = proc.memory.limit
  t.equal(pod.cgroupVersion, expectedCgroupVersion(pod.cgroupVersion), `the pod's cgroups are v${pod.cgroupVersion}`)
  t.equal(limit.bytes, LIMIT, "the process event carries the app container's own limit")
  t.equal(limit.source, `cgroup-v${pod.cgroupVersion}`, 'from its cgroup, not the Downward API fallback')
  t.equal(limit.via, 'proc-root', 'reached through the app process, as a sidecar must')
  t.match(
    limit.path,
    new RegExp(`^/proc/${proc.pid}/root/sys/fs/cgroup/`),
    "the file is the app's /sys/fs/cgroup, seen through /proc/<pid>/root",
  )
  const limitFile = pod.cgroupVersion === 2 ? /\/memory\.max$/ : /\/memory\.limit_in_bytes$/
  t.match(limit.path, limitFile, `the v${pod.cgroupVersion} limit file`)

  t.equal(pod.appOomKills(), killsBefore + 1, 'the kernel OOM-killed the app (its cgroup oom_kill count rose by one)', {
    exit,
    pod: pod.stderr(),
  })
  t.equal(aliveAtIncident, true, 'the incident reached the client while the app was still alive')
  t.notOk(incident.capture.error, 'py-spy captured the stack with only CAP_SYS_PTRACE')
  const functions = incident.threads.flatMap(thread => thread.frames.map(frame => frame.function))
  t.ok(functions.includes('fd_table_from_limit'), 'the stack names the leaking function')
  t.equal(incident.culprit?.function, 'fd_table_from_limit', 'the culprit is the leaking function')
  t.match(incident.rlimits.NOFILE, { soft: Number, hard: Number, units: 'files' }, 'the rlimit snapshot carries NOFILE')
  t.equal(incident.memory.limitSource, `cgroup-v${pod.cgroupVersion}`, "the incident's limit is the app's cgroup limit")
  t.equal(exit.oomKilled, true, 'the exit event says OOM-killed')
  t.equal(exit.lastIncidentId, incident.id, 'and names the incident')
  t.comment(
    `reason ${incident.reason}, usage ${Math.round(incident.memory.fractionOfLimit * 100)}%, trigger-to-stack ${incident.capture.triggerToStackMs} ms`,
  )
})

t.test('sidecar without CAP_SYS_PTRACE: the incident still arrives, naming the missing capability and the fix', async t => {
  const { pod, proc, incident, killsBefore, aliveAtIncident } = await runPod(t, [])
  t.equal(proc.memory.limit.source, 'env', "the app's cgroup is closed to it: the limit is the Downward API's OOMWATCH_MEMORY_LIMIT")
  t.equal(proc.memory.limit.bytes, LIMIT, 'with its value')
  t.equal(incident.capture.error?.code, 'PTRACE_DENIED', 'the capture failed for want of ptrace rights')
  t.match(incident.capture.error?.remedy, /CAP_SYS_PTRACE/, 'the remedy names the missing capability')
  t.match(incident.capture.error?.remedy, /capabilities\.add \[SYS_PTRACE\]/, 'and the securityContext that fixes it')
  t.same(incident.threads, [], 'there is no stack')
  t.match(incident.rlimits.NOFILE, { soft: Number, hard: Number }, 'the rlimits still arrive (/proc/<pid>/limits needs no ptrace)')
  t.equal(aliveAtIncident, true, 'the incident reached the client while the app was still alive')
  t.equal(pod.appOomKills(), killsBefore + 1, 'the kernel OOM-killed the app', { pod: pod.stderr() })
  t.comment(`py-spy said: ${incident.capture.error?.message}`)
})
