// Soak: the agent under test/e2e/load.test.ts's load for minutes, with hostile clients all along.
// Usage: npm run bench:soak -- [--minutes 10] [--leaks 20] [--waves 5] [--idle 200] [--clients 50]
//        [--rss-bound 256] [--agent-node-args '...'] [--agent-cli /path/to/dist/cli.js]
// (or: npm run build && node bench/soak.mjs [--minutes 10])
//
// The agent runs as the sidecar does (`node <shebang flags> dist/cli.js --port 0`, a journal
// directory, defaults otherwise: 127.0.0.1, no token, 256 connections, 10 s request timeout,
// 64 clients), watching only this run's processes (OOMWATCH_MATCH on a uniquely named copy of
// the seed's daemon, as load.test.ts does). For `--minutes`:
// - 200 idle Python processes (one 4 GiB memory cgroup) and 50 healthy WebSocket clients
//   (live, no `since`), connected before anything else;
// - 20 leaks (`leaky_daemon.py --entries 10000000 --rate 40000000 --delay 2`, ~40 MB/s), each
//   in its own 256 MiB memory cgroup, in 5 waves of 4 spread over the run (the last one 45 s
//   before its end), one leak a second within a wave;
// - hostile clients the whole time: floods (a burst of 400 connections every 15 s, each held
//   12 s, past the 256-connection cap with the healthy clients: half-sent request heads trickling a header a second, silent connections, requests
//   with a foreign Host, /livez probes, WebSocket upgrades that never read), clients that
//   replay `?since=0` and disconnect in the middle (terminate, close, or stop reading, then
//   terminate), clients that send garbage (text and binary junk, an oversized frame, bytes
//   that are no WebSocket frame).
// Then the checks, one line each, and exit 1 when one fails:
// - every leak caught before its kill: an incident for its pid received by a healthy client
//   while the process was alive (/proc/<pid>/stat at receipt), and an `exit` with oomKilled;
// - no seq gap: every healthy client got seqs hello.seq+1, +2, ... up to the last event, and
//   none was closed before the end;
// - the agent's peak RSS (VmHWM) under --rss-bound MiB;
// - the agent exits 0 on SIGTERM (within 10 s).
// Progress on stderr; the checks and a markdown summary (for BENCHMARKS.md) on stdout; the
// agent's log in bench/results/. Runs in its own PID namespace unless --no-isolate (lib/common.mjs).
import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { connect as tcpConnect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { randomBytes } from 'node:crypto'
import { WebSocket } from 'ws'
import {
  CLK_TCK,
  DAEMON,
  MiB,
  PYTHON,
  ROOT,
  fmt,
  isAlive,
  isolate,
  machine,
  makeCgroup,
  median,
  option,
  procState,
  spawnIdlePythons,
  startAgentProcess,
  usageOf,
} from './lib/common.mjs'

const { isolated, args } = isolate()
const MINUTES = Number(option(args, 'minutes', '10'))
const LEAKS = Number(option(args, 'leaks', '20'))
const WAVES = Math.max(1, Math.min(LEAKS, Number(option(args, 'waves', '5'))))
const IDLE = Number(option(args, 'idle', '200'))
const CLIENTS = Number(option(args, 'clients', '50'))
const RSS_BOUND = Number(option(args, 'rss-bound', '256')) * MiB
const agentNodeArgs = option(args, 'agent-node-args', '').split(' ').filter(Boolean)
const agentCli = option(args, 'agent-cli', undefined)

const DURATION_MS = MINUTES * 60_000
const LEAK_LIMIT = 256 * MiB
const LEAK_ARGS = ['--entries', '10000000', '--rate', '40000000', '--delay', '2']
/** The first wave starts this long after the hostile clients; the last this long before the end. */
const FIRST_WAVE_MS = 5000
const LAST_WAVE_BEFORE_END_MS = 45_000
const FLOOD = { every: 15_000, hold: 12_000, connections: 400, wsIdle: 8 }
const REPLAY_EVERY_MS = 2000
const GARBAGE_EVERY_MS = 3000
const HOSTILE_AT_ONCE = 3
const STOP_WITHIN_MS = 10_000

const log = line => process.stderr.write(`${line}\n`)
const since0 = performance.now()
const clock = () => `${fmt((performance.now() - since0) / 1000, 0)}s`

const stamp = new Date().toISOString().replace(/[:.]/g, '-')
const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim()
const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim()
const commitLine = `${commit}${dirty ? ' (with uncommitted changes)' : ''}`
const machineLine = machine()
log(`machine: ${machineLine}${isolated ? '; in its own PID namespace' : ''}`)
log(`commit: ${commitLine}`)
log(
  `soak: ${MINUTES} min, ${IDLE} idle processes, ${CLIENTS} healthy clients, ${LEAKS} leaks in ${WAVES} waves, hostile clients throughout`,
)

// A uniquely named copy of the daemon: the agent watches only this run's processes.
const work = mkdtempSync(join(tmpdir(), 'oomwatch-soak-'))
const tag = `soak_daemon_${Date.now()}`
const daemon = join(work, `${tag}.py`)
copyFileSync(DAEMON, daemon)
const journalDir = join(work, 'journal')
const resultsDir = join(ROOT, 'bench/results')
mkdirSync(resultsDir, { recursive: true })
const agentLogPath = join(resultsDir, `soak-${stamp}-agent.log`)
const agentLog = createWriteStream(agentLogPath)

const agent = await startAgentProcess({
  nodeArgs: agentNodeArgs,
  ...(agentCli && { cli: agentCli }),
  env: { OOMWATCH_MATCH: tag, OOMWATCH_JOURNAL_DIR: journalDir },
  log: agentLog,
})
let stopping = false // from the SIGTERM on, closes are expected
const agentExit = agent.exited.then(result => ({ ...result, at: performance.now() }))
let agentGoneEarly
agentExit.then(result => {
  if (!stopping) {
    agentGoneEarly = result
    log(`${clock()} the agent EXITED during the run: ${JSON.stringify(result)}`)
  }
})
log(`${clock()} agent pid ${agent.pid} on port ${agent.port}; its log: ${agentLogPath}`)
const url = path => `ws://127.0.0.1:${agent.port}${path}`

// ---------- healthy clients ----------
/** @type {Map<number, object>} leak by pid */
const leaksByPid = new Map()
const healthy = []

function onLiveEvent(event, receivedAt) {
  const leak = leaksByPid.get(event.pid)
  if (!leak) return
  if (event.type === 'incident' && !leak.incident) {
    // Checked the moment the stack arrives: proof that it came before the kill.
    leak.incident = {
      receivedAt,
      alive: isAlive(event.pid),
      state: procState(event.pid),
      reason: event.reason,
      fraction: event.memory?.fractionOfLimit,
      named: event.threads?.some(thread => thread.frames?.some(frame => frame.function === 'fd_table_from_limit')) ?? false,
      pyspyMs: event.capture?.pyspyMs,
      error: event.capture?.error?.code,
    }
  }
  if (event.type === 'exit' && !leak.exitEvent) leak.exitEvent = { receivedAt, oomKilled: event.oomKilled }
}

function healthyClient(index) {
  const client = { index, hello: undefined, last: undefined, events: 0, gaps: [], other: 0, closed: undefined, errors: [] }
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url('/'))
    client.ws = ws
    ws.on('message', data => {
      const receivedAt = performance.now()
      const event = JSON.parse(String(data))
      if (event.type === 'hello') {
        if (client.hello) client.gaps.push(`a second hello at seq ${event.seq}`)
        client.hello = event
        client.last = event.seq
        return
      }
      // Per-client frames take no seq (error: none sent to a client that sends nothing; memory: not asked for).
      if (event.type === 'error' || event.type === 'memory') {
        client.other++
        return
      }
      if (event.seq !== client.last + 1) client.gaps.push(`after ${client.last}: ${event.seq} (${event.type})`)
      client.last = event.seq
      client.events++
      onLiveEvent(event, receivedAt)
    })
    ws.once('open', () => resolve(client))
    ws.on('error', error => {
      client.errors.push(error.message)
      reject(error)
    })
    ws.on('close', (code, reason) => {
      client.closed = { code, reason: String(reason), during: !stopping }
      if (!stopping) log(`${clock()} healthy client ${index} CLOSED during the run: ${code} ${reason}`)
    })
  })
}

