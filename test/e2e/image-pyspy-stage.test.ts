import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parseDockerfile, readDockerfile, REPO } from '../helpers/dockerfile.js'

// Runs docker/Dockerfile's py-spy stage script itself, without Docker: the real pip downloads
// the real wheel (from the package index pip is configured with, as `npm run setup:pyspy` does),
// then the script checks its hash and takes out the binary, the SBOM and the license. Only its
// two absolute paths move into a temporary directory. The amd64 wheel is the one this machine
// can fetch; the arm64 branch differs only in its platform tag and hash (dockerfile-pins.test.ts).
const { globalArgs, stages } = parseDockerfile(readDockerfile())
const script = stages.find(s => s.name === 'pyspy')?.instructions.find(i => i.keyword === 'RUN')?.args ?? ''
const VENV_BIN = join(REPO, '.venv/bin')

/** The stage's RUN under sh with the stage's ARGs as its environment, writing under `dir`. */
function runStage(dir: string, args: Record<string, string>) {
  const relocated = script.replaceAll('/tmp/wheel', join(dir, 'wheel')).replaceAll(' /out/', ` ${join(dir, 'out')}/`)
  return spawnSync('sh', ['-ec', relocated], {
    encoding: 'utf8',
    // The caller's environment keeps pip's own configuration (its index); no retries, as in
    // setup:pyspy, where an index is unreachable.
    env: {
      ...process.env,
      PIP_RETRIES: '0',
      PATH: `${VENV_BIN}:${process.env.PATH}`,
      PYSPY_VERSION: globalArgs.PYSPY_VERSION,
      PYSPY_WHEEL_SHA256_AMD64: globalArgs.PYSPY_WHEEL_SHA256_AMD64,
      PYSPY_WHEEL_SHA256_ARM64: globalArgs.PYSPY_WHEEL_SHA256_ARM64,
      ...args,
    },
  })
}

t.test('amd64: the pinned wheel passes its hash check, and the binary, SBOM and license come out', async t => {
  t.ok(existsSync(join(VENV_BIN, 'pip')), 'the project venv has pip (npm run setup:pyspy makes it)')
  t.ok(script.includes('/tmp/wheel') && script.includes(' /out/'), 'the script writes where this test expects')
  const dir = t.testdir()
  const run = runStage(dir, { TARGETARCH: 'amd64' })
  t.equal(run.status, 0, 'the stage succeeds', { stderr: run.stderr })
  t.match(run.stdout, /: OK$/m, 'sha256sum says the wheel is the pinned one')
  const binary = join(dir, 'out/bin/py-spy')
  t.equal(statSync(binary).mode & 0o777, 0o755, 'the binary is executable')
  t.equal(spawnSync(binary, ['--version'], { encoding: 'utf8' }).stdout.trim(), `py-spy ${globalArgs.PYSPY_VERSION}`, 'and is that version')
  const sbom = JSON.parse(readFileSync(join(dir, 'out/sbom/py-spy.cyclonedx.json'), 'utf8')) as {
    bomFormat: string
    metadata: { component: { name: string; version: string } }
    components: unknown[]
  }
  t.equal(sbom.bomFormat, 'CycloneDX', 'the SBOM is CycloneDX')
  t.match(sbom.metadata.component, { name: 'py-spy', version: globalArgs.PYSPY_VERSION }, 'of this py-spy')
  t.ok(sbom.components.length > 10, `listing its Rust crates (${sbom.components.length})`)
  t.match(readFileSync(join(dir, 'out/license/LICENSE'), 'utf8'), /^The MIT License/, 'the license is MIT')
})

t.test('a wheel that does not match its hash stops the build before it is unzipped', async t => {
  const dir = t.testdir()
  const run = runStage(dir, { TARGETARCH: 'amd64', PYSPY_WHEEL_SHA256_AMD64: '0'.repeat(64) })
  t.not(run.status, 0, 'the stage fails')
  t.match(run.stdout + run.stderr, /FAILED/, 'sha256sum says why')
  t.notOk(existsSync(join(dir, 'wheel/unpacked')), 'nothing was unzipped')
  t.notOk(existsSync(join(dir, 'out')), 'nothing goes on')
})

t.test('an architecture without a pinned hash is refused, saying what to add', async t => {
  const dir = t.testdir()
  const run = runStage(dir, { TARGETARCH: 's390x' })
  t.equal(run.status, 1, 'the stage fails')
  t.match(run.stderr, /no pinned py-spy [\d.]+ wheel hash for 's390x': add its sha256 to docker\/Dockerfile/, 'naming the fix')
  t.notOk(existsSync(join(dir, 'wheel')), 'before downloading anything')
})
