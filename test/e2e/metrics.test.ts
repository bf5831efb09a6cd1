import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import parsePrometheus, { type PromFamily } from 'parse-prometheus-text-format'
import t, { type Test } from 'tap'
import { startAgent } from '../helpers/agent.js'
import { connect, type Received } from '../helpers/client.js'
import { fakePyspy } from '../helpers/fake-pyspy.js'
import { makeTestCgroup } from '../helpers/memory-cgroup.js'
import { LEAKY_DAEMON, PYTHON } from '../helpers/python.js'
import type { IncidentPayload } from '../../src/protocol/events.js'

const LIMIT = 256 * 1024 * 1024
const TOKEN = 'metrics-token'

type Families = Map<string, PromFamily>

async function scrape(port: number, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }): Promise<Families> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { headers })
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`)
  if (!/^text\/plain; version=0\.0\.4/.test(res.headers.get('content-type') ?? ''))
    throw new Error(`content-type ${res.headers.get('content-type')}`)
  return new Map(parsePrometheus(await res.text()).map(family => [family.name, family]))
}

/** The value of the one sample whose labels include `labels`; undefined when there is none. */
function value(families: Families, name: string, labels: Record<string, string> = {}): number | undefined {
  const sample = families.get(name)?.metrics.find(m => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
  return sample?.value === undefined ? undefined : Number(sample.value)
}

/** The leaking daemon in a 256 MiB cgroup: idle (`entries` 0) or leaking ~40 MB/s after a second. */
function daemon(t: Test, label: string, entries: string) {
  const cgroup = makeTestCgroup(LIMIT)
  t.teardown(() => cgroup.remove())
  const [bin, ...args] = cgroup.wrap([PYTHON, LEAKY_DAEMON, '--entries', entries, '--rate', '40000000', '--delay', '1', '--label', label])
  const child = spawn(bin!, args, { stdio: 'ignore' })
  t.teardown(() => void child.kill('SIGKILL'))
  return Object.assign(child, { cgroup })
}

t.test('/metrics in Prometheus text: the families, their labels, and values that match a watched process', async t => {
  const label = `metrics-${process.pid}`
  // A steady process's RSS is as fresh as the last refresh (default 5 s): 500 ms, so the
  // figure is comparable with VmRSS read by the test moments later.
  const agent = await startAgent({
    OOMWATCH_MATCH: label,
    OOMWATCH_NOFILE_RISK: '4096',
    OOMWATCH_TOKEN: TOKEN,
    OOMWATCH_FLAMEGRAPH_SECONDS: '1',
    OOMWATCH_REFRESH_MS: '500',
    OOMWATCH_METRICS_PORT: '0',
  })
  t.teardown(() => agent.stop())
  const client = await connect(agent.port, { headers: { authorization: `Bearer ${TOKEN}` } })
  t.teardown(() => client.close())

  t.equal((await fetch(`http://127.0.0.1:${agent.port}/metrics`)).status, 401, 'with a token set, /metrics on the stream port needs it')
  t.ok((await fetch(`http://127.0.0.1:${agent.port}/metrics?token=${TOKEN}`)).ok, '?token= works too (a browser link)')
  const metricsPort = agent.agent.metricsPort!
  t.not(metricsPort, agent.port, 'the metrics port is a port of its own')
  const onMetricsPort = (path: string) => fetch(`http://127.0.0.1:${metricsPort}${path}`)
  t.equal((await onMetricsPort('/metrics')).status, 200, 'the metrics port serves /metrics without the token')
  t.equal((await onMetricsPort('/livez')).status, 200, 'and /livez')
  t.equal((await onMetricsPort('/readyz')).status, 200, 'and /readyz')
  t.equal((await onMetricsPort('/')).status, 404, 'and nothing else: no stream, no page')
  t.equal((await onMetricsPort('/incidents/x/flamegraph.svg')).status, 404, 'no flame graph (stacks stay behind the token)')

  const idle = daemon(t, label, '0')
  const pid = idle.pid!
  // Not injected: the container is named by its cgroup's leaf (a runtime names it after the container).
  const container = basename(idle.cgroup.dir)
  await client.waitFor(e => e.type === 'process' && e.pid === pid)
  await client.waitFor(e => e.type === 'risk' && e.pid === pid)
  // The agent sees the process at birth, while its interpreter is still starting: the
  // figures are compared once it idles.
  await sleep(1000)
  const families = await scrape(metricsPort, {})
  const usage = Number(readFileSync(`${idle.cgroup.dir}/memory.usage_in_bytes`, 'utf8'))
  const vmRss = Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024
  const nofileHard = Number(/^Max open files\s+\d+\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))?.[1])

  const expected: [string, PromFamily['type']][] = [
    ['process_cpu_user_seconds_total', 'COUNTER'],
    ['process_resident_memory_bytes', 'GAUGE'],
    ['process_open_fds', 'GAUGE'],
    ['nodejs_heap_size_used_bytes', 'GAUGE'],
    ['nodejs_eventloop_lag_seconds', 'GAUGE'],
    ['nodejs_gc_duration_seconds', 'HISTOGRAM'],
    ['oomwatch_build_info', 'GAUGE'],
    ['oomwatch_pyspy_available', 'GAUGE'],
    ['oomwatch_watched_processes', 'GAUGE'],
    ['oomwatch_process_resident_memory_bytes', 'GAUGE'],
    ['oomwatch_container_memory_usage_bytes', 'GAUGE'],
    ['oomwatch_container_memory_limit_bytes', 'GAUGE'],
    ['oomwatch_container_memory_seconds_to_limit', 'GAUGE'],
    ['oomwatch_process_nofile_hard_limit', 'GAUGE'],
    ['oomwatch_incidents_total', 'COUNTER'],
    ['oomwatch_risks_total', 'COUNTER'],
    ['oomwatch_capture_duration_seconds', 'HISTOGRAM'],
    ['oomwatch_pyspy_failures_total', 'COUNTER'],
    ['oomwatch_oom_kills_total', 'COUNTER'],
    ['oomwatch_websocket_clients', 'GAUGE'],
    ['oomwatch_events_dropped_total', 'COUNTER'],
    ['oomwatch_connections_refused_total', 'COUNTER'],
  ]
  for (const [name, type] of expected) t.equal(families.get(name)?.type, type, `${name} is a ${type.toLowerCase()}`)
  for (const family of families.values()) {
    if (!family.name.startsWith('oomwatch_')) continue
    t.ok(family.help.length > 10, `${family.name} says what it is`)
    if (family.type === 'COUNTER') t.match(family.name, /_total$/, `${family.name}: a counter ends in _total`)
    t.notMatch(family.name, /_(kb|mb|mib|ms|milliseconds|percent)(_|$)/i, `${family.name}: base units`)
  }

  const ours = { container, command: 'leaky_daemon.py' }
  for (const name of ['oomwatch_watched_processes', 'oomwatch_process_resident_memory_bytes', 'oomwatch_process_nofile_hard_limit']) {
    const samples = families.get(name)!.metrics
    t.same(
      samples.map(s => s.labels),
      [ours],
      `${name}: one series, labelled by container and command name, no pid (a recycled worker makes no new series)`,
    )
  }
  const rss = value(families, 'oomwatch_process_resident_memory_bytes', ours)!
  t.ok(Math.abs(rss - vmRss) <= vmRss * 0.1, `RSS ${rss} is the process's own VmRSS (${vmRss}), within the 10% an idle interpreter drifts`)
  t.equal(value(families, 'oomwatch_process_nofile_hard_limit', ours), nofileHard, 'NOFILE hard, as /proc/<pid>/limits says')
  t.equal(value(families, 'oomwatch_container_memory_limit_bytes', { container }), LIMIT, "the container's limit is its cgroup's")
  const seen = value(families, 'oomwatch_container_memory_usage_bytes', { container })!
  t.ok(Math.abs(seen - usage) <= usage * 0.1, `container usage ${seen} is its cgroup's (${usage} read by the test), within 10%`)
  // Its interpreter's start-up was a rise: predicted while inside the growth window (2 s), gone once it idles past it.
  let predicted = families.get('oomwatch_container_memory_seconds_to_limit')?.metrics ?? []
  for (let i = 0; i < 40 && predicted.length > 0; i++) {
    await sleep(250)
    predicted = (await scrape(metricsPort, {})).get('oomwatch_container_memory_seconds_to_limit')?.metrics ?? []
  }
  t.same(predicted, [], 'an idle container is not growing: no prediction')
  t.equal(value(families, 'oomwatch_watched_processes', ours), 1)
  t.equal(value(families, 'oomwatch_risks_total', { rule: 'nofile-hard-huge' }), 1, 'risks by rule')
  t.equal(value(families, 'oomwatch_risks_total', { rule: 'nofile-soft-huge' }), 1)
  t.equal(value(families, 'oomwatch_websocket_clients'), 1, 'the one client connected')
  t.equal(value(families, 'oomwatch_events_dropped_total'), 0)
  t.equal(value(families, 'oomwatch_connections_refused_total'), 0)
  t.equal(value(families, 'oomwatch_pyspy_available'), 1)
  t.equal(value(families, 'oomwatch_build_info', { version: '0.1.0', node: process.version }), 1)
  t.same(families.get('oomwatch_degraded')?.metrics ?? [], [], 'not degraded: no series')
  t.equal(value(families, 'oomwatch_incidents_total'), undefined, 'no incident yet: no series')

  idle.kill('SIGKILL')
  await client.waitFor(e => e.type === 'exit' && e.pid === pid)
  const after = await scrape(agent.port)
  t.same(after.get('oomwatch_process_resident_memory_bytes')?.metrics ?? [], [], 'an exited process is dropped')
  t.same(after.get('oomwatch_watched_processes')?.metrics ?? [], [], 'nor counted')
  t.same(after.get('oomwatch_container_memory_usage_bytes')?.metrics ?? [], [], 'nor its container, which nothing watched is in')

  const leaking = daemon(t, label, '10000000').pid!
  const incident = (await client.waitFor(e => e.type === 'incident' && e.pid === leaking)) as IncidentPayload & Received
  await client.waitFor(e => e.type === 'exit' && e.pid === leaking, 60_000)
  const leaked = await scrape(agent.port)
  t.equal(value(leaked, 'oomwatch_incidents_total', { reason: incident.reason }), 1, `incidents by reason (${incident.reason})`)
  const histogram = leaked.get('oomwatch_capture_duration_seconds')!.metrics[0]!
  t.equal(Number(histogram.count), 1, 'one capture timed')
  t.ok(Math.abs(Number(histogram.sum) - incident.capture.triggerToStackMs / 1000) < 0.001, 'its trigger-to-stack time, in seconds')
  t.equal(value(leaked, 'oomwatch_oom_kills_total', { watched: 'true' }), 1, 'the kernel OOM-killed it')
  t.equal(value(leaked, 'oomwatch_pyspy_failures_total'), undefined, 'py-spy did not fail')
})

