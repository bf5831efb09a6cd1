import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { validate } from 'dockerfile-utils'
import t from 'tap'
import { copyOf, parseDockerfile, readDockerfile, REPO } from '../helpers/dockerfile.js'

// docker/Dockerfile and the project must agree; no Docker engine is needed to check it.
// test/e2e/image-runtime.test.ts runs the runtime stage's files with a read-only root;
// dockerfile-pins.test.ts checks the digests, wheel hashes, SBOM and labels.
const text = readDockerfile()
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
  version: string
  bin: Record<string, string>
  engines: { node: string }
  scripts: Record<string, string>
}

/** Whether .dockerignore keeps `path` out of the build context (Docker's rules: last match wins; a match on a parent counts). */
function ignoredByDockerignore(path: string): boolean {
  const patterns = readFileSync(join(REPO, '.dockerignore'), 'utf8')
    .split('\n')
    .map(line => line.trim())
    .filter(line => line !== '' && !line.startsWith('#'))
  const toRegExp = (glob: string) =>
    new RegExp(
      `^${glob
        .replace(/\/+$/, '')
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*\*|\*|\?/g, wildcard => (wildcard === '**' ? '.*' : wildcard === '*' ? '[^/]*' : '[^/]'))}$`,
    )
  const segments = path.split('/')
  const prefixes = segments.map((_, i) => segments.slice(0, i + 1).join('/'))
  let ignored = false
  for (const pattern of patterns) {
    const negated = pattern.startsWith('!')
    const re = toRegExp(negated ? pattern.slice(1) : pattern)
    if (prefixes.some(prefix => re.test(prefix))) ignored = !negated
  }
  return ignored
}

const { globalArgs, stages } = parseDockerfile(text)
const runtime = stages.at(-1)!
const stageNamed = (name: string) => stages.find(s => s.name === name)
const binName = Object.keys(pkg.bin)[0]!
const binPath = pkg.bin[binName]!

t.test('the Dockerfile lints clean', async t => {
  t.same(
    validate(text).map(d => `line ${d.range.start.line + 1}: ${typeof d.message === 'string' ? d.message : d.message.value}`),
    [],
    'no error or warning from dockerfile-utils',
  )
  t.ok(validate('FROMM node:24\nCOPY onlyone\n').length >= 2, 'the linter does report a broken Dockerfile')
})

t.test('multi-stage: compiled in a build stage, production dependencies only at run time', async t => {
  t.ok(stages.length >= 3, 'several stages')
  const build = stageNamed('build')
  t.ok(
    build?.instructions.some(i => i.keyword === 'RUN' && /\bnpm run build\b/.test(i.args)),
    'the build stage compiles with npm run build',
  )
  t.match(pkg.scripts.build, /tsc -p tsconfig\.build\.json/, "which is the package's tsc build")
  const outDir = (JSON.parse(readFileSync(join(REPO, 'tsconfig.build.json'), 'utf8')) as { compilerOptions: { outDir: string } })
    .compilerOptions.outDir
  t.equal(binPath.split('/')[0], outDir, `the bin (${binPath}) is in its output directory`)
  const deps = stageNamed('deps')
  t.ok(
    deps?.instructions.some(i => i.keyword === 'RUN' && /\bnpm ci\b.*--omit=dev/.test(i.args)),
    'a stage installs production dependencies only',
  )
  const copies = runtime.instructions.filter(i => i.keyword === 'COPY').map(copyOf)
  t.same(
    copies.filter(c => c.sources.some(s => s.includes('node_modules'))).map(c => c.from),
    ['deps'],
    'the runtime takes node_modules from that stage alone',
  )
  t.ok(
    copies.every(c => c.from !== undefined),
    'and nothing from the build context directly',
  )
  t.notOk(
    runtime.instructions.some(i => i.keyword === 'RUN' && /\bnpm (ci|install)\b/.test(i.args)),
    'nothing is installed in the runtime stage',
  )
})

