import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { startAgent } from '../helpers/agent.js'
import { makeTestCgroup } from '../helpers/memory-cgroup.js'
import { LEAKY_DAEMON, PYTHON } from '../helpers/python.js'
import type { IncidentPayload, OomwatchEvent } from '../../src/protocol/events.js'

const WSCAT = fileURLToPath(new URL('../../node_modules/.bin/wscat', import.meta.url))

t.test('live-tailing with the real wscat shows the incident, stack and rlimits', async t => {
  const cgroup = makeTestCgroup(256 * 1024 * 1024)
  t.teardown(() => cgroup.remove())
  const agent = await startAgent()
  t.teardown(() => agent.stop())
  // wscat prints one message per line when its stdout is not a terminal; its stdin stays open.
  const wscat = spawn(WSCAT, ['-c', `ws://127.0.0.1:${agent.port}/`], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => wscat.kill())
  let printed = ''
  const incident = await new Promise<IncidentPayload>((resolve, reject) => {
    let leak: ReturnType<typeof spawn> | undefined
    wscat.stdout.on('data', chunk => {
      printed += chunk
      // Only complete lines: a long event arrives in several chunks.
      const events = printed
        .split('\n')
        .slice(0, -1)
        .filter(line => line.startsWith('{'))
        .map(line => JSON.parse(line) as OomwatchEvent)
      if (!leak && events.some(event => event.type === 'hello')) {
        const [bin, ...args] = cgroup.wrap([PYTHON, LEAKY_DAEMON, '--entries', '10000000', '--rate', '0', '--delay', '1'])
        leak = spawn(bin!, args, { stdio: 'ignore' })
      }
      const found = events.find(event => event.type === 'incident' && event.pid === leak?.pid)
      if (found?.type === 'incident') resolve(found)
    })
    wscat.on('exit', code => reject(new Error(`wscat exited (${code}) before an incident; it printed: ${printed}`)))
  })
  t.equal(incident.culprit?.function, 'fd_table_from_limit')
  t.ok(incident.rlimits.NOFILE)
  t.match(incident.summary, /fd_table_from_limit \(.*leaky_daemon\.py:\d+\) is growing memory/)
})
