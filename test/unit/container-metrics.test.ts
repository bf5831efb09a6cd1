// Pure logic behind the metrics' labels: which container a process is in, how processes add
// up to one series, and what a container's gauges read (a real scrape: e2e/metrics.test.ts).
import t from 'tap'
import { containerName, nameFromEnviron } from '../../src/proc/container-name.js'
import { ProcReader } from '../../src/proc/reader.js'
import { aggregateProcesses } from '../../src/metrics/watched-gauges.js'
import { Metrics } from '../../src/metrics/registry.js'
import { containerReadings } from '../../src/watch/containers.js'
import { Group } from '../../src/watch/group.js'
import type { Watched } from '../../src/watch/watched.js'
import type { ProcessInfo } from '../../src/protocol/events.js'

const MiB = 1 << 20
const ID = '3b5f6a7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192'

t.test('the container name: injected, else the id in the cgroup leaf, else the leaf', async t => {
  const environ = Buffer.from(`PATH=/usr/bin\0OOMWATCH_CONTAINER_NAME=app\0HOME=/root\0`)
  t.equal(nameFromEnviron(environ), 'app')
  t.equal(nameFromEnviron(Buffer.from('PATH=/usr/bin\0')), undefined, 'not injected')
  t.equal(nameFromEnviron(Buffer.from('OOMWATCH_CONTAINER_NAME=\0')), undefined, 'an empty name is none')
  t.equal(containerName('app', `/kubepods/burstable/pod1/${ID}`), 'app', 'the injected name wins')
  t.equal(containerName(undefined, `/kubepods/burstable/pod1/${ID}`), ID.slice(0, 12), 'v1: the id, as crictl ps shows it')
  t.equal(containerName(undefined, `/../cri-containerd-${ID}.scope`), ID.slice(0, 12), 'v2 seen from a sibling cgroup namespace')
  t.equal(containerName(undefined, '/user.slice/session-3.scope'), 'session-3.scope', 'no id: the leaf')
  t.equal(containerName(undefined, '/'), '', 'a cgroup root: unknown')
  t.equal(containerName(undefined, undefined), '', 'no cgroup: unknown')
})

function proc(pid: number, container: string, script: string, rss: number, nofile: number | 'unlimited'): ProcessInfo {
  return {
    pid,
    ppid: 1,
    startTime: pid,
    cmdline: ['python3', script],
    container,
    python: { via: 'exe', detail: 'python3' },
    rlimits: { NOFILE: { soft: 1024, hard: nofile, units: 'files' } },
    memory: { rssBytes: rss, limit: { bytes: 256 * MiB, source: 'host' } },
  }
}

t.test('processes add up by container and command: a recycled worker makes no new series', async t => {
  const workers = [
    proc(10, 'app', 'worker.py', 30 * MiB, 1024),
    proc(11, 'app', 'worker.py', 50 * MiB, 1048576),
    proc(12, 'app', 'beat.py', 20 * MiB, 'unlimited'),
    proc(13, 'jobs', 'worker.py', 10 * MiB, 4096),
  ]
  t.same(aggregateProcesses(workers, false), [
    { labels: { container: 'app', command: 'worker.py' }, count: 2, rssBytes: 80 * MiB, nofileHard: 1048576 },
    { labels: { container: 'app', command: 'beat.py' }, count: 1, rssBytes: 20 * MiB, nofileHard: Infinity },
    { labels: { container: 'jobs', command: 'worker.py' }, count: 1, rssBytes: 10 * MiB, nofileHard: 4096 },
  ])
  const recycled = [workers[0]!, { ...workers[1]!, pid: 99 }, workers[2]!, workers[3]!]
  t.same(
    aggregateProcesses(recycled, false).map(a => a.labels),
    aggregateProcesses(workers, false).map(a => a.labels),
    'a worker replaced under another pid: the same series',
  )
  t.same(
    aggregateProcesses(workers, true).map(a => a.labels.pid),
    ['10', '11', '12', '13'],
    'with pid: one series each',
  )
})

function watchedIn(group: Group, container: string): Watched {
  return { group, info: { container } } as unknown as Watched
}

t.test("a container's reading: its cgroup's usage and limit, and seconds to the limit only while growing", async t => {
  let usage = 100 * MiB
  const counters = { usage: () => usage, oomKills: () => 0, close: () => {} }
  const limit = { bytes: 256 * MiB, source: 'cgroup-v2' as const, path: '/x/memory.max', via: 'proc-root' as const }
  const cgroup = { id: '2:1:1', version: 2 as const, dir: '/x', via: 'proc-root' as const, chain: ['/x'], path: '/x' }
  const group = new Group('2:1:1', limit, cgroup, () => counters)
  group.sample(0, 100)
  const steady = containerReadings([watchedIn(group, 'app'), watchedIn(group, 'app')])
  t.same(steady, [{ container: 'app', usageBytes: 100 * MiB, limitBytes: 256 * MiB }], 'one reading per container, no prediction')
  usage = 150 * MiB
  group.sample(1000, 100)
  group.verdict = { state: 'rising', usage, limit: limit.bytes, fraction: usage / limit.bytes, bytesPerSec: 50 * MiB, secondsToLimit: 2.12 }
  t.same(containerReadings([watchedIn(group, 'app')]), [
    { container: 'app', usageBytes: 150 * MiB, limitBytes: 256 * MiB, secondsToLimit: 2.12 },
  ])
  group.verdict = { ...group.verdict, bytesPerSec: 0, secondsToLimit: Infinity }
  t.equal(containerReadings([watchedIn(group, 'app')])[0]?.secondsToLimit, undefined, 'risen but flat now: none')
  const hostGroup = new Group('host', { bytes: 1024 * MiB, source: 'host' }, undefined)
  t.same(containerReadings([watchedIn(hostGroup, '')]), [{ container: '', limitBytes: 1024 * MiB }], 'without a cgroup: no usage')
})

t.test('oomwatch_degraded: one series per reason while degraded, none otherwise', async t => {
  const stream = { clients: 0, droppedEvents: 0, refusedConnections: 0 }
  const status = { processes: () => [], containers: () => [] }
  let reasons: string[] = []
  const metrics = new Metrics({ version: '0.0.0', pyspyFound: true, status, stream, degraded: () => reasons })
  t.notMatch((await metrics.text()).body, /^oomwatch_degraded\{/m)
  reasons = ['journal', 'pyspy-missing']
  const body = (await metrics.text()).body
  t.match(body, /^oomwatch_degraded\{reason="journal"\} 1$/m)
  t.match(body, /^oomwatch_degraded\{reason="pyspy-missing"\} 1$/m)
})

t.test('a name that cannot be read is no name, never an error that would lose the process', async t => {
  const root = t.testdir({
    '10': { environ: 'PATH=/bin\0OOMWATCH_CONTAINER_NAME=web\0' },
    '11': { environ: {} }, // a directory: EISDIR, as an odd read error would be
  })
  const proc = new ProcReader(root)
  t.equal(proc.injectedContainerName(10), 'web')
  t.equal(proc.injectedContainerName(11), undefined)
  t.equal(proc.injectedContainerName(12), undefined, 'gone')
})
