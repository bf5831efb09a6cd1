import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'

// scripts/check-architecture.mjs run as CI runs it, on small source trees made for each case.
const SCRIPT = fileURLToPath(new URL('../../scripts/check-architecture.mjs', import.meta.url))

interface Tree {
  [name: string]: string | Tree
}

/** Runs the script on a fresh tree holding `src`; its exit code and output lines. */
function run(t: Test, src: Tree): { code: number | null; out: string[]; err: string[] } {
  const root = t.testdir({ src })
  const result = spawnSync(process.execPath, [SCRIPT, root], { encoding: 'utf8' })
  const lines = (text: string) => text.split('\n').filter(Boolean)
  return { code: result.status, out: lines(result.stdout), err: lines(result.stderr) }
}

/** A layered tree with no problem: each layer imports the ones below it. */
const clean = (): Tree => ({
  protocol: {
    'events.ts': "import type { Bytes } from './values.js'\nexport type Event = { bytes: Bytes }\n",
    'values.ts': 'export type Bytes = number\n',
  },
  'quantity.ts': "import type { Bytes } from './protocol/values.js'\nexport const kib = (b: Bytes) => b / 1024\n",
  proc: { 'reader.ts': "import { kib } from '../quantity.js'\nexport const read = () => kib(1)\n" },
  watch: {
    'watcher.ts': "import {\n  read,\n} from '../proc/reader.js'\nexport * from '../proc/reader.js'\nexport const tick = () => read()\n",
  },
  'hub.ts': "import type { Event } from './protocol/events.js'\nexport type Hub = (e: Event) => void\n",
  stream: {
    'server.ts': "import type { Page } from '../page/page.js'\nimport type { Hub } from '../hub.js'\nexport type S = [Page, Hub]\n",
  },
  page: { 'page.ts': 'export type Page = string\n' },
  'agent.ts':
    "import { tick } from './watch/watcher.js'\nimport type { S } from './stream/server.js'\nexport const start = (_s?: S) => tick()\n",
  'cli.ts': "import { start } from './agent.js'\nstart()\n",
})

t.test('a clean tree passes with a one-line summary', async t => {
  const { code, out, err } = run(t, clean())
  t.equal(code, 0)
  t.same(err, [])
  t.match(out, [/^check-architecture: OK, 10 files, 11 imports, 11 layers/])
})

t.test('a cycle is listed edge by edge', async t => {
  const tree = clean()
  tree.cgroup = {
    'a.ts': "import { b } from './b.js'\nexport const a = () => b()\n",
    'b.ts': "// b\nimport { a } from './a.js'\nexport const b = () => a()\n",
  }
  const { code, err } = run(t, tree)
  t.equal(code, 1)
  const cycle = 'src/cgroup/a.ts -> src/cgroup/b.ts -> src/cgroup/a.ts'
  t.ok(err.includes(`src/cgroup/a.ts:1  cycle  ${cycle}`), err.join('\n'))
  t.ok(err.includes(`src/cgroup/b.ts:2  cycle  ${cycle}`), err.join('\n'))
  t.match(err.at(-1), /2 problem\(s\)/)
})

t.test('a type-only import still closes a cycle', async t => {
  const tree = clean()
  tree.detect = {
    'a.ts': "import type { B } from './b.js'\nexport type A = { b?: B }\n",
    'b.ts': "import { type A } from './a.js'\nexport type B = { a?: A }\n",
  }
  const { code, err } = run(t, tree)
  t.equal(code, 1)
  t.equal(err.filter(l => / {2}cycle {2}/.test(l)).length, 2, err.join('\n'))
})

t.test('an import from a higher layer is named with both layers', async t => {
  const tree = clean()
  tree.proc = {
    'reader.ts': "import { kib } from '../quantity.js'\nimport type { Hub } from '../hub.js'\nexport const read = (_h?: Hub) => kib(1)\n",
  }
  const { code, err } = run(t, tree)
  t.equal(code, 1)
  t.ok(err.includes('src/proc/reader.ts:2  upward  readers imports hub: src/hub.ts'), err.join('\n'))
})

t.test('a file over 350 lines fails; one of 350 passes', async t => {
  const long = (n: number) => Array.from({ length: n }, (_, i) => `export const v${i} = ${i}`).join('\n') + '\n'
  const exact = clean()
  exact['limit.ts'] = long(350)
  t.equal(run(t, exact).code, 0)
  const over = clean()
  over['limit.ts'] = long(351)
  const { code, err } = run(t, over)
  t.equal(code, 1)
  t.ok(err.includes('src/limit.ts:351  max-lines  351 lines, over 350'), err.join('\n'))
})

t.test('one sink never imports another; the stream server may name the page only as types', async t => {
  const tree = clean()
  tree.stream = {
    'server.ts': "import { page } from '../page/page.js'\nimport { count } from '../metrics/registry.js'\nexport const s = [page, count]\n",
  }
  tree.page = { 'page.ts': 'export const page = 1\n' }
  tree.metrics = { 'registry.ts': 'export const count = 1\n' }
  const { code, err } = run(t, tree)
  t.equal(code, 1)
  t.match(err, [
    /^src\/stream\/server\.ts:1 {2}cross-sink .*src\/page\/page\.ts \(only its types may be imported\)$/,
    /^src\/stream\/server\.ts:2 {2}cross-sink .*src\/metrics\/registry\.ts$/,
  ])
})

t.test('the protocol imports nothing outside itself, not even Node', async t => {
  const tree = clean()
  tree.protocol = { 'events.ts': "import { EventEmitter } from 'node:events'\nexport type Event = EventEmitter\n" }
  const { code, err } = run(t, tree)
  t.equal(code, 1)
  t.match(err[0], /^src\/protocol\/events\.ts:1 {2}leaf {2}src\/protocol\/ imports nothing outside itself, but imports 'node:events'$/)
})

t.test('a file in no layer and an import that names no file are errors', async t => {
  const tree = clean()
  tree.newarea = { 'x.ts': "import { gone } from '../proc/gone.js'\nexport const x = gone\n" }
  const { code, err } = run(t, tree)
  t.equal(code, 1)
  t.ok(err.includes('src/newarea/x.ts:1  no-layer  matches no layer: add its folder to LAYERS in scripts/check-architecture.mjs'))
  t.ok(err.includes("src/newarea/x.ts:1  unresolved  '../proc/gone.js' names no file"))
})