for (let i = 0; i < CLIENTS; i++) healthy.push(await healthyClient(i))
log(`${clock()} ${CLIENTS} healthy clients connected`)

// ---------- idle processes ----------
const idleCgroup = makeCgroup(`oomwatch-soak-${Date.now()}-idle`, 4 * 2 ** 30)
const idle = await spawnIdlePythons(IDLE, idleCgroup, daemon)
log(`${clock()} ${IDLE} idle Python processes up`)
const reference = healthy[0]
for (const until = performance.now() + 30_000; performance.now() < until && reference.events < IDLE;) await sleep(200)
log(`${clock()} the reference client has ${reference.events} events (${IDLE} processes expected)`)

// ---------- hostile clients ----------
const tally = {
  flood: { bursts: 0, connections: 0, outcomes: {}, livezMs: [] },
  replay: { started: 0, refused: 0, hellos: 0, events: 0, gaps: 0, cuts: {}, closes: {} },
  garbage: { started: 0, refused: 0, errorFrames: 0, closes: {} },
  errors: {},
}
const bump = (map, key) => (map[key] = (map[key] ?? 0) + 1)
const hostileSockets = new Set()

const FLOOD_KINDS = [
  ['partial', 0.6],
  ['silent', 0.2],
  ['foreign-host', 0.1],
  ['livez', 0.1],
]

