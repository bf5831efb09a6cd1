import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { WebSocket } from 'ws'
import { commandName } from '../../src/format/command-name.js'
import { createLogger } from '../../src/log.js'
import { StreamServer } from '../../src/stream/server.js'
import { formatText } from '../../src/stream/text-format.js'
import { EventHub } from '../../src/hub.js'
import { messageText } from '../helpers/client.js'
import type { IncidentPayload, OomwatchEvent } from '../../src/protocol/events.js'

// A real session, captured from a client of the agent: the leaking daemon in a 256 MiB
// memory cgroup with OOMWATCH_NOFILE_RISK=4096, until the kernel OOM-killed it.
const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`../fixtures/events/${name}`, import.meta.url)), 'utf8')
const SESSION = fixture('oom-session.jsonl')
  .split('\n')
  .filter(Boolean)
  .map(line => JSON.parse(line) as OomwatchEvent)
const INCIDENT = SESSION.find((e): e is IncidentPayload & OomwatchEvent => e.type === 'incident')!

const OOM_KILL = {
  type: 'oom-kill' as const,
  kills: 1,
  cgroup: { version: 2 as const, dir: '/sys/fs/cgroup' },
  limit: { bytes: 256 << 20, source: 'cgroup-v2' as const, path: '/sys/fs/cgroup/memory.max' },
  survivors: [],
  summary: 'the kernel OOM-killed 2 processes',
}

