import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout } from 'node:timers/promises'
import t from 'tap'
import { startAgent } from '../helpers/agent.js'
import { fillJournal, segmentName, syntheticProcess } from '../helpers/journal-fill.js'
import { connect, refusal, type Received, type TestClient } from '../helpers/client.js'
import { makeTestCgroup } from '../helpers/memory-cgroup.js'
import { deathOf } from '../helpers/process.js'
import { LEAKY_DAEMON, PYTHON } from '../helpers/python.js'
import type { EventHub } from '../../src/hub.js'
import { MAX_REPLAY } from '../../src/journal/journal.js'
import type { IncidentPayload } from '../../src/protocol/events.js'

/**
 * A real leak (~40 MB/s: replay is under test, not the race) in a 256 MiB cgroup, with nobody
 * watching the stream; resolves once it died and the agent emitted its exit. The exit is awaited
 * from the spawn on: the agent may see the death before the test does.
 */
async function leakUntilKilled(hub: EventHub, teardown: (fn: () => unknown) => void): Promise<number> {
  const cgroup = makeTestCgroup(256 * 1024 * 1024)
  teardown(() => cgroup.remove())
  const [bin, ...args] = cgroup.wrap([PYTHON, LEAKY_DAEMON, '--entries', '10000000', '--rate', '40000000', '--delay', '0.5'])
  const child = spawn(bin!, args, { stdio: 'ignore' })
  const pid = child.pid!
  const exited = new Promise<void>(resolve => {
    const off = hub.subscribe(event => event.type === 'exit' && event.pid === pid && (off(), resolve()))
  })
  await deathOf(pid)
  await exited
  return pid
}

/** The seqs a client received besides its hello, and what they must be: since+1, since+2, ... */
function seqsAfter(client: TestClient, since: number): [number[], number[]] {
  const seqs = client.events.filter(e => e.type !== 'hello' && e.type !== 'error').map(e => e.seq)
  return [seqs, seqs.map((_, at) => since + 1 + at)]
}

t.test('an incident caught with no client connected is replayed with ?since', async t => {
  const agent = await startAgent()
  t.teardown(() => agent.stop())
  const before = agent.agent.hub.lastSeq
  // Until the exit is seen, still with nobody connected.
  const pid = await leakUntilKilled(agent.agent.hub, fn => t.teardown(fn))
  const client = await connect(agent.port, { query: `since=${before}` })
  t.teardown(() => client.close())
  const hello = await client.waitFor(e => e.type === 'hello')
  const incident = (await client.waitFor(e => e.type === 'incident' && e.pid === pid)) as IncidentPayload & Received
  t.equal(incident.culprit?.function, 'fd_table_from_limit', 'the replayed incident has its stack')
  t.ok(
    client.events.some(e => e.type === 'exit' && e.pid === pid && e.oomKilled),
    'and its OOM-kill exit',
  )
  t.match(hello.replay, { since: before, missed: 0 })
  t.equal(hello.replay?.count, hello.seq - before, 'every event since then is replayed')
  t.same(...seqsAfter(client, before), 'no gap, no duplicate')
})

t.test('after a restart the journal replays what the first agent caught, and seq goes on', async t => {
  const dir = t.testdir()
  const first = await startAgent({ OOMWATCH_JOURNAL_DIR: dir })
  const since = first.agent.hub.lastSeq
  const pid = await leakUntilKilled(first.agent.hub, fn => t.teardown(fn))
  const lastOfFirst = first.agent.hub.lastSeq
  await first.stop()

  const second = await startAgent({ OOMWATCH_JOURNAL_DIR: dir })
  t.teardown(() => second.stop())
  t.ok(second.agent.hub.lastSeq >= lastOfFirst, 'seq continues after the restart')
  const client = await connect(second.port, { query: `since=${since}` })
  t.teardown(() => client.close())
  const incident = (await client.waitFor(e => e.type === 'incident' && e.pid === pid)) as IncidentPayload & Received
  t.equal(incident.culprit?.function, 'fd_table_from_limit', "the first agent's incident, served by the second")
  t.same(...seqsAfter(client, since), 'no gap, no duplicate')
  const live = await connect(second.port)
  t.teardown(() => live.close())
  const hello = await live.waitFor(e => e.type === 'hello')
  t.ok(hello.seq >= lastOfFirst, 'a new client sees the continued seq')
})