t.test('the files it copies exist and are in the build context', async t => {
  const fromContext = stages
    .flatMap(s => s.instructions.filter(i => i.keyword === 'COPY' || i.keyword === 'ADD').map(copyOf))
    .filter(c => c.from === undefined)
  t.ok(fromContext.length > 0, 'it copies from the context')
  for (const source of fromContext.flatMap(c => c.sources)) {
    t.ok(existsSync(join(REPO, source)), `${source} exists`)
    t.notOk(ignoredByDockerignore(source), `${source} is not excluded by .dockerignore`)
    if (statSync(join(REPO, source)).isDirectory()) {
      const files = readdirSync(join(REPO, source), { recursive: true, encoding: 'utf8' })
      t.same(
        files.filter(file => ignoredByDockerignore(`${source}/${file}`)),
        [],
        `none of the files in ${source}/ is excluded either`,
      )
    }
  }
  const build = stageNamed('build')!
  const copiedToBuild = build.instructions.filter(i => i.keyword === 'COPY').flatMap(i => copyOf(i).sources)
  const extendsFile = (JSON.parse(readFileSync(join(REPO, 'tsconfig.build.json'), 'utf8')) as { extends?: string }).extends
  if (extendsFile)
    t.ok(copiedToBuild.includes(extendsFile.replace(/^\.\//, '')), `tsconfig.build.json's base (${extendsFile}) is copied too`)
  for (const heavy of ['node_modules', '.venv', 'dist', '.git', '.tap', 'test']) {
    t.ok(ignoredByDockerignore(heavy), `${heavy} stays out of the build context`)
  }
})

t.test("its command is the package's bin", async t => {
  const entrypoint = runtime.instructions.filter(i => i.keyword === 'ENTRYPOINT').at(-1)
  t.same(JSON.parse(entrypoint?.args ?? 'null'), [binName], `ENTRYPOINT ["${binName}"] (exec form)`)
  t.notOk(
    runtime.instructions.some(i => i.keyword === 'CMD'),
    'with no CMD: arguments in a pod spec are flags',
  )
  const workdir = runtime.instructions.filter(i => i.keyword === 'WORKDIR').at(-1)?.args
  t.ok(workdir, 'the runtime has a WORKDIR')
  t.ok(
    runtime.instructions.some(i => i.keyword === 'RUN' && i.args.includes(`ln -s ${workdir}/${binPath} /usr/local/bin/${binName}`)),
    `/usr/local/bin/${binName} links to ${workdir}/${binPath}, the bin`,
  )
  const distCopy = runtime.instructions
    .filter(i => i.keyword === 'COPY')
    .map(copyOf)
    .find(c => c.from === 'build' && c.sources.includes(`/src/${binPath.split('/')[0]}`))
  t.ok(distCopy, `the runtime copies ${binPath.split('/')[0]} from the build stage`)
  t.ok(
    runtime.instructions.some(i => i.keyword === 'COPY' && copyOf(i).sources.includes('/src/package.json')),
    'and package.json (the agent reads its version there)',
  )
  const user = runtime.instructions.filter(i => i.keyword === 'USER').at(-1)?.args
  t.match(user, /^0(:0)?$/, 'it runs as UID 0 (Kubernetes adds capabilities to root only)')
  t.match(text, /OOMWATCH_PYSPY=\/usr\/local\/bin\/py-spy/, 'OOMWATCH_PYSPY names the copied py-spy')
})

t.test('its Node is an LTS line that CI tests', async t => {
  const tag = /^node:(\d+)-(\w+)-slim@sha256:[0-9a-f]{64}$/.exec(globalArgs.NODE_IMAGE ?? '')
  t.ok(tag, `NODE_IMAGE (${globalArgs.NODE_IMAGE}) is node:MAJOR-DEBIAN-slim@sha256:DIGEST`)
  const major = Number(tag?.[1])
  t.ok(Number.isInteger(major) && major % 2 === 0, `Node ${major} is a whole LTS major (even)`)
  t.ok(major >= 22, 'and not Node 20, past its end of life')
  const nodeStages = stages.filter(s => s.image.startsWith('node:'))
  t.equal(nodeStages.length, 3, 'build, deps and the runtime are Node stages')
  t.ok(
    nodeStages.every(s => s.image === globalArgs.NODE_IMAGE),
    'and every one is NODE_IMAGE',
  )
  t.equal(runtime.image, globalArgs.NODE_IMAGE, 'the runtime is that slim image')
  const ci = readFileSync(join(REPO, '.ci/run'), 'utf8')
  t.equal(Number(/^IMAGE_NODE_MAJOR=(\d+)$/m.exec(ci)?.[1]), major, '.ci/run runs the suite on it too')
  t.ok(major >= Number(/(\d+)/.exec(pkg.engines.node)?.[1]), `package.json engines (${pkg.engines.node}) admit it`)
})

t.test('py-spy comes from its pinned wheel, the version the tests use', async t => {
  const tested = /py-spy==([\d.]+)/.exec(pkg.scripts['setup:pyspy'] ?? '')?.[1]
  t.ok(tested, 'package.json setup:pyspy pins a version')
  t.equal(globalArgs.PYSPY_VERSION, tested, 'the image pins the same')
  t.ok(
    runtime.instructions.some(
      i =>
        i.keyword === 'COPY' && copyOf(i).from === 'pyspy' && copyOf(i).dest === '/usr/local/bin/py-spy' && copyOf(i).sources.length === 1,
    ),
    'its binary goes on to the runtime as /usr/local/bin/py-spy',
  )
})