/** One connection of a flood: what it sends, and what came back (a status, a close without answer, or still open). */
function floodConnection(kind) {
  const socket = tcpConnect({ host: '127.0.0.1', port: agent.port })
  hostileSockets.add(socket)
  tally.flood.connections++
  const started = performance.now()
  let outcome
  let trickle
  const settle = what => {
    if (outcome) return
    outcome = what
    bump(tally.flood.outcomes, `${kind}: ${what}`)
  }
  socket.on('error', error => bump(tally.errors, `flood ${error.code ?? error.message}`))
  let head = ''
  socket.on('data', chunk => {
    if (outcome) return
    head += chunk.toString('latin1')
    const status = /^HTTP\/1\.1 (\d{3})/.exec(head)
    if (status) {
      settle(status[1])
      if (kind === 'livez' && status[1] === '200') tally.flood.livezMs.push(performance.now() - started)
      if (kind === 'ws-idle') socket.pause() // a WebSocket client that never reads
    }
  })
  socket.on('close', () => {
    clearInterval(trickle)
    hostileSockets.delete(socket)
    settle(socket.closedByUs ? 'open at our close' : 'closed unanswered')
  })
  socket.on('connect', () => {
    switch (kind) {
      case 'partial':
        socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${agent.port}\r\nUpgrade: websocket\r\n`)
        trickle = setInterval(() => socket.writable && socket.write(`X-Slow-${Math.floor(Math.random() * 1e6)}: 1\r\n`), 1000)
        break
      case 'silent':
        break
      case 'foreign-host':
        socket.write(`GET /metrics HTTP/1.1\r\nHost: rebind.example:${agent.port}\r\nConnection: close\r\n\r\n`)
        break
      case 'livez':
        socket.write(`GET /livez HTTP/1.1\r\nHost: 127.0.0.1:${agent.port}\r\nConnection: close\r\n\r\n`)
        break
      case 'ws-idle':
        socket.write(
          `GET / HTTP/1.1\r\nHost: 127.0.0.1:${agent.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        )
        break
    }
  })
  return socket
}

