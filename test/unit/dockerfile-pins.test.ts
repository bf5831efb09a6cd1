import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { copyOf, labelsOf, parseDockerfile, readDockerfile, REPO, stageArgs, type Stage } from '../helpers/dockerfile.js'

// What docker/Dockerfile pins and ships beside the agent: base images by digest, one py-spy
// wheel hash per architecture, the wheel's SBOM, and the OCI labels. test/e2e/image-pyspy-stage
// runs the py-spy stage's own script on a real wheel.
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
  name: string
  version: string
  description: string
  license: string
}
const { globalArgs, stages } = parseDockerfile(readDockerfile())
const runtime = stages.at(-1)!
const pyspy = stages.find(s => s.name === 'pyspy')!
const stageNames = new Set(stages.flatMap(s => (s.name ? [s.name] : [])))

/** A registry image that a rebuild resolves to the same bytes: REPO:TAG@sha256:DIGEST, tag kept for humans. */
const pinnedByDigest = (image: string) => /^[a-z0-9][\w./-]*:[\w][\w.-]*@sha256:[0-9a-f]{64}$/.test(image)

/** Every ${NAME} a stage's instructions of `keyword` use. */
const usedArgs = (stage: Stage, keyword: string) =>
  stage.instructions.filter(i => i.keyword === keyword).flatMap(i => [...i.args.matchAll(/\$\{(\w+)[^}]*\}/g)].map(m => m[1]!))

t.test('every base image is pinned by digest, with its tag beside it', async t => {
  t.ok(pinnedByDigest('node:24-bookworm-slim@sha256:' + 'a'.repeat(64)), 'the check accepts tag@digest')
  for (const loose of ['node:24-bookworm-slim', 'node@sha256:' + 'a'.repeat(64), 'node:24@sha256:abc', ''])
    t.notOk(pinnedByDigest(loose), `and refuses ${JSON.stringify(loose)}`)
  const external = stages.filter(s => !stageNames.has(s.image))
  t.equal(external.length, stages.length, 'no stage builds on another stage by FROM')
  for (const stage of external) t.ok(pinnedByDigest(stage.image), `FROM ${stage.image} (${stage.name ?? 'runtime'})`)
  t.match(globalArgs.NODE_IMAGE, /^node:24-bookworm-slim@/, 'Node: node:24-bookworm-slim')
  t.match(globalArgs.PYTHON_IMAGE, /^python:3\.12-slim-bookworm@/, 'the wheel is unpacked in python:3.12-slim-bookworm')
  t.match(readDockerfile(), /docker buildx imagetools inspect node:24-bookworm-slim/, 'a comment says how to re-check and bump a digest')
})

t.test('only the runtime stage runs on the target platform', async t => {
  for (const name of ['build', 'deps', 'pyspy'])
    t.equal(stages.find(s => s.name === name)?.platform, '$BUILDPLATFORM', `${name}: its output is the same for every target`)
  t.equal(runtime.platform, undefined, 'the runtime is the target platform')
  const check = runtime.instructions.filter(i => i.keyword === 'RUN').at(-1)?.args ?? ''
  t.match(check, /\bpy-spy --version\b/, 'where py-spy --version proves the binary is the target architecture')
})

