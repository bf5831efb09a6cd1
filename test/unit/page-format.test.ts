import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { formatBytes } from '../../src/format/bytes.js'
import { commandName } from '../../src/format/command-name.js'
import { loadPageAssets, PAGE_DIR } from '../../src/page/assets.js'
import { incidentFigures, processFigures, processName, riskSubtitle, rlimitsLine } from '../../src/page/app/figures.js'
import { formatText } from '../../src/stream/text-format.js'
import type { IncidentPayload, OomwatchEvent, ProcessPayload, RiskPayload } from '../../src/protocol/events.js'

// The page and the server's text mode format the same figures: bytes, command names,
// percentages, rlimits. They used to be two implementations, and drifted (the page said
// "1024 KiB" for 1048575 bytes and named `python3 -X dev /app/worker.py` "dev"). Here
// both run on the same inputs, and the compiled page is checked to import the shared code.

const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`../fixtures/events/${name}`, import.meta.url)), 'utf8')
const SESSION = fixture('oom-session.jsonl')
  .split('\n')
  .filter(Boolean)
  .map(line => JSON.parse(line) as OomwatchEvent)
const PROCESS = SESSION.find((e): e is ProcessPayload & OomwatchEvent => e.type === 'process')!
const RISK = SESSION.find((e): e is RiskPayload & OomwatchEvent => e.type === 'risk')!
const INCIDENT = SESSION.find((e): e is IncidentPayload & OomwatchEvent => e.type === 'incident')!

const CMDLINES = [
  ['python3', '-X', 'dev', '/app/worker.py'],
  ['/usr/bin/python3.12', '-u', '-W', 'ignore', 'app/main.py', '--port', '80'],
  ['python', '-m', 'celery', 'worker'],
  ['pypy3', '-c', 'print(1)'],
  ['/usr/local/bin/gunicorn', 'app:wsgi'],
  ['python3'],
  [],
  ['python3', '/srv/' + 'x'.repeat(100) + '.py'],
]
const BYTES = [0, 1, 812, 1023, 1024, 1048575, 1048576, 1572864, 268435456, 260.5 * 1048576, 2 ** 40 - 1, 2 ** 53 - 1]

t.test('the two drifted cases: the page now says what the server says', async t => {
  const cmdline = ['python3', '-X', 'dev', '/app/worker.py']
  t.equal(processName(cmdline), 'worker.py', 'the page names it by its script')
  t.match(formatText({ ...RISK, cmdline }), /^RISK pid \d+ worker\.py: /, 'as the server does')
  const info = { ...PROCESS, cmdline, memory: { ...PROCESS.memory, rssBytes: 1048575 } }
  const figures = processFigures(info, 1048575, PROCESS.memory.limit.bytes, undefined)
  t.match(figures, /^RSS 1 MiB of 256 MiB \(0%, cgroup-v1\)/, 'the page: 1 MiB')
  t.match(formatText(info), /: RSS 1 MiB of 256 MiB \(cgroup-v1\)/, 'the server: 1 MiB')
})

t.test('command names: the page and the server agree on every command line', async t => {
  t.equal(processName, commandName, "the page's name function is the server's")
  for (const cmdline of CMDLINES) {
    const server = /^RISK pid \d+ (.*): nofile-hard-huge /.exec(formatText({ ...RISK, cmdline }))?.[1]
    t.equal(riskSubtitle(RISK.pid, cmdline), `pid ${RISK.pid} ${server}`, JSON.stringify(cmdline))
  }
})

t.test('bytes and percentages: a process card and an incident, page and server', async t => {
  for (const rss of BYTES) {
    const info = { ...PROCESS, memory: { ...PROCESS.memory, rssBytes: rss } }
    const page = /^RSS (.+) of (.+) \(\d+%, /.exec(processFigures(info, rss, info.memory.limit.bytes, undefined))
    const server = /: RSS (.+) of (.+) \(cgroup/.exec(formatText(info))
    t.same(page?.slice(1), server?.slice(1), `RSS ${rss}`)
    t.equal(page?.[1], formatBytes(rss))

    const memory = { ...INCIDENT.memory, usageBytes: rss, growthBytesPerSec: rss, fractionOfLimit: rss / INCIDENT.memory.limitBytes }
    const pageIncident = /^(.+) of (.+) \((\d+%), cgroup-v1\) · \+(.+)\/s · limit in (.+) s$/.exec(incidentFigures(memory))
    const serverLine = formatText({ ...INCIDENT, memory }).split('\n')[1]!
    const serverIncident = /^time-to-limit: RSS .+, (.+) of (.+) \((\d+%), cgroup-v1\), \+(.+)\/s, limit in (.+) s$/.exec(serverLine)
    t.ok(pageIncident && serverIncident, 'both lines parse')
    t.same(pageIncident?.slice(1), serverIncident?.slice(1), `incident at ${rss} bytes`)
  }
})

t.test('rlimits: the same values, each in its own layout', async t => {
  const rlimits = { ...INCIDENT.rlimits, DATA: { soft: 1048575, hard: 'unlimited' as const, units: 'bytes' } }
  const incident = { ...INCIDENT, rlimits }
  t.equal(rlimitsLine(incident), 'NOFILE 20000 \u00b7 AS unlimited \u00b7 DATA 1 MiB / unlimited')
  t.match(formatText(incident), /\nrlimits: NOFILE 20000; AS unlimited; DATA soft 1 MiB, hard unlimited\n/)
  t.equal(rlimitsLine({ rlimits: {}, risks: [] }), '', 'none read: the page says so')
})

t.test('the compiled page imports the shared formatters, and has no copy of them', async t => {
  const appDir = join(PAGE_DIR, 'page', 'app')
  const app = readdirSync(appDir).map(name => readFileSync(join(appDir, name), 'utf8'))
  const imports = app.flatMap(js => [...js.matchAll(/from '(\.\.\/\.\.\/format\/[^']+)'/g)].map(m => m[1]))
  t.ok(imports.includes('../../format/bytes.js'), 'it imports format/bytes.js')
  t.ok(imports.includes('../../format/command-name.js'), 'and format/command-name.js')
  for (const js of app) t.notMatch(js, /KiB|python|toString\(16\)/, 'no byte units, interpreter names or thread ids of its own')
  const assets = loadPageAssets()
  const served = (path: string) => assets.get(path)?.body.toString()
  const built = (path: string) => readFileSync(fileURLToPath(new URL(`../../dist/${path}`, import.meta.url)), 'utf8')
  for (const module of ['bytes', 'command-name', 'figures', 'stack']) {
    const strip = (js: string | undefined) => js?.replace(/\/\/# sourceMappingURL=.*/, '').trimEnd()
    t.equal(strip(served(`/format/${module}.js`)), strip(built(`format/${module}.js`)), `the browser gets the server's format/${module}.js`)
  }
})
