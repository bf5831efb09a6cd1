import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { connect as tcpConnect, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { runCli } from '../helpers/cli.js'
import { connect } from '../helpers/client.js'
import { LEAKY_DAEMON, PYTHON } from '../helpers/python.js'

/** The agent's file descriptors: as few as the review's reproduction gave it. */
const NOFILE = 200
/** Connections that send half a request and then nothing: more than the agent has descriptors. */
const FLOOD = 300

/** Opens a connection that sends the start of a request and never ends its headers. */
async function partialRequest(port: number): Promise<Socket | undefined> {
  const socket = tcpConnect(port, '127.0.0.1')
  socket.on('error', () => {}) // the agent may close it at once: that is the point
  try {
    await once(socket, 'connect')
  } catch {
    return undefined
  }
  socket.write('GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ')
  return socket
}

/** `/livez`'s status, or the failure. */
async function livez(port: number): Promise<number | string> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/livez`, { signal: AbortSignal.timeout(5000) })
    await res.text()
    return res.status
  } catch (error) {
    return String(error)
  }
}

// The review's reproduction: a flood of half-sent requests took the descriptors the scan
// of /proc needs; the scan threw EMFILE, uncaught, and the agent exited.
t.test('a flood of half-sent requests under a small NOFILE limit does not stop the watch', async t => {
  const run = runCli([], { OOMWATCH_PORT: '0' }, { prefix: ['prlimit', `--nofile=${NOFILE}`, '--'] })
  t.teardown(() => void run.child.kill('SIGKILL'))
  const listening = await run.line(line => typeof line.port === 'number' && String(line.msg).includes('listening'))
  const port = Number(listening.port)
  const client = await connect(port)
  t.teardown(() => client.close())
  await client.waitFor(e => e.type === 'hello')

  const flood: Socket[] = []
  t.teardown(() => flood.forEach(socket => socket.destroy()))
  for (let i = 0; i < FLOOD; i++) {
    const socket = await partialRequest(port)
    if (socket) flood.push(socket)
  }
  // Refill while the Python process starts: an attacker keeps the pressure on.
  let flooding = true
  const refill = (async () => {
    while (flooding) {
      const socket = await partialRequest(port)
      if (socket) flood.push(socket)
      await sleep(5)
    }
  })()
  t.teardown(() => {
    flooding = false
    return refill
  })

  const python = spawn(PYTHON, [LEAKY_DAEMON, '--entries', '0'], { stdio: 'ignore' })
  t.teardown(() => void python.kill('SIGKILL'))
  const seen = await client.waitFor(e => e.type === 'process' && e.pid === python.pid, 20_000)
  t.equal(seen.type, 'process', 'a Python process started during the flood is seen, by a client connected before it')
  t.equal(await livez(port), 200, '/livez answers 200 during the flood')
  flooding = false
  await refill
  t.equal(run.child.exitCode, null, 'the agent is still running')
  t.equal(run.child.signalCode, null)

  const refusals = await run.line(line => line.kind === 'capacity')
  t.match(refusals.msg, /connections/, 'connections over the cap are logged')
  run.child.kill('SIGTERM')
  const { code, stdout } = await run.done
  t.equal(code, 0, 'exits 0 on SIGTERM')
  const lines = stdout.split('\n').filter(line => line.startsWith('{'))
  const capacity = lines.map(line => JSON.parse(line) as Record<string, unknown>).filter(line => line.kind === 'capacity')
  t.ok(capacity.length <= 10, `the refusals are logged at a bounded rate: ${capacity.length} lines`)
  t.notMatch(stdout, /EMFILE/, 'the watch never ran out of descriptors')
})

// A connection that never finishes its headers is cut after the request timeout, not the 79 s node's defaults gave it.
t.test('a connection that never finishes its headers is answered 408 within the request timeout', async t => {
  const run = runCli([], { OOMWATCH_PORT: '0', OOMWATCH_REQUEST_TIMEOUT_MS: '1000' })
  t.teardown(() => void run.child.kill('SIGKILL'))
  const listening = await run.line(line => typeof line.port === 'number' && String(line.msg).includes('listening'))
  const socket = await partialRequest(Number(listening.port))
  t.ok(socket)
  const started = performance.now()
  let answer = ''
  socket!.on('data', chunk => (answer += String(chunk)))
  await once(socket!, 'close')
  const tookMs = performance.now() - started
  t.ok(tookMs < 4000, `closed after ${Math.round(tookMs)} ms`)
  t.match(answer, /^HTTP\/1\.1 408/, 'with 408 Request Timeout')
  run.child.kill('SIGTERM')
  t.equal((await run.done).code, 0)
})
