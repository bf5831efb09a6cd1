import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { handle, latestTime, MAX_INCIDENTS, newState, span, WINDOW_MS } from '../../src/page/app/state.js'
import type { IncidentPayload, MemoryFrame, OomwatchEvent } from '../../src/protocol/events.js'

// The page's state, folded from a real session (test/fixtures/events/oom-session.jsonl).
const SESSION = readFileSync(fileURLToPath(new URL('../fixtures/events/oom-session.jsonl', import.meta.url)), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map(line => JSON.parse(line) as OomwatchEvent)
const INCIDENT = SESSION.find((e): e is IncidentPayload & OomwatchEvent => e.type === 'incident')!

const memory = (pid: number, points: [number, number][]): MemoryFrame => ({
  type: 'memory',
  seq: 0,
  ts: '',
  processes: [{ pid, limitBytes: 100, points }],
})

t.test('a session: the process, its risks, its incident, its flame graph, its OOM kill', async t => {
  const state = newState()
  for (const event of SESSION) handle(state, event)
  const pid = INCIDENT.pid
  t.equal(state.lastSeq, SESSION[SESSION.length - 1]!.seq, 'the last seq, for a reconnect')
  t.equal(state.processes.get(pid)?.gone, true, 'the process is gone')
  t.equal(state.exits.get(pid)?.oomKilled, true, 'OOM-killed')
  t.same([...state.risks.keys()], [`${pid} nofile-hard-huge`, `${pid} nofile-soft-huge`])
  t.same(
    state.incidents.map(i => i.id),
    [INCIDENT.id],
  )
  t.ok(state.flamegraphs.get(INCIDENT.id)?.url)
})

t.test('a hello after a reconnect: what it no longer lists is gone; a process seen again is back', async t => {
  const state = newState()
  const hello = SESSION[0]!
  const process = SESSION[1]!
  if (hello.type !== 'hello' || process.type !== 'process') throw new Error('the fixture starts with hello, process')
  handle(state, process)
  handle(state, { ...hello, watching: [] })
  t.equal(state.processes.get(process.pid)?.gone, true)
  handle(state, { ...hello, watching: [process] })
  t.equal(state.processes.get(process.pid)?.gone, false)
})

t.test('incidents: newest first, one per id, at most MAX_INCIDENTS', async t => {
  const state = newState()
  for (let i = 0; i < MAX_INCIDENTS + 3; i++) handle(state, { ...INCIDENT, id: `i${i}` })
  handle(state, { ...INCIDENT, id: 'i5' })
  t.equal(state.incidents.length, MAX_INCIDENTS)
  t.same(
    state.incidents.slice(0, 3).map(i => i.id),
    ['i5', 'i12', 'i11'],
  )
})

t.test('kills of processes oomwatch did not watch: newest first, one per seq, at most MAX_INCIDENTS', async t => {
  const state = newState()
  const kill = (seq: number): OomwatchEvent => ({
    type: 'oom-kill',
    kills: 1,
    cgroup: { version: 2, dir: '/sys/fs/cgroup' },
    limit: { bytes: 100, source: 'cgroup-v2' },
    survivors: [],
    summary: `kill ${seq}`,
    seq,
    ts: '',
  })
  for (let seq = 1; seq <= MAX_INCIDENTS + 2; seq++) handle(state, kill(seq))
  handle(state, kill(3))
  t.equal(state.unseenKills.length, MAX_INCIDENTS)
  t.same(
    state.unseenKills.slice(0, 3).map(k => k.summary),
    ['kill 3', `kill ${MAX_INCIDENTS + 2}`, `kill ${MAX_INCIDENTS + 1}`],
  )
  t.equal(state.lastSeq, 3)
})

t.test('memory frames: points kept for WINDOW_MS; memory frames carry no seq for a reconnect', async t => {
  const state = newState()
  handle(state, memory(1, [[1000, 10]]))
  handle(
    state,
    memory(1, [
      [1000 + WINDOW_MS, 20],
      [1001 + WINDOW_MS, 30],
    ]),
  )
  t.same(
    state.memory.get(1)?.points,
    [
      [1000 + WINDOW_MS, 20],
      [1001 + WINDOW_MS, 30],
    ],
    'the oldest point fell out of the window',
  )
  t.equal(state.lastSeq, null)
  t.equal(latestTime(state), 1001 + WINDOW_MS)
  t.equal(span(state, latestTime(state)), 60_000, 'at least a minute')
  handle(state, memory(2, [[1001 + WINDOW_MS - 90_000, 5]]))
  t.equal(span(state, latestTime(state)), 90_000, 'since the oldest point')
  t.ok(Math.abs(latestTime(newState()) - Date.now()) < 1000, 'no points: now')
})