async function floodBurst() {
  tally.flood.bursts++
  const sockets = []
  const kinds = []
  for (const [kind, share] of FLOOD_KINDS) for (let i = 0; i < Math.round(share * FLOOD.connections); i++) kinds.push(kind)
  for (let i = 0; i < FLOOD.wsIdle; i++) kinds.push('ws-idle')
  // Shuffled, so that each kind meets the cap at every stage of the burst.
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[kinds[i], kinds[j]] = [kinds[j], kinds[i]]
  }
  for (let i = 0; i < kinds.length && !stoppingHostiles; i++) {
    sockets.push(floodConnection(kinds[i]))
    if (i % 50 === 49) await sleep(50)
  }
  await sleepUnlessStopping(FLOOD.hold)
  for (const socket of sockets) {
    socket.closedByUs = true
    socket.destroy()
  }
}

/** A client that replays from 0 and goes away in the middle: terminate, close, or stop reading then terminate. */
function replayCutter(n) {
  tally.replay.started++
  const mode = ['terminate', 'close', 'stop-reading'][n % 3]
  return new Promise(resolve => {
    const ws = new WebSocket(url('/?since=0'))
    let hello
    let cutAt = Infinity
    let received = 0
    let last
    let done = false
    const failsafe = setTimeout(() => ws.terminate(), 15_000)
    const cut = () => {
      if (done) return
      done = true
      bump(tally.replay.cuts, mode)
      if (mode === 'terminate') ws.terminate()
      else if (mode === 'close') ws.close(1000, 'bye')
      else {
        ws._socket?.pause()
        setTimeout(() => ws.terminate(), 3000)
      }
    }
    ws.on('unexpected-response', (_req, res) => {
      tally.replay.refused++
      bump(tally.replay.closes, `refused ${res.statusCode}`)
      res.resume()
      ws.terminate()
    })
    ws.on('message', data => {
      if (done) return
      const event = JSON.parse(String(data))
      if (event.type === 'hello') {
        hello = event
        tally.replay.hellos++
        last = (event.replay?.since ?? 0) + (event.replay?.missed ?? 0)
        // Somewhere in the replay (its page), never at its end.
        cutAt = Math.floor(Math.random() * Math.max(1, event.replay?.count ?? 1))
        if (cutAt === 0) cut()
        return
      }
      if (event.type === 'error' || event.type === 'memory') return
      if (last !== undefined && event.seq !== last + 1) tally.replay.gaps++
      last = event.seq
      received++
      tally.replay.events++
      if (received >= cutAt) cut()
    })
    ws.on('error', error => bump(tally.errors, `replay ${error.code ?? error.message}`))
    ws.on('close', code => {
      clearTimeout(failsafe)
      if (hello) bump(tally.replay.closes, String(code))
      resolve()
    })
  })
}

/** A client that sends what the protocol does not define. */
function garbageClient(n) {
  tally.garbage.started++
  const mode = ['text', 'binary', 'oversized', 'not-a-frame', 'json'][n % 5]
  return new Promise(resolve => {
    const ws = new WebSocket(url('/'))
    const failsafe = setTimeout(() => ws.terminate(), 8000)
    ws.on('unexpected-response', (_req, res) => {
      tally.garbage.refused++
      bump(tally.garbage.closes, `${mode}: refused ${res.statusCode}`)
      res.resume()
      ws.terminate()
    })
    ws.on('open', async () => {
      try {
        switch (mode) {
          case 'text':
            for (let i = 0; i < 8; i++) ws.send(randomBytes(200).toString('latin1'))
            break
          case 'binary':
            for (let i = 0; i < 8; i++) ws.send(randomBytes(300), { binary: true })
            break
          case 'oversized':
            ws.send('x'.repeat(64 * 1024))
            break
          case 'not-a-frame':
            // Bytes on the upgraded socket that no WebSocket parser takes (reserved opcode, no mask).
            ws._socket.write(Buffer.concat([Buffer.from([0x83, 0x7e, 0xff, 0xff]), randomBytes(256)]))
            break
          case 'json':
            for (let i = 0; i < 8; i++) ws.send(JSON.stringify({ type: 'subscribe', since: 0, pid: i, token: 'x'.repeat(i * 100) }))
            break
        }
      } catch (error) {
        bump(tally.errors, `garbage send ${error.code ?? error.message}`)
      }
    })
    ws.on('message', data => {
      try {
        if (JSON.parse(String(data)).type === 'error') tally.garbage.errorFrames++
      } catch {
        // not JSON
      }
    })
    ws.on('error', error => bump(tally.errors, `garbage ${error.code ?? error.message}`))
    ws.on('close', code => {
      clearTimeout(failsafe)
      bump(tally.garbage.closes, `${mode}: ${code}`)
      resolve()
    })
  })
}

