import { execFileSync, spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { FlamegraphRecorder, FlamegraphStore, flamegraphUrl } from '../../src/capture/flamegraph.js'
import { createLogger } from '../../src/log.js'
import { startAgent } from '../helpers/agent.js'
import { connect, type Received } from '../helpers/client.js'
import { fakePyspy } from '../helpers/fake-pyspy.js'
import { makeTestCgroup } from '../helpers/memory-cgroup.js'
import { LEAKY_DAEMON, PYTHON } from '../helpers/python.js'
import type { FlamegraphPayload, IncidentPayload, OomwatchEvent } from '../../src/protocol/events.js'
import type { CaptureError } from '../../src/protocol/values.js'

const LIMIT = 256 * 1024 * 1024
const SESSION = readFileSync(fileURLToPath(new URL('../fixtures/events/oom-session.jsonl', import.meta.url)), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map(line => JSON.parse(line) as OomwatchEvent)
const INCIDENT = SESSION.find((e): e is IncidentPayload & OomwatchEvent => e.type === 'incident')!

type Incident = IncidentPayload & Received
type Flamegraph = FlamegraphPayload & Received

/** The leaking daemon at ~40 MB/s in a 256 MiB cgroup: alive for a few seconds after its incident. */
function leak(t: Test, label: string) {
  const cgroup = makeTestCgroup(LIMIT)
  t.teardown(() => cgroup.remove())
  const [bin, ...args] = cgroup.wrap([
    PYTHON,
    LEAKY_DAEMON,
    '--entries',
    '10000000',
    '--rate',
    '40000000',
    '--delay',
    '1',
    '--label',
    label,
  ])
  return spawn(bin!, args, { stdio: 'ignore' })
}

t.test('a real leak: the incident, then a flame graph of it, served as SVG; the SVG sits next to the journal', async t => {
  const journal = t.testdir()
  const label = `flamegraph-journal-${process.pid}`
  const agent = await startAgent({
    OOMWATCH_JOURNAL_DIR: journal,
    OOMWATCH_FLAMEGRAPH_SECONDS: '2',
    OOMWATCH_MATCH: label,
    OOMWATCH_TOKEN: 'sesame',
  })
  t.teardown(() => agent.stop())
  const client = await connect(agent.port, { headers: { authorization: 'Bearer sesame' } })
  t.teardown(() => client.close())
  const pid = leak(t, label).pid!
  const incident = (await client.waitFor(e => e.type === 'incident' && e.pid === pid)) as Incident
  const flamegraph = (await client.waitFor(e => e.type === 'flamegraph' && e.incidentId === incident.id)) as Flamegraph
  t.notOk(flamegraph.error, 'recorded')
  t.ok(flamegraph.seq > incident.seq, 'after the incident was out: it never delays the dump')
  t.equal(flamegraph.url, `/incidents/${incident.id}/flamegraph.svg`)
  t.ok(
    (flamegraph.durationMs ?? 0) > 0 && (flamegraph.durationMs ?? 0) < 2000 + 10_000,
    'bounded by the configured seconds (and py-spy writing it)',
  )
  const onDisk = join(journal, 'flamegraphs', `${incident.id}.svg`)
  t.ok(existsSync(onDisk), 'written next to the journal')
  t.same(readdirSync(join(journal, 'flamegraphs')), [`${incident.id}.svg`], 'and nothing else (no partial file)')

  const url = `http://127.0.0.1:${agent.port}${flamegraph.url}`
  t.equal((await fetch(url)).status, 401, 'with a token set, the SVG needs it too')
  for (const res of [await fetch(url, { headers: { authorization: 'Bearer sesame' } }), await fetch(`${url}?token=sesame`)]) {
    t.equal(res.status, 200)
    t.equal(res.headers.get('content-type'), 'image/svg+xml', 'served as SVG')
    t.match(res.headers.get('content-security-policy'), /default-src 'none'/, 'its script can load nothing')
    const svg = await res.text()
    t.match(svg, /^<\?xml[^>]*>.*<svg /s, 'an SVG document')
    t.match(svg, /fd_table_from_limit/, 'whose frames include the leaking function')
    t.equal(svg, readFileSync(onDisk, 'utf8'), 'the file on disk')
  }
  const missing = await fetch(`http://127.0.0.1:${agent.port}/incidents/1-deadbeef/flamegraph.svg?token=sesame`)
  t.equal(missing.status, 404, 'an incident without one: 404')
  t.equal(
    (await fetch(`http://127.0.0.1:${agent.port}/incidents/..%2F..%2Fetc%2Fpasswd/flamegraph.svg?token=sesame`)).status,
    404,
    'a path is not an id',
  )
})

t.test('without a journal: a temporary directory of the agent, removed at stop', async t => {
  const label = `flamegraph-temp-${process.pid}`
  const agent = await startAgent({ OOMWATCH_FLAMEGRAPH_SECONDS: '1', OOMWATCH_MATCH: label })
  t.teardown(() => agent.stop())
  const client = await connect(agent.port)
  t.teardown(() => client.close())
  const pid = leak(t, label).pid!
  const incident = (await client.waitFor(e => e.type === 'incident' && e.pid === pid)) as Incident
  const flamegraph = (await client.waitFor(e => e.type === 'flamegraph' && e.incidentId === incident.id)) as Flamegraph
  t.notOk(flamegraph.error)
  const dirs = readdirSync(tmpdir())
    .filter(name => name.startsWith('oomwatch-flamegraphs-'))
    .map(name => join(tmpdir(), name))
    .filter(dir => existsSync(join(dir, `${incident.id}.svg`)))
  t.equal(dirs.length, 1, 'the SVG is in a temporary directory')
  const res = await fetch(`http://127.0.0.1:${agent.port}${flamegraph.url}`)
  t.equal(res.headers.get('content-type'), 'image/svg+xml')
  await agent.stop()
  t.notOk(existsSync(dirs[0]!), 'which stop() removes')
})

t.test('OOMWATCH_FLAMEGRAPH=false: the incident and the OOM kill, no flame graph', async t => {
  const label = `flamegraph-off-${process.pid}`
  const agent = await startAgent({ OOMWATCH_FLAMEGRAPH: 'false', OOMWATCH_MATCH: label })
  t.teardown(() => agent.stop())
  const client = await connect(agent.port)
  t.teardown(() => client.close())
  const pid = leak(t, label).pid!
  const incident = (await client.waitFor(e => e.type === 'incident' && e.pid === pid)) as Incident
  await client.waitFor(e => e.type === 'exit' && e.pid === pid, 60_000)
  t.notOk(
    client.events.some(e => e.type === 'flamegraph'),
    'no flamegraph event',
  )
  t.equal((await fetch(`http://127.0.0.1:${agent.port}/incidents/${incident.id}/flamegraph.svg`)).status, 404)
})

/**
 * A recorder with a stand-in py-spy whose `record` runs `script` ($9 is --output), fed
 * incidents by hand; its events are kept.
 */
function recorder(t: Test, script: string, options: { maxKept?: number; alive?: boolean; journalDir?: string; dir?: string } = {}) {
  // t.testdir() empties the directory: made once per test, here or by the caller.
  const dir = options.dir ?? t.testdir()
  const bin = fakePyspy(dir, 'py-spy', script)
  const store = new FlamegraphStore(options.journalDir ?? join(dir, 'journal'))
  const events: FlamegraphPayload[] = []
  /** What isAlive was asked: pid and start time. */
  const asked: [number, number | undefined][] = []
  const waiters = new Set<() => void>()
  const rec = new FlamegraphRecorder({
    bin,
    seconds: 1,
    maxKept: options.maxKept ?? 20,
    store,
    isAlive: (pid, startTime) => {
      asked.push([pid, startTime])
      return options.alive ?? true
    },
    emit: payload => {
      events.push(payload)
      for (const wake of waiters) wake()
    },
    logger: createLogger('silent'),
  })
  t.teardown(() => rec.stop())
  const next = (count: number) =>
    new Promise<void>(resolve => {
      const check = () => events.length >= count && (waiters.delete(check), resolve())
      waiters.add(check)
      check()
    })
  const incident = (id: string): IncidentPayload & OomwatchEvent => ({ ...INCIDENT, id })
  return { rec, store, events, next, incident, dir, asked }
}

t.test('FlamegraphRecorder with a stand-in py-spy', async t => {
  t.test('records, keeps at most maxKept, and serves only ids', async t => {
    const { rec, store, events, incident } = recorder(t, 'umask 022; echo "<svg>$3</svg>" > "$9"', { maxKept: 2 })
    for (const [i, id] of ['1-aaaaaaaa', '1-bbbbbbbb', '1-cccccccc'].entries()) {
      await rec.afterIncident(incident(id))
      t.equal(events.length, i + 1, 'the event is out when the step resolves')
    }
    t.same(
      events.map(e => [e.incidentId, e.url]),
      ['1-aaaaaaaa', '1-bbbbbbbb', '1-cccccccc'].map(id => [id, flamegraphUrl(id)]),
    )
    t.equal(store.file('1-aaaaaaaa'), undefined, 'the oldest is pruned')
    t.equal(readFileSync(store.file('1-cccccccc')!, 'utf8'), `<svg>${INCIDENT.pid}</svg>\n`, 'py-spy was given the pid')
    t.equal(store.file('../1-cccccccc'), undefined, 'no path leaves the directory')
    t.equal(statSync(store.file('1-cccccccc')!).mode & 0o777, 0o600, 'the SVG is 0600, though py-spy wrote it 0644')
    t.equal(statSync(store.dir()).mode & 0o777, 0o700, 'its directory 0700')
    const failed: CaptureError = { code: 'PTRACE_DENIED', message: '', remedy: '' }
    await rec.afterIncident({ ...incident('1-dddddddd'), capture: { triggerToStackMs: 1, pyspyMs: 1, error: failed } })
    t.equal(events.length, 3, 'nothing for an incident without a stack')
    await rec.stop()
    await rec.afterIncident(incident('1-eeeeeeee'))
    t.equal(events.length, 3, 'nor after stop()')
  })

  t.test('one at a time: a second incident during a recording gets FLAMEGRAPH_BUSY', async t => {
    const dir = t.testdir()
    const gate = join(dir, 'gate')
    execFileSync('mkfifo', [gate])
    const { rec, events, next, incident, store } = recorder(t, `read line < ${gate}; echo "<svg/>" > "$9"`, { dir })
    void rec.afterIncident(incident('2-aaaaaaaa'))
    void rec.afterIncident(incident('2-bbbbbbbb'))
    await next(1)
    t.match(events[0], { incidentId: '2-bbbbbbbb', error: { code: 'FLAMEGRAPH_BUSY' } })
    writeFileSync(gate, 'go\n')
    await next(2)
    t.match(events[1], { incidentId: '2-aaaaaaaa', url: flamegraphUrl('2-aaaaaaaa') })
    t.ok(store.file('2-aaaaaaaa'))
  })

  t.test("py-spy's failure is the event's error, with its code; no partial file stays", async t => {
    const { rec, events, next, incident, store } = recorder(
      t,
      'echo partial > "$9"; echo "Error: Permission denied (os error 13)" >&2; exit 1',
    )
    void rec.afterIncident(incident('3-aaaaaaaa'))
    await next(1)
    t.match(events[0], { incidentId: '3-aaaaaaaa', pid: INCIDENT.pid, error: { code: 'PTRACE_DENIED', message: /Permission denied/ } })
    t.notOk(events[0]!.url)
    t.same(readdirSync(store.dir()), [], 'the .part file is removed')
  })

  t.test('exit 0 without a file is a failure too', async t => {
    const { rec, events, next, incident } = recorder(t, 'exit 0')
    void rec.afterIncident(incident('4-aaaaaaaa'))
    await next(1)
    t.match(events[0], { error: { code: 'PYSPY_FAILED' } })
  })

  t.test('a process already gone: FLAMEGRAPH_TARGET_GONE, py-spy not run', async t => {
    const { rec, events, incident, dir, asked } = recorder(t, 'touch "$9.ran"', { alive: false })
    await rec.afterIncident(incident('5-aaaaaaaa'), 777)
    t.match(events[0], { error: { code: 'FLAMEGRAPH_TARGET_GONE' } })
    t.strictSame(asked, [[INCIDENT.pid, 777]], 'asked about that process: its pid and start time')
    t.notOk(existsSync(join(dir, 'journal')), 'not even the directory was made')
  })

  t.test('nowhere to write: FLAMEGRAPH_NO_DIR, with the remedy', async t => {
    const dir = t.testdir()
    const file = join(dir, 'not-a-dir')
    writeFileSync(file, '')
    const { rec, events, next, incident } = recorder(t, 'exit 0', { journalDir: file, dir })
    void rec.afterIncident(incident('6-aaaaaaaa'))
    await next(1)
    t.match(events[0], { error: { code: 'FLAMEGRAPH_NO_DIR', message: /ENOTDIR/, remedy: /OOMWATCH_JOURNAL_DIR/ } })
  })

  t.test('stop() kills a recording under way: no event, no partial file', async t => {
    const dir = t.testdir()
    const gate = join(dir, 'gate')
    execFileSync('mkfifo', [gate])
    const started = join(dir, 'started')
    const { rec, events, incident, store } = recorder(t, `echo partial > "$9"; touch ${started}; read line < ${gate}`, { dir })
    void rec.afterIncident(incident('7-aaaaaaaa'))
    while (!existsSync(started)) await new Promise(resolve => setTimeout(resolve, 10))
    await rec.stop()
    t.same(events, [], 'no event')
    t.same(readdirSync(store.dir()), [], 'no partial file')
  })
})
