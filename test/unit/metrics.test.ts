import t from 'tap'
import { Metrics } from '../../src/metrics/registry.js'
import type { OomwatchEvent } from '../../src/protocol/events.js'

// The exposition's counts, from the sources and the events (the scrape of a real agent is e2e/metrics.test.ts).
t.test('kills are counted by whether oomwatch watched the process; refused connections mirror the server', async t => {
  const stream = { clients: 0, droppedEvents: 0, refusedConnections: 0 }
  const metrics = new Metrics({ version: '0.0.0', pyspyFound: true, status: { processes: () => [], containers: () => [] }, stream })
  const stamp = { seq: 1, ts: '2026-12-02T00:00:00.000Z' }
  metrics.sink({ type: 'exit', pid: 5, cmdline: ['python3'], oomKilled: true, ...stamp })
  metrics.sink({ type: 'exit', pid: 6, cmdline: ['python3'], oomKilled: false, ...stamp })
  const unwatched: OomwatchEvent = {
    type: 'oom-kill',
    kills: 2,
    cgroup: { version: 2, dir: '/sys/fs/cgroup' },
    limit: { bytes: 1, source: 'cgroup-v2' },
    survivors: [],
    summary: 's',
    ...stamp,
  }
  metrics.sink(unwatched)
  stream.refusedConnections = 7
  const { body } = await metrics.text()
  t.match(body, /^oomwatch_oom_kills_total\{watched="true"\} 1$/m, 'the exit with oomKilled')
  t.match(body, /^oomwatch_oom_kills_total\{watched="false"\} 2$/m, 'the oom-kill event, by its count')
  t.match(body, /^oomwatch_connections_refused_total 7$/m, 'read at the scrape')
  stream.refusedConnections = 9
  t.match((await metrics.text()).body, /^oomwatch_connections_refused_total 9$/m, 'mirrored, never counted twice')
})