let stoppingHostiles = false
let wakeHostiles
const hostileStop = new Promise(resolve => (wakeHostiles = resolve))
const sleepUnlessStopping = ms => Promise.race([sleep(ms), hostileStop])

/** Runs `start(n)` every `everyMs` with at most `atOnce` running, until the hostiles stop. */
async function repeat(everyMs, atOnce, start) {
  const running = new Set()
  for (let n = 0; !stoppingHostiles; n++) {
    if (running.size < atOnce) {
      const run = start(n).catch(error => bump(tally.errors, error.message))
      running.add(run)
      run.finally(() => running.delete(run))
    }
    await sleepUnlessStopping(everyMs)
  }
  await Promise.all(running)
}

const hostiles = [
  repeat(FLOOD.every, 1, floodBurst),
  repeat(REPLAY_EVERY_MS, HOSTILE_AT_ONCE, replayCutter),
  repeat(GARBAGE_EVERY_MS, HOSTILE_AT_ONCE, garbageClient),
]
const startTicks = usageOf(agent.pid)
const soakStart = performance.now()
log(`${clock()} hostile clients started; the soak runs ${MINUTES} min`)

// ---------- leaks, in waves ----------
const leaks = []
const leakCgroups = []

function startLeak(index, wave) {
  const cgroup = makeCgroup(`oomwatch-soak-${Date.now()}-leak-${index}`, LEAK_LIMIT)
  leakCgroups.push(cgroup)
  const [bin, ...argv] = cgroup.wrap([PYTHON, daemon, ...LEAK_ARGS, '--label', `leak-${index}`])
  const killsBefore = cgroup.oomKills()
  const spawnedAt = performance.now()
  const child = spawn(bin, argv, { stdio: 'ignore' })
  const leak = { index, wave, pid: child.pid, spawnedAt }
  leaksByPid.set(child.pid, leak)
  leaks.push(leak)
  const exited = new Promise(resolve =>
    child.once('exit', (code, signal) => resolve({ diedAt: performance.now(), death: signal ?? `exit ${code}` })),
  )
  leak.done = (async () => {
    const killer = setTimeout(() => child.kill('SIGKILL'), 180_000)
    Object.assign(leak, await exited)
    clearTimeout(killer)
    // The agent's exit event reads the cgroup's oom_kill count: remove the cgroup only after it.
    for (const until = performance.now() + 15_000; !leak.exitEvent && performance.now() < until;) await sleep(100)
    leak.oomKilled = cgroup.oomKills() > killsBefore
    await cgroup.remove()
    const inc = leak.incident
    log(
      `${clock()} leak ${index} (wave ${wave}, pid ${leak.pid}): ${leak.oomKilled ? 'OOM-killed' : `NOT OOM-killed (${leak.death})`} ` +
        `${fmt((leak.diedAt - spawnedAt) / 1000)} s after spawn; incident ${inc ? `${fmt(leak.diedAt - inc.receivedAt, 0)} ms before death, ${inc.alive ? 'alive' : `NOT alive (${inc.state ?? 'gone'})`} at receipt, ${inc.reason} at ${fmt((inc.fraction ?? NaN) * 100, 0)}%${inc.named ? '' : ', no fd_table_from_limit'}` : 'NONE'}; ` +
        `exit event ${leak.exitEvent ? `oomKilled ${leak.exitEvent.oomKilled}` : 'NONE'}`,
    )
  })()
}