t.test('a bad since is refused before the upgrade, with the reason', async t => {
  const agent = await startAgent()
  t.teardown(() => agent.stop())
  const { status, body } = await refusal(agent.port, '/?since=abc')
  t.equal(status, 400)
  t.match(body, /since must be the seq of the last event received/)
})

t.test('a journal line that is valid JSON but no event is skipped with a count; a text replay of it ends nothing', async t => {
  const dir = t.testdir()
  // On main, this line and a ?format=text&since=0 client ended the agent: `cmdline is not iterable`.
  writeFileSync(join(dir, segmentName(1)), `{"seq":1,"type":"process","pid":1}\n${JSON.stringify(syntheticProcess(2))}\n`, { mode: 0o600 })
  const agent = await startAgent({ OOMWATCH_JOURNAL_DIR: dir })
  t.teardown(() => agent.stop())
  t.ok(
    agent.logs.some(entry => entry.skippedLines === 1 && /not valid events/.test(String(entry.msg))),
    'the skipped line is counted in the log',
  )
  const text = await connect(agent.port, { query: 'format=text&since=0', parse: body => ({ type: 'text', body }) })
  t.teardown(() => text.close())
  const block = await text.waitFor(e => 'body' in e && /^PROCESS pid 1002 /.test(String(e.body)))
  t.ok(block, 'the valid event is replayed as text')
  const json = await connect(agent.port, { query: 'since=0' })
  t.teardown(() => json.close())
  const hello = await json.waitFor(e => e.type === 'hello')
  t.match(hello.replay, { since: 0, missed: 0 })
  await json.waitFor(e => e.type === 'process' && e.seq === 2)
  t.equal(json.events.filter(e => e.seq === 1).length, 0, 'the invalid line is not sent')
})

t.test('a replay longer than a page: the page, then a close that says where to go on, and the next page from there', async t => {
  const dir = t.testdir()
  fillJournal(dir, MAX_REPLAY + 20, 2)
  const agent = await startAgent({ OOMWATCH_JOURNAL_DIR: dir })
  t.teardown(() => agent.stop())
  const first = await connect(agent.port, { query: 'since=0' })
  const hello = await first.waitFor(e => e.type === 'hello')
  t.same(hello.replay, { since: 0, count: MAX_REPLAY, missed: 0, truncated: true, next: MAX_REPLAY })
  await first.waitFor(e => e.seq === MAX_REPLAY)
  while (!first.closed) await setTimeout(10)
  t.same(first.closed, { code: 1000, reason: `replay page sent; reconnect with ?since=${MAX_REPLAY} for more` })
  t.same(...seqsAfter(first, 0), 'the page: no gap, no duplicate')
  const second = await connect(agent.port, { query: `since=${MAX_REPLAY}` })
  t.teardown(() => second.close())
  const rest = await second.waitFor(e => e.type === 'hello')
  t.match(rest.replay, { since: MAX_REPLAY, missed: 0 })
  t.ok((rest.replay?.count ?? 0) >= 20, 'the rest, up to the newest')
  t.notOk(rest.replay?.truncated, 'the last page goes on live')
  await second.waitFor(e => e.seq === MAX_REPLAY + 20)
  agent.agent.hub.emit({
    type: 'risk',
    pid: 1,
    cmdline: ['python3'],
    rule: 'test',
    rlimit: 'NOFILE',
    value: 1,
    threshold: 1,
    message: 'live',
  })
  await second.waitFor(e => e.type === 'risk' && e.message === 'live')
  t.same(...seqsAfter(second, MAX_REPLAY), 'then live: no gap, no duplicate')
})
