import { spawn, type ChildProcess } from 'node:child_process'
import { copyFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { WebSocket } from 'ws'
import { runCli } from '../helpers/cli.js'
import { connect, type TestClient } from '../helpers/client.js'
import { makeTestCgroup, type TestCgroup } from '../helpers/memory-cgroup.js'
import { LEAKY_DAEMON, PYTHON } from '../helpers/python.js'

// Load on loopback: 200 watched Python processes, 50 clients, 20 processes leaking into
// 20 memory cgroups at once, and one client that stops reading. The agent runs as its
// own process so that its memory can be read.
const IDLE = 200
const CLIENTS = 50
const LEAKS = 20
/** The built agent's memory bound under this load (VmHWM); the sidecar's limit in sidecar.yaml is above it. */
const MEMORY_BOUND = 128 * 1024 * 1024

t.test(
  `${IDLE} processes, ${CLIENTS} clients, ${LEAKS} leaks at once: every healthy client gets every event in order`,
  { timeout: 300_000 },
  async t => {
    // A uniquely named copy of the daemon, so the agent watches only this test's processes.
    const daemon = join(t.testdir(), `load_daemon_${process.pid}.py`)
    copyFileSync(LEAKY_DAEMON, daemon)
    const agent = runCli([], { OOMWATCH_PORT: '0', OOMWATCH_MATCH: `load_daemon_${process.pid}` }, { built: true })
    t.teardown(() => agent.child.kill('SIGKILL'))
    const { port } = (await agent.line(line => typeof line.port === 'number')) as { port: number }

    const clients: TestClient[] = []
    for (let i = 0; i < CLIENTS; i++) clients.push(await connect(port))
    t.teardown(() => clients.forEach(client => client.close()))
    const slow = new WebSocket(`ws://127.0.0.1:${port}/`)
    let slowClosedEarly = false
    slow.on('close', () => (slowClosedEarly = true))
    await new Promise(resolve => slow.once('open', resolve))
    ;(slow as unknown as { _socket: { pause(): void } })._socket.pause()

    const children: ChildProcess[] = []
    t.teardown(() => children.forEach(child => child.kill('SIGKILL')))
    for (let i = 0; i < IDLE; i++) children.push(spawn(PYTHON, [daemon, '--entries', '0'], { stdio: 'ignore' }))
    const cgroups: TestCgroup[] = []
    t.teardown(async () => {
      for (const cgroup of cgroups) await cgroup.remove()
    })
    const leaks = Array.from({ length: LEAKS }, (_, i) => {
      const cgroup = makeTestCgroup(256 * 1024 * 1024, `oomwatch-load-${process.pid}-${i}`)
      cgroups.push(cgroup)
      const [bin, ...args] = cgroup.wrap([PYTHON, daemon, '--entries', '10000000', '--rate', '40000000', '--delay', '2'])
      const child = spawn(bin!, args, { stdio: 'ignore' })
      children.push(child)
      return child.pid!
    })

    const reference = clients[0]!
    for (const pid of leaks) await reference.waitFor(e => e.type === 'exit' && e.pid === pid, 120_000)
    const lastSeq = reference.events.at(-1)!.seq
    for (const client of clients) await client.waitFor(e => e.seq >= lastSeq, 30_000)

    const incidents = reference.events.filter(e => e.type === 'incident' && leaks.includes(e.pid))
    t.equal(new Set(incidents.map(e => 'pid' in e && e.pid)).size, LEAKS, 'an incident for every leaking process')
    const withStack = incidents.filter(e => e.type === 'incident' && e.culprit?.function === 'fd_table_from_limit')
    t.comment(`${withStack.length}/${incidents.length} incidents name the leaking function`)
    t.ok(withStack.length >= LEAKS * 0.9, 'nearly all name the leaking function, with 20 py-spy runs on 2 cores')
    const kills = reference.events.filter(e => e.type === 'exit' && leaks.includes(e.pid) && e.oomKilled)
    t.equal(kills.length, LEAKS, 'and an OOM-kill exit for each')

    const first = reference.events.find(e => e.type === 'hello')!.seq + 1
    const expected = Array.from({ length: lastSeq - first + 1 }, (_, at) => first + at)
    let healthy = 0
    for (const client of clients) {
      const seqs = client.events
        .filter(e => e.type !== 'hello')
        .map(e => e.seq)
        .filter(seq => seq <= lastSeq)
      if (seqs.length === expected.length && seqs.every((seq, at) => seq === expected[at])) healthy++
    }
    t.equal(healthy, CLIENTS, `all ${CLIENTS} clients received all ${expected.length} events, in seq order`)
    // This run sends ~1 MB per client, which a stopped reader's loopback socket buffers
    // (~4 MiB) absorb: here the slow client must only not hold anyone back. Its close, when
    // its backlog passes the allowance, is driven in clients.test.ts.
    t.notOk(slowClosedEarly, 'the slow client cost the others nothing (and was not mistaken for dead)')

    const status = readFileSync(`/proc/${agent.child.pid}/status`, 'utf8') // read before teardown kills it
    const peak = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]) * 1024
    t.comment(`agent peak RSS ${Math.round(peak / 2 ** 20)} MiB`)
    t.ok(peak < MEMORY_BOUND, `the agent's peak RSS stayed under ${MEMORY_BOUND / 2 ** 20} MiB`)
  },
)