t.test('one py-spy wheel hash per architecture, for the pinned version', async t => {
  const script = pyspy.instructions.find(i => i.keyword === 'RUN')?.args ?? ''
  const branches = Object.fromEntries(
    [...script.matchAll(/(\w+)\)\s*platform=(\S+)\s+sum="\$\{(\w+)\}"\s*;;/g)].map(m => [m[1]!, { platform: m[2]!, arg: m[3]! }]),
  )
  t.same(Object.keys(branches).sort(), ['amd64', 'arm64'], 'the TARGETARCH switch has amd64 and arm64')
  const wheelArch = { amd64: 'x86_64', arm64: 'aarch64' } as const
  for (const [arch, machine] of Object.entries(wheelArch)) {
    const branch = branches[arch]
    if (!branch) {
      t.fail(`no ${arch} branch`)
      continue
    }
    t.equal(branch.platform, `manylinux2014_${machine}`, `${arch} downloads the ${machine} wheel`)
    t.equal(branch.arg, `PYSPY_WHEEL_SHA256_${arch.toUpperCase()}`, `and checks it against PYSPY_WHEEL_SHA256_${arch.toUpperCase()}`)
    t.match(globalArgs[branch.arg], /^[0-9a-f]{64}$/, 'a sha256 set before the first FROM')
    t.equal(stageArgs(pyspy)[branch.arg], '', 'and declared in the stage, so its value reaches it')
  }
  t.not(globalArgs.PYSPY_WHEEL_SHA256_AMD64, globalArgs.PYSPY_WHEEL_SHA256_ARM64, 'two different wheels')
  // The amd64 hash is also the one the pip mirror's index publishes (see the e2e stage test);
  // both are PyPI's: https://pypi.org/pypi/py-spy/0.4.2/json.
  t.equal(globalArgs.PYSPY_WHEEL_SHA256_AMD64, 'aeb0323409199c785f730645e9f4bb7a7b9ca2c481f2c331a55642b5d13fa52f')
  t.equal(globalArgs.PYSPY_WHEEL_SHA256_ARM64, '142887e984a4e541071c99a4401ff8c3770f255d329dbd0f64e8c1dd51882cce')
  t.match(
    script,
    /\*\) echo "[^"]*add its sha256 to docker\/Dockerfile" >&2; exit 1 ;;/,
    'any other architecture stops the build, saying what to add',
  )
  t.match(script, /sha256sum -c -/, 'the download is checked before it is unzipped')
  t.ok(script.indexOf('sha256sum -c') < script.indexOf('zipfile -e'), 'in that order')
})

t.test("the wheel's SBOM and license go on beside the binary", async t => {
  const script = pyspy.instructions.find(i => i.keyword === 'RUN')?.args ?? ''
  const info = /info="([^"]+)"/.exec(script)?.[1] ?? ''
  t.match(info, /\/py_spy-\$\{PYSPY_VERSION\}\.dist-info$/, "${info} is the wheel's dist-info")
  const installs = Object.fromEntries(
    [...script.matchAll(/install -D -m \d+ "([^"]+)" (\S+)/g)].map(m => [
      m[2]!,
      m[1]!.replace('${info}', info).replace(/.*\.(dist-info|data)\//, '$1/'),
    ]),
  )
  t.same(
    installs,
    {
      '/out/bin/py-spy': 'data/scripts/py-spy',
      '/out/sbom/py-spy.cyclonedx.json': 'dist-info/sboms/py-spy.cyclonedx.json',
      '/out/license/LICENSE': 'dist-info/licenses/LICENSE',
    },
    'the stage takes the binary, the CycloneDX SBOM and the license out of the wheel',
  )
  const copies = runtime.instructions
    .filter(i => i.keyword === 'COPY')
    .map(copyOf)
    .filter(c => c.from === 'pyspy')
  t.same(
    copies.map(c => [c.sources.join(' '), c.dest]),
    [
      ['/out/bin/py-spy', '/usr/local/bin/py-spy'],
      ['/out/sbom', '/usr/local/share/sbom/py-spy'],
      ['/out/license', '/usr/local/share/licenses/py-spy'],
    ],
    'and the runtime has them at /usr/local/bin/py-spy, /usr/local/share/sbom/py-spy/ and /usr/local/share/licenses/py-spy/',
  )
})

t.test('OCI labels: from package.json, and from build args for the commit, date and source', async t => {
  const labels = labelsOf(runtime)
  const oci = (key: string) => labels[`org.opencontainers.image.${key}`]
  t.equal(oci('title'), pkg.name, 'title is the package name')
  t.equal(oci('description'), pkg.description, 'description is the package description')
  t.equal(oci('licenses'), pkg.license, 'licenses is the package license')
  t.equal(oci('version'), '${VERSION}', 'version from VERSION')
  t.equal(stageArgs(runtime).VERSION, pkg.version, `whose default is package.json's (${pkg.version})`)
  for (const [key, arg] of [
    ['revision', 'REVISION'],
    ['created', 'CREATED'],
    ['source', 'SOURCE'],
  ] as const) {
    t.equal(oci(key), `\${${arg}}`, `${key} from the ${arg} build arg`)
  }
  t.equal(oci('base.name'), '${NODE_IMAGE}', 'base.name is the pinned base image')
  const declared = stageArgs(runtime)
  t.same(
    usedArgs(runtime, 'LABEL').filter(arg => !(arg in declared)),
    [],
    'every arg a label uses is declared in the runtime stage (an undeclared one is silently empty)',
  )
  t.same(
    Object.keys(labels).filter(key => !key.startsWith('org.opencontainers.image.')),
    [],
    'and there are no other labels',
  )
})
