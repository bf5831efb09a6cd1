import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

// The README's two first commands are the project's promise: the first runs the agent (no
// root, no apt), the second passes the tests on a fresh machine, and .ci/run is that second
// line, split in two. This reads the three files and fails when they drift apart.
const REPO = fileURLToPath(new URL('../..', import.meta.url))
const read = (file: string) => readFileSync(join(REPO, file), 'utf8')

/** The commands of the README's first code block, comments dropped. */
function readmeCommands(readme: string): string[] {
  const block = /```sh\n([\s\S]*?)```/.exec(readme)?.[1]
  if (block === undefined) throw new Error('README.md has no ```sh block')
  return block
    .split('\n')
    .map(line => line.replace(/\s+#.*$/, '').trim())
    .filter(Boolean)
}

/** Every `npm ...` command .ci/run runs, as written (comments, quoted text and redirections left out). */
function ciNpmCommands(script: string): string[] {
  return script
    .split('\n')
    .filter(line => !line.trimStart().startsWith('#'))
    .map(line => line.replace(/"[^"]*"/g, '""').replace(/\s\d*>&?\S*/g, ''))
    .flatMap(line => [...line.matchAll(/(?:^|[\s;&|{(])(npm\s[^|;&}]*)/g)].map(match => match[1]!.trim()))
}

const pkg = JSON.parse(read('package.json')) as { os?: string[]; scripts: Record<string, string> }
const [start, tests] = readmeCommands(read('README.md'))

t.test("the README's first command runs the agent: setup without apt, then npm start", async t => {
  t.equal(start, 'npm run setup && npm start')
  t.notMatch(pkg.scripts.setup, /setup:system|apt|sudo/, 'npm run setup installs no system package')
  t.match(pkg.scripts.setup, /npm ci\b/)
  t.match(pkg.scripts.setup, /npm run setup:pyspy\b/)
  t.strictSame(pkg.os, ['linux'], 'the package says it is Linux-only')
})

t.test("the README's second command is the test setup, then npm test", async t => {
  t.match(tests, /^npm run setup:test && npm test$/)
  t.match(pkg.scripts['setup:test'], /^npm run setup && npm run setup:system$/, 'setup:test is setup plus the Debian packages')
})

t.test(".ci/run runs the README's second line: its setup part as written, then its test part", async t => {
  const [setupPart, testPart] = tests!.split(' && ')
  const ran = ciNpmCommands(read('.ci/run'))
  t.equal(ran[0], setupPart, ".ci/run's first npm command is the README's setup part")
  t.equal(ran.filter(command => command === setupPart).length, 1, 'once')
  const installs = ran.filter(command => /^npm (ci|install(?! --prefix)|run setup)/.test(command) && command !== setupPart)
  t.strictSame(installs, [], 'no install step of its own: the README line alone sets a machine up')
  const testRuns = ran.filter(command => /^npm (test|run test)\b/.test(command))
  t.strictSame(testRuns, [`${testPart} -- --reporter=tap`, `${testPart} -- --reporter=tap`], "the README's test part, on both Nodes")
})

t.test('the parsers see what a drift would change', async t => {
  t.strictSame(readmeCommands('# x\n\n```sh\nnpm a && b   # one\nnpm c # two\n```\n'), ['npm a && b', 'npm c'])
  const drifted =
    'npm ci --no-audit || { echo "npm ci failed"; exit 1; }\nnpm run setup:pyspy\n# npm run setup:test\nnpm test -- --reporter=tap 2>&1\n'
  t.strictSame(ciNpmCommands(drifted), ['npm ci --no-audit', 'npm run setup:pyspy', 'npm test -- --reporter=tap'])
})
