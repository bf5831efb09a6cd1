import t from 'tap'
import { isJournalEvent } from '../../src/journal/event-check.js'
import { parseLine, splitLines, tailSeq } from '../../src/journal/lines.js'
import { syntheticProcess } from '../helpers/journal-fill.js'

const stamp = { seq: 7, ts: '2026-12-02T00:00:00.000Z' }
const problem = { code: 'PYSPY_FAILED', message: 'it failed', remedy: 'try again' }
const VALID = {
  process: syntheticProcess(7),
  risk: {
    type: 'risk',
    pid: 1,
    cmdline: ['python3'],
    rule: 'nofile-hard-huge',
    rlimit: 'NOFILE',
    value: 'unlimited',
    threshold: 1,
    message: 'm',
    ...stamp,
  },
  incident: {
    type: 'incident',
    id: '1-abc',
    pid: 1,
    cmdline: ['python3', 'x.py'],
    reason: 'time-to-limit',
    summary: 's',
    memory: { usageBytes: 1, limitBytes: 2, limitSource: 'host', fractionOfLimit: 0.5, growthBytesPerSec: 1, secondsToLimit: null },
    process: {},
    rlimits: { NOFILE: { soft: 1, hard: 'unlimited', units: 'files' } },
    risks: [],
    threads: [{ id: 1, active: true, ownsGil: true, frames: [{ function: 'f', file: 'x.py', line: 3 }] }],
    culprit: { function: 'f', file: 'x.py', line: 3, threadId: 1, why: 'w' },
    capture: { triggerToStackMs: 1, pyspyMs: 1, error: problem },
    ...stamp,
  },
  exit: {
    type: 'exit',
    pid: 1,
    cmdline: [],
    oomKilled: true,
    postMortem: { summary: 's', peakRssBytes: 1, limitBytes: 2, livedMs: 3 },
    ...stamp,
  },
  'oom-kill': {
    type: 'oom-kill',
    kills: 1,
    cgroup: { version: 2, dir: '/sys/fs/cgroup' },
    limit: { bytes: 2, source: 'cgroup-v2' },
    survivors: [],
    lastExit: { pid: 3, cmdline: ['python3'], agoMs: 80 },
    summary: 's',
    ...stamp,
  },
  action: { type: 'action', action: 'stop', pid: 1, cmdline: [], reason: 'r', result: 'done', ...stamp },
  flamegraph: { type: 'flamegraph', incidentId: '1-abc', pid: 1, error: problem, ...stamp },
}

t.test('isJournalEvent: each journaled type, as the agent writes it', async t => {
  for (const [type, event] of Object.entries(VALID)) t.ok(isJournalEvent(event), type)
})

t.test('isJournalEvent: valid JSON that is no event is refused', async t => {
  const cases: [string, unknown][] = [
    ['the crash of issue 12: a process without cmdline', { seq: 1, type: 'process', pid: 1 }],
    ['an oom-kill without its survivors', { ...VALID['oom-kill'], survivors: undefined }],
    ['no seq', { ...VALID.risk, seq: undefined }],
    ['seq 0', { ...VALID.risk, seq: 0 }],
    ['seq not an integer', { ...VALID.risk, seq: 1.5 }],
    ['seq a string', { ...VALID.risk, seq: '7' }],
    ['no ts', { ...VALID.risk, ts: 5 }],
    ['an unknown type', { ...VALID.risk, type: 'bogus' }],
    ['a type from the prototype', { ...VALID.risk, type: 'constructor' }],
    ['a hello (per client, never journaled)', { type: 'hello', ...stamp }],
    ['cmdline not strings', { ...VALID.risk, cmdline: [1] }],
    ['cmdline a string', { ...VALID.exit, cmdline: 'python3' }],
    ['an rlimit row without units', { ...VALID.process, rlimits: { NOFILE: { soft: 1, hard: 2 } } }],
    ['a memory limit without bytes', { ...VALID.process, memory: { limit: { source: 'host' } } }],
    ['an incident thread without frames', { ...VALID.incident, threads: [{ id: 1 }] }],
    ['secondsToLimit a string', { ...VALID.incident, memory: { ...VALID.incident.memory, secondsToLimit: 'soon' } }],
    ['an unknown action result', { ...VALID.action, result: 'maybe' }],
    ['a flame graph error without remedy', { ...VALID.flamegraph, error: { code: 'x', message: 'y' } }],
    ['an array', [VALID.risk]],
    ['null', null],
    ['a number', 7],
  ]
  for (const [why, value] of cases) t.notOk(isJournalEvent(value), why)
})

t.test('parseLine: torn, not JSON, or no event: undefined; an event: the event', async t => {
  const line = JSON.stringify(VALID.exit)
  t.same(parseLine(line), VALID.exit)
  t.equal(parseLine(line.slice(0, 20)), undefined, 'a torn line')
  t.equal(parseLine('{"seq":1,"type":"process","pid":1}'), undefined, 'valid JSON, no event')
  t.equal(parseLine('not json'), undefined)
})

t.test('tailSeq reads the seq the journal writes last, and nothing else', async t => {
  t.equal(tailSeq(JSON.stringify(syntheticProcess(123456))), 123456)
  t.equal(tailSeq('{"seq":5,"type":"risk"}'), undefined, 'another key order: parsed in full instead')
  t.equal(tailSeq('{"a":1,"seq":5,"ts":"x"'), undefined, 'torn before its end')
})

t.test('splitLines: complete lines out, the rest kept, on bytes (a chunk may end inside a character)', async t => {
  const text = Buffer.from('{"a":"é"}\n\n{"b":2}\n{"c"')
  const cut = text.indexOf(Buffer.from('é')) + 1 // inside the two bytes of é
  const first = splitLines(Buffer.alloc(0), text.subarray(0, cut))
  t.same(first.lines, [])
  const second = splitLines(first.rest, text.subarray(cut))
  t.same(second.lines, ['{"a":"é"}', '{"b":2}'], 'empty lines left out, é whole')
  t.equal(second.rest.toString(), '{"c"')
})