const perWave = Array.from({ length: WAVES }, (_, w) => Math.floor(LEAKS / WAVES) + (w < LEAKS % WAVES ? 1 : 0))
const leakWindow = Math.max(0, DURATION_MS - FIRST_WAVE_MS - LAST_WAVE_BEFORE_END_MS)
const waveAt = w => FIRST_WAVE_MS + (WAVES === 1 ? 0 : (w * leakWindow) / (WAVES - 1))
const waves = (async () => {
  let index = 0
  for (let w = 0; w < WAVES; w++) {
    const wait = soakStart + waveAt(w) - performance.now()
    if (wait > 0) await sleep(wait)
    log(`${clock()} wave ${w + 1}/${WAVES}: ${perWave[w]} leaks`)
    for (let i = 0; i < perWave[w]; i++) {
      startLeak(index++, w + 1)
      if (i < perWave[w] - 1) await sleep(1000)
    }
  }
})()

// ---------- progress ----------
const progress = setInterval(() => {
  try {
    const usage = usageOf(agent.pid)
    const lasts = healthy.map(client => client.last)
    log(
      `${clock()} agent RSS ${fmt(usage.rssBytes / MiB)} MiB (peak ${fmt(usage.hwmBytes / MiB)}); ` +
        `leaks caught ${leaks.filter(leak => leak.incident?.alive).length}/${leaks.length} started; ` +
        `healthy seq ${Math.min(...lasts)}..${Math.max(...lasts)}, gaps ${healthy.reduce((n, c) => n + c.gaps.length, 0)}; ` +
        `flood ${tally.flood.connections} conns, replays ${tally.replay.started} (${tally.replay.refused} refused), garbage ${tally.garbage.started} (${tally.garbage.refused} refused)`,
    )
  } catch (error) {
    log(`${clock()} progress: ${error.message}`)
  }
}, 30_000)

await sleep(Math.max(0, soakStart + DURATION_MS - performance.now()))
await waves
log(`${clock()} duration reached; waiting for the last leaks to die`)
await Promise.all(leaks.map(leak => leak.done))
const soakEnd = performance.now()
stoppingHostiles = true
wakeHostiles()
for (const socket of hostileSockets) {
  socket.closedByUs = true
  socket.destroy()
}
await Promise.all(hostiles)
clearInterval(progress)
const endTicks = usageOf(agent.pid)
log(`${clock()} hostile clients stopped; waiting for the healthy clients to catch up`)

// Every healthy client up to the same last seq (events still on their way, if any).
let finalSeq = Math.max(...healthy.map(client => client.last))
for (const until = performance.now() + 30_000; performance.now() < until;) {
  await sleep(500)
  const now = Math.max(...healthy.map(client => client.last))
  if (now === finalSeq && healthy.every(client => client.last === finalSeq)) break
  finalSeq = now
}

// ---------- the agent's peak memory, and its stop ----------
const { hwmBytes, rssBytes } = usageOf(agent.pid)
stopping = true
const termAt = performance.now()
let exit
if (agentGoneEarly) exit = { ...agentGoneEarly, ms: NaN, note: 'exited during the run' }
else {
  process.kill(agent.pid, 'SIGTERM')
  const result = await Promise.race([agentExit, sleep(STOP_WITHIN_MS).then(() => undefined)])
  if (result) exit = { ...result, ms: result.at - termAt }
  else {
    process.kill(agent.pid, 'SIGKILL')
    exit = { ...(await agentExit), ms: NaN, note: `still running ${STOP_WITHIN_MS / 1000} s after SIGTERM: killed` }
  }
}
await sleep(200)
log(`${clock()} agent stopped: ${JSON.stringify(exit)}`)
for (const client of healthy) client.ws.terminate()
await idle.stop()
await idleCgroup.remove()
await new Promise(resolve => agentLog.end(resolve))
rmSync(work, { recursive: true, force: true })