t.test('py-spy failures are counted by code', async t => {
  const label = `metrics-denied-${process.pid}`
  const pyspy = fakePyspy(t.testdir(), 'py-spy', 'echo "Error: Permission denied (os error 13)" >&2; exit 1')
  const agent = await startAgent({ OOMWATCH_MATCH: label, OOMWATCH_PYSPY: pyspy, OOMWATCH_METRICS_PID: 'true' })
  t.teardown(() => agent.stop())
  const client = await connect(agent.port)
  t.teardown(() => client.close())
  const pid = daemon(t, label, '10000000').pid!
  const incident = (await client.waitFor(e => e.type === 'incident' && e.pid === pid)) as IncidentPayload & Received
  t.equal(incident.capture.error?.code, 'PTRACE_DENIED')
  const families = await scrape(agent.port, {})
  t.equal(value(families, 'oomwatch_pyspy_failures_total', { code: 'PTRACE_DENIED', run: 'dump' }), 1)
  const idle = daemon(t, label, '0').pid!
  await client.waitFor(e => e.type === 'process' && e.pid === idle)
  const withPid = await scrape(agent.port, {})
  t.equal(
    value(withPid, 'oomwatch_watched_processes', { pid: String(idle), command: 'leaky_daemon.py' }),
    1,
    '--metrics-pid: pid is a label',
  )
})
