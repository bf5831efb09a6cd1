import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import t from 'tap'
import { CgroupParseError } from '../../src/cgroup/errors.js'
import { parseBytes, parseKeyedCounters, parseLimit, parseMountinfo, parseProcCgroup } from '../../src/cgroup/parse.js'
import { DumpParseError, parseDump } from '../../src/capture/pyspy-output.js'
import { parseCmdline } from '../../src/proc/cmdline.js'
import { ProcParseError } from '../../src/proc/errors.js'
import { parseLimits } from '../../src/proc/limits.js'
import { findLibpython, identifyPython } from '../../src/proc/python.js'
import { parseStat } from '../../src/proc/stat.js'
import { parseStatus } from '../../src/proc/status.js'

// Every parser of /proc, cgroupfs and py-spy output, fed random, truncated and hostile
// text: it returns a result or throws its own typed error, never anything else.

const fixture = (path: string) => readFileSync(new URL(`../fixtures/${path}`, import.meta.url), 'utf8')

/** Real files, then cut at a random point, with random bytes spliced in, or pure noise. */
function hostile(real: string): fc.Arbitrary<string> {
  return fc.oneof(
    fc.nat({ max: real.length }).map(cut => real.slice(0, cut)),
    fc
      .tuple(fc.nat({ max: real.length }), fc.string({ unit: 'binary', maxLength: 40 }))
      .map(([at, junk]) => real.slice(0, at) + junk + real.slice(at)),
    fc.tuple(fc.nat({ max: real.length }), fc.nat({ max: 40 })).map(([at, drop]) => real.slice(0, at) + real.slice(at + drop)),
    fc.string({ unit: 'binary', maxLength: 400 }),
    fc.constantFrom('', '\n', '\0', ')', '(', ' ', 'unlimited', '-1', '1e400', 'NaN', '9'.repeat(400)),
  )
}

function survives(parse: (text: string) => unknown, errorType: new (...args: never[]) => Error) {
  return (text: string) => {
    try {
      parse(text)
    } catch (error) {
      if (!(error instanceof errorType)) throw error
    }
  }
}

const cases: [string, (text: string) => unknown, new (...args: never[]) => Error, string][] = [
  ['limits', parseLimits, ProcParseError, fixture('proc/4242/limits')],
  ['status', parseStatus, ProcParseError, fixture('proc/4242/status')],
  ['stat', parseStat, ProcParseError, fixture('proc/4242/stat')],
  ['cmdline', parseCmdline, ProcParseError, fixture('proc/4242/cmdline')],
  ['maps (libpython)', findLibpython, ProcParseError, fixture('proc/4343/maps')],
  ['maps (identify)', text => identifyPython('/usr/bin/uwsgi', text), ProcParseError, fixture('proc/4343/maps')],
  ['/proc/<pid>/cgroup', parseProcCgroup, CgroupParseError, fixture('proc/4242/cgroup')],
  ['mountinfo', parseMountinfo, CgroupParseError, fixture('proc/4242/mountinfo')],
  ['memory.max', text => parseLimit(text, 2), CgroupParseError, '268435456\n'],
  ['memory.limit_in_bytes', text => parseLimit(text, 1), CgroupParseError, '9223372036854771712\n'],
  ['memory.current', parseBytes, CgroupParseError, '10485760\n'],
  ['memory.events', parseKeyedCounters, CgroupParseError, 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 3\n'],
  ['py-spy dump --json', parseDump, DumpParseError, fixture('pyspy/dump-gil.json')],
]

for (const [name, parse, errorType, real] of cases) {
  t.test(`${name}: a result or a ${errorType.name}, never anything else`, async t => {
    fc.assert(fc.property(hostile(real), survives(parse, errorType)), { numRuns: 2000 })
    t.pass('2000 hostile inputs survived')
  })
}

t.test('py-spy JSON with the right shape but hostile values', async t => {
  const frame = fc.record({ name: fc.anything(), filename: fc.anything(), line: fc.anything() }, { requiredKeys: [] })
  const thread = fc.record(
    { thread_id: fc.anything(), frames: fc.oneof(fc.array(frame), fc.anything()), active: fc.anything(), owns_gil: fc.anything() },
    { requiredKeys: [] },
  )
  fc.assert(
    fc.property(fc.array(thread), threads => survives(parseDump, DumpParseError)(JSON.stringify(threads))),
    { numRuns: 2000 },
  )
  t.pass('2000 hostile dumps survived')
})