// ---------- checks ----------
const caught = leaks.filter(leak => leak.incident?.alive && leak.incident.receivedAt < leak.diedAt)
const oomExits = leaks.filter(leak => leak.exitEvent?.oomKilled)
const bothCaught = leaks.filter(leak => caught.includes(leak) && oomExits.includes(leak))
const margins = caught.map(leak => leak.diedAt - leak.incident.receivedAt)
const lived = leaks.filter(leak => leak.diedAt).map(leak => leak.diedAt - leak.spawnedAt)
const kernelKills = leaks.filter(leak => leak.oomKilled).length
const named = leaks.filter(leak => leak.incident?.named).length

const firstSeqs = healthy.map(client => client.hello?.seq)
const clean = healthy.filter(client => client.gaps.length === 0 && !client.closed?.during && client.last === finalSeq && client.hello)
const gapLines = healthy
  .filter(client => !clean.includes(client))
  .map(
    client =>
      `client ${client.index}: ${client.gaps.length} gap(s)${client.gaps.length ? ` (${client.gaps.slice(0, 3).join('; ')})` : ''}` +
      `${client.closed?.during ? `, closed during the run (${client.closed.code} ${client.closed.reason})` : ''}` +
      `${client.last !== finalSeq ? `, last seq ${client.last} of ${finalSeq}` : ''}`,
  )
const eventsPerClient = healthy.map(client => client.events)

const missedLeaks = leaks
  .filter(leak => !bothCaught.includes(leak))
  .map(leak => {
    const inc = leak.incident
    const why = []
    if (!inc) why.push('no incident')
    else if (!inc.alive) why.push(`incident arrived with the process ${inc.state ?? 'gone'}`)
    else if (!(inc.receivedAt < leak.diedAt)) why.push('incident after death')
    if (!leak.exitEvent) why.push('no exit event')
    else if (!leak.exitEvent.oomKilled) why.push('exit event without oomKilled')
    if (!leak.oomKilled) why.push(`the kernel did not OOM-kill it (${leak.death})`)
    return `leak ${leak.index} (pid ${leak.pid}, wave ${leak.wave}): ${why.join(', ')}`
  })

const checks = [
  {
    ok: leaks.length === LEAKS && bothCaught.length === LEAKS,
    line: `every leak caught before its kill: ${caught.length}/${LEAKS} incidents received by a healthy client while the process was alive, ${oomExits.length}/${LEAKS} OOM-kill exits${missedLeaks.length ? ` (${missedLeaks.join('; ')})` : ''}`,
  },
  {
    ok: clean.length === CLIENTS,
    line: `no seq gap for any healthy client: ${clean.length}/${CLIENTS} got every seq from hello.seq+1 to ${finalSeq} in order, none closed during the run${gapLines.length ? ` (${gapLines.slice(0, 5).join('; ')}${gapLines.length > 5 ? `; ${gapLines.length - 5} more` : ''})` : ''}`,
  },
  {
    ok: hwmBytes > 0 && hwmBytes < RSS_BOUND,
    line: `agent peak RSS (VmHWM) ${fmt(hwmBytes / MiB)} MiB < ${RSS_BOUND / MiB} MiB`,
  },
  {
    ok: exit.code === 0 && !exit.note,
    line: `agent exits 0 on SIGTERM: ${exit.note ?? `exit code ${exit.code}${exit.signal ? `, signal ${exit.signal}` : ''} after ${fmt(exit.ms, 0)} ms`}`,
  },
]