t.test('an incident as text: the captured event, laid out like py-spy dump', async t => {
  const text = formatText(INCIDENT)
  t.equal(text, fixture('incident.txt').trimEnd(), 'the whole block, as test/fixtures/events/incident.txt has it')
  const lines = text.split('\n')
  t.match(lines[0], /^INCIDENT \d+-[0-9a-f]{8} pid \d+ leaky_daemon\.py \(#4 2026-/, 'a headline: id, pid, command name, seq and time')
  t.equal(
    lines[1],
    'time-to-limit: RSS 147.8 MiB, 142.1 MiB of 256 MiB (56%, cgroup-v1), +38.1 MiB/s, limit in 2.99 s',
    'the reason and the memory figures on one line',
  )
  const thread = lines.indexOf(`Thread ${INCIDENT.pid} (idle): "MainThread"`)
  t.ok(thread > 0, "the thread's header as py-spy dump prints it")
  t.match(
    lines[thread + 1],
    /^--> fd_table_from_limit \(\/.*leaky_daemon\.py:37\) {3}<-- culprit: /,
    'the culprit frame comes first, marked',
  )
  t.match(lines[thread + 2], /^ {4}serve \(.*leaky_daemon\.py:\d+\)$/, 'the callers follow, indented four spaces, innermost first')
  t.equal(lines.filter(line => line.includes('<-- culprit')).length, 1, 'one frame is marked')
  t.ok(lines.includes('rlimits: NOFILE 20000; AS unlimited; DATA unlimited'), 'the rlimits that matter, not all sixteen')
  t.ok(
    lines.some(line => line.startsWith('likely cause: NOFILE hard limit 20000 is above 4096')),
    'the risk that explains it',
  )
  t.ok(lines.includes('also: nofile-soft-huge'), 'the other risks by name')
})

t.test('every other event of the session is a short block', async t => {
  const blocks = SESSION.map(formatText)
  t.same(
    blocks.map(block => block.split('\n')[0]!.split(' (#')[0]),
    [
      'oomwatch 0.1.0',
      `PROCESS pid ${INCIDENT.pid} leaky_daemon.py`,
      `RISK pid ${INCIDENT.pid} leaky_daemon.py: nofile-hard-huge`,
      `RISK pid ${INCIDENT.pid} leaky_daemon.py: nofile-soft-huge`,
      `INCIDENT ${INCIDENT.id} pid ${INCIDENT.pid} leaky_daemon.py`,
      `FLAME GRAPH of incident ${INCIDENT.id} (pid ${INCIDENT.pid})`,
      `OOM-KILLED pid ${INCIDENT.pid} leaky_daemon.py`,
    ],
  )
  t.match(blocks[1], /RSS 13\.8 MiB of 256 MiB \(cgroup-v1\); NOFILE 20000/)
  t.match(blocks[5], `/incidents/${INCIDENT.id}/flamegraph.svg (recorded 3.0 s)`)
  t.match(blocks[6], /was OOM-killed: fd_table_from_limit .* peak RSS 260\.5 MiB, limit 256 MiB/)
  for (const block of blocks) t.notMatch(block, /[{}]"/, 'no JSON in the text')
})

t.test('variants: no stack, several threads, a deep stack, unequal limits, the rest of the protocol', async t => {
  const failed = formatText({
    ...INCIDENT,
    threads: [],
    capture: { triggerToStackMs: 3, pyspyMs: 2, error: { code: 'PTRACE_DENIED', message: 'Permission denied', remedy: 'add SYS_PTRACE' } },
    memory: { ...INCIDENT.memory, secondsToLimit: null },
    rlimits: { AS: { soft: 1 << 30, hard: 'unlimited', units: 'bytes' } },
    risks: [],
  })
  t.match(failed, /no stack: PTRACE_DENIED: Permission denied\n {2}remedy: add SYS_PTRACE/)
  t.notMatch(failed, /limit in/, 'no time to the limit when memory is not growing')
  t.match(failed, /rlimits: AS soft 1 GiB, hard unlimited/)
  const frames = Array.from({ length: 45 }, (_, i) => ({ function: `f${i}`, file: '/app/x.py', line: i + 1 }))
  const threads = formatText({
    ...INCIDENT,
    rlimits: {},
    threads: [
      { id: 0x7f00, active: false, ownsGil: false, frames: frames.slice(0, 2) },
      { id: 0x7f01, osThreadId: 12, name: 'worker', active: true, ownsGil: true, frames },
    ],
    culprit: { ...frames[0]!, threadId: 0x7f01, why: 'innermost frame of the thread holding the GIL' },
  })
  t.match(threads, /Thread 0x7F00 \(idle\)\n {4}f0 \(\/app\/x\.py:1\)/, 'without an OS thread id, py-spy shows the hex id')
  t.match(threads, /Thread 12 \(active\+gil\): "worker"\n--> f0 /, 'the culprit in the thread holding the GIL')
  t.match(threads, / {4}\.\.\. 5 more frames/, 'a deep stack is cut at 40 frames')
  t.match(threads, /rlimits: not read/)
  const processInfo = SESSION[1]! as Extract<OomwatchEvent, { type: 'process' }>
  const base = { seq: 9, ts: '2026-11-29T16:58:41.000Z' }
  const more: [OomwatchEvent, RegExp][] = [
    [
      {
        ...SESSION[0]!,
        type: 'hello',
        watching: [processInfo],
        pyspy: { error: 'not found', remedy: 'install it' },
        replay: { since: 3, count: 2, missed: 1 },
      } as OomwatchEvent,
      /py-spy missing: not found; incidents will carry no stack\nwatching 1 Python process:\n {2}pid \d+ leaky_daemon\.py: .*\nreplaying 2 events after #3 \(1 missed\)/,
    ],
    [
      {
        type: 'flamegraph',
        incidentId: 'x',
        pid: 5,
        error: { code: 'FLAMEGRAPH_TARGET_GONE', message: 'pid 5 was gone', remedy: '' },
        ...base,
      },
      /NO FLAME GRAPH for incident x \(pid 5\).*\n {2}FLAMEGRAPH_TARGET_GONE: pid 5 was gone/,
    ],
    [
      { type: 'exit', pid: 5, cmdline: ['gunicorn'], oomKilled: false, peakRssBytes: 1 << 20, ...base },
      /^EXIT pid 5 gunicorn .*\n {2}exited; peak RSS 1 MiB$/,
    ],
    [{ type: 'exit', pid: 5, cmdline: ['gunicorn'], oomKilled: false, ...base }, /peak RSS unknown/],
    [
      { ...OOM_KILL, kills: 2, ...base },
      /^OOM-KILLED 2 processes oomwatch did not watch \(#\d+ [^)]+\)\n {2}the kernel OOM-killed 2 processes$/,
    ],
    [
      { type: 'error', code: 'CLIENT_MESSAGE_UNSUPPORTED', message: 'no messages', ...base },
      /^ERROR CLIENT_MESSAGE_UNSUPPORTED .*\n {2}no messages$/,
    ],
    [
      {
        type: 'action',
        action: 'stop',
        pid: 5,
        cmdline: ['python3', '-m', 'celery'],
        reason: 'a runaway',
        result: 'done',
        detail: 'SIGTERM',
        remedy: 'fix it',
        ...base,
      },
      /^ACTION stop pid 5 celery: done .*\n {2}a runaway \(SIGTERM\)\n {2}remedy: fix it$/,
    ],
    [
      { type: 'action', action: 'freeze', pid: 5, cmdline: ['python3', '-c', 'x'], reason: 'a runaway', result: 'skipped', ...base },
      /^ACTION freeze pid 5 python3 -c: skipped .*\n {2}a runaway$/,
    ],
  ]
  for (const [event, expected] of more) t.match(formatText(event), expected, event.type)
})

t.test('commandName: the script, the module, or the executable', async t => {
  const cases: [string[], string][] = [
    [['/usr/bin/python3', '/app/worker.py', '--x'], 'worker.py'],
    [['python3.11', '-u', '-W', 'ignore', 'serve.py'], 'serve.py'],
    [['python', '-m', 'celery', 'worker'], 'celery'],
    [['python', '-m'], 'python'],
    [['python3', '-c', 'print(1)'], 'python3 -c'],
    [['python3'], 'python3'],
    [['/usr/local/bin/gunicorn', 'app:wsgi'], 'gunicorn'],
    [['uwsgi'], 'uwsgi'],
    [[], 'unknown'],
    [['python3', `${'x'.repeat(100)}.py`], 'x'.repeat(64)],
  ]
  for (const [cmdline, name] of cases) t.equal(commandName(cmdline), name, cmdline.join(' '))
})

t.test('?format=text over a real server: every text client gets the block, JSON clients the object', async t => {
  const hub = new EventHub(3)
  const server = new StreamServer(
    { host: '127.0.0.1', port: 0, heartbeatMs: 60_000, maxClients: 10, clientBufferBytes: 8 << 20 },
    {
      status: { ready: true, live: true, readyNote: undefined },
      greeting: {
        greet: () => ({ hello: hub.greet({ ...(SESSION[0] as Extract<OomwatchEvent, { type: 'hello' }>) }) }),
        clientError: message => hub.greet({ type: 'error', code: 'CLIENT_MESSAGE_UNSUPPORTED', message }),
      },
      logger: createLogger('silent'),
    },
  )
  const port = await server.listen()
  t.teardown(() => server.close())
  hub.subscribe(event => server.broadcast(event))
  const open = async (query: string) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/${query}`)
    const frames: string[] = []
    ws.on('message', data => frames.push(messageText(data)))
    t.teardown(() => ws.terminate())
    await new Promise(resolve => ws.once('open', resolve))
    return { ws, frames }
  }
  const text = [await open('?format=text'), await open('?format=text&since=3')]
  const json = await open('?format=json')
  const { seq: _seq, ts: _ts, ...payload } = INCIDENT
  const sent = hub.emit(payload)
  for (const client of [...text, json]) while (client.frames.length < 2) await new Promise(resolve => client.ws.once('message', resolve))
  for (const client of text) {
    t.match(client.frames[0], /^oomwatch 0\.1\.0 \(#3 /, 'the hello as text')
    t.equal(client.frames[1], formatText(sent), 'the incident as its text block')
  }
  t.same(JSON.parse(json.frames[1]!), sent, 'JSON stays the default')
  text[0]!.ws.send('hello?')
  while (text[0]!.frames.length < 3) await new Promise(resolve => text[0]!.ws.once('message', resolve))
  t.match(text[0]!.frames[2], /^ERROR CLIENT_MESSAGE_UNSUPPORTED/, 'an error frame is text too')
  const refused = await new Promise<number>(resolve => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/?format=yaml`)
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
    ws.on('error', () => {})
  })
  t.equal(refused, 400, 'an unknown format is refused')
})

t.test('watched data can neither send an escape sequence nor forge a line, in any event', async t => {
  const evil = '\x1b]0;title\x07\nINCIDENT fake-1 pid 1 forged\r\u2028\u202e\x9b'
  const processInfo = SESSION[1]! as Extract<OomwatchEvent, { type: 'process' }>
  const base = { seq: 9, ts: '2026-11-29T16:58:41.000Z' }
  const cmdline = ['python3', `/app/${evil}.py`, evil]
  const hostileProcess = { ...processInfo, cmdline, exe: `/usr/bin/${evil}` }
  const frame = { function: `f${evil}`, file: `/app/${evil}.py`, line: 1 }
  const events: OomwatchEvent[] = [
    { ...(SESSION[0]! as Extract<OomwatchEvent, { type: 'hello' }>), watching: [hostileProcess], pyspy: { error: evil, remedy: evil } },
    hostileProcess,
    { type: 'risk', pid: 5, cmdline, rule: 'nofile-hard-huge', rlimit: 'NOFILE', value: 1, threshold: 1, message: evil, ...base },
    {
      ...INCIDENT,
      cmdline,
      summary: evil,
      threads: [{ id: 1, name: evil, active: true, ownsGil: true, frames: [frame] }],
      culprit: { ...frame, threadId: 1, why: evil },
    },
    {
      ...INCIDENT,
      cmdline,
      threads: [],
      capture: { triggerToStackMs: 1, pyspyMs: 1, error: { code: 'PYSPY_FAILED', message: evil, remedy: evil } },
    },
    { type: 'flamegraph', incidentId: 'x', pid: 5, error: { code: 'FLAMEGRAPH_TARGET_GONE', message: evil, remedy: '' }, ...base },
    {
      type: 'exit',
      pid: 5,
      cmdline,
      oomKilled: true,
      postMortem: { summary: evil, peakRssBytes: 1, limitBytes: 2, limitSource: 'env', livedMs: 3 },
      ...base,
    },
    { type: 'action', action: 'stop', pid: 5, cmdline, reason: evil, result: 'failed', detail: evil, remedy: evil, ...base },
    { ...OOM_KILL, summary: evil, lastExit: { pid: 5, cmdline, agoMs: 1 }, ...base },
    { type: 'error', code: 'CLIENT_MESSAGE_UNSUPPORTED', message: evil, ...base },
  ]
  for (const event of events) {
    const text = formatText(event)
    // eslint-disable-next-line no-control-regex -- looking for them is the point
    t.notMatch(text, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/, `${event.type}: no raw control`)
    t.notOk(
      text.split('\n').some(line => line.startsWith('INCIDENT fake-1')),
      `${event.type}: the forged line is not a line`,
    )
    t.match(text, '\\x1b]0;title\\x07\\nINCIDENT fake-1 pid 1 forged\\r\\u2028\\u202e\\x9b', `${event.type}: shown escaped`)
  }
})