const seconds = (soakEnd - soakStart) / 1000
const cpu = (ticks, key) => ((ticks[key] - startTicks[key]) / CLK_TCK / seconds) * 100
const outcomes = Object.entries(tally.flood.outcomes)
  .sort(([a], [b]) => a.localeCompare(b))
  .map(([k, v]) => `${k} ×${v}`)
  .join(', ')
const closes = map =>
  Object.entries(map)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k} ×${v}`)
    .join(', ') || '—'
const stats = (values, digits = 0) =>
  values.length ? `${fmt(median(values), digits)} (${fmt(Math.min(...values), digits)}–${fmt(Math.max(...values), digits)})` : '—'

console.log(`## Soak: ${MINUTES} min\n`)
console.log(`- machine: ${machineLine}${isolated ? '; in its own PID namespace' : ''}`)
console.log(`- commit: ${commitLine}`)
console.log(
  `- load: ${IDLE} idle Python processes, ${CLIENTS} healthy clients (seq ${Math.min(...firstSeqs)}+1 … ${finalSeq}), ${LEAKS} leaks (${LEAK_ARGS.join(' ')}, 256 MiB each) in ${WAVES} waves at ${Array.from({ length: WAVES }, (_, w) => `${fmt(waveAt(w) / 1000, 0)} s`).join(', ')}`,
)
console.log(`- agent log: ${agentLogPath}\n`)
console.log(`### Checks\n`)
for (const check of checks) console.log(`- ${check.ok ? 'PASS' : 'FAIL'}: ${check.line}`)
console.log(`\n### Summary\n`)
console.log(
  '| soaked | idle processes | healthy clients without gap | events per healthy client | leaks caught before kill | OOM-kill exits | kernel OOM kills | incidents naming the leak | margin before kill, median (min–max) ms | leak lifetime, median (min–max) s | agent peak RSS (MiB) | agent RSS at end (MiB) | agent CPU (% of a core; with py-spy) | SIGTERM |',
)
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
console.log(
  `| ${fmt(seconds / 60, 1)} min | ${IDLE} | ${clean.length}/${CLIENTS} | ${Math.min(...eventsPerClient)}${Math.min(...eventsPerClient) === Math.max(...eventsPerClient) ? '' : `–${Math.max(...eventsPerClient)}`} | ${caught.length}/${LEAKS} | ${oomExits.length}/${LEAKS} | ${kernelKills}/${LEAKS} | ${named}/${LEAKS} | ${stats(margins)} | ${stats(
    lived.map(ms => ms / 1000),
    1,
  )} | ${fmt(hwmBytes / MiB)} | ${fmt(rssBytes / MiB)} | ${fmt(cpu(endTicks, 'ownTicks'))}; ${fmt(cpu(endTicks, 'ticks'))} | exit ${exit.code ?? exit.signal} in ${fmt(exit.ms, 0)} ms |`,
)
console.log(`\n### Hostile clients\n`)
console.log('| kind | count | outcomes |')
console.log('| --- | --- | --- |')
console.log(
  `| flood | ${tally.flood.bursts} bursts, ${tally.flood.connections} connections | ${outcomes}; /livez answered in median (min–max) ${stats(tally.flood.livezMs)} ms |`,
)
console.log(
  `| replay from 0, cut mid-way | ${tally.replay.started} (${tally.replay.refused} refused) | cuts: ${closes(tally.replay.cuts)}; closes: ${closes(tally.replay.closes)}; ${tally.replay.events} events replayed, ${tally.replay.gaps} gaps |`,
)
console.log(
  `| garbage frames | ${tally.garbage.started} (${tally.garbage.refused} refused) | ${tally.garbage.errorFrames} error frames; closes: ${closes(tally.garbage.closes)} |`,
)
if (Object.keys(tally.errors).length) console.log(`\nClient-side errors: ${closes(tally.errors)}.`)
const failed = checks.filter(check => !check.ok).length
console.log(`\n${failed ? `${failed} of ${checks.length} checks FAILED.` : `All ${checks.length} checks passed.`}`)
process.exit(failed ? 1 : 0)
