import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { parseDockerfile, readDockerfile, REPO, stageArgs } from '../helpers/dockerfile.js'

// .github/workflows/image.yml cannot run here (no Docker engine, no GitHub): this checks it as
// data against docker/Dockerfile, so the two cannot drift apart unseen.
interface Step {
  name?: string
  id?: string
  if?: string
  uses?: string
  run?: string
  with?: Record<string, string | boolean>
}
interface Workflow {
  on: { push?: { tags?: string[] }; pull_request?: { paths?: string[] } }
  permissions: Record<string, string>
  jobs: Record<string, { 'runs-on': string; permissions: Record<string, string>; steps: Step[] }>
}
const source = readFileSync(join(REPO, '.github/workflows/image.yml'), 'utf8')
const workflow = parse(source) as Workflow
const [job] = Object.values(workflow.jobs)
const steps = job?.steps ?? []
const action = (name: string) => steps.find(s => s.uses?.split('@')[0] === name)
const build = action('docker/build-push-action')
const { stages } = parseDockerfile(readDockerfile())
const runtime = stages.at(-1)!

/** KEY=VALUE lines of a multi-line action input. */
const pairs = (text: string | boolean | undefined) =>
  Object.fromEntries(
    String(text ?? '')
      .split('\n')
      .filter(line => line.includes('='))
      .map(line => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  )

t.test('it publishes on a v* tag, and only builds on a pull request', async t => {
  t.same(workflow.on.push?.tags, ['v*'], 'a v* tag triggers it')
  t.ok(workflow.on.pull_request?.paths?.includes('docker/**'), 'so does a pull request that touches docker/')
  t.same(workflow.permissions, { contents: 'read' }, 'read-only by default')
  t.same(job?.permissions, { contents: 'read', packages: 'write' }, 'the job may write packages (ghcr.io) and nothing else')
  t.equal(build?.with?.push, "${{ github.ref_type == 'tag' }}", 'it pushes on a tag only')
  const login = action('docker/login-action')
  t.equal(login?.if, "github.ref_type == 'tag'", 'and logs in on a tag only')
  t.equal(login?.with?.registry, 'ghcr.io', 'to ghcr.io')
  t.equal(login?.with?.password, '${{ secrets.GITHUB_TOKEN }}', "with the job's own token")
  t.match(
    String(build?.with?.tags),
    /^\$\{\{ steps\.meta\.outputs\.image \}\}:\$\{\{ steps\.meta\.outputs\.version \}\}$/,
    'tagged IMAGE:VERSION',
  )
  const meta = steps.find(s => s.id === 'meta')?.run ?? ''
  t.match(meta, /image=ghcr\.io\/\$\{GITHUB_REPOSITORY,,\}/, 'IMAGE is ghcr.io/owner/repo, lower-cased as registries require')
  t.match(meta, /"\$REF_NAME" != "v\$version"/, "a tag that is not v + package.json's version fails the job")
})

t.test('it builds docker/Dockerfile for amd64 and arm64, the arches the Dockerfile pins', async t => {
  t.ok(action('docker/setup-qemu-action'), 'QEMU, for the arm64 stage run on an amd64 runner')
  t.ok(action('docker/setup-buildx-action'), 'buildx')
  t.ok(steps.indexOf(action('docker/setup-buildx-action')!) < steps.indexOf(build!), 'set up before the build')
  t.equal(build?.with?.file, 'docker/Dockerfile', 'the Dockerfile')
  t.equal(build?.with?.context, '.', 'with the repository root as context')
  const platforms = String(build?.with?.platforms).split(',')
  t.same(platforms, ['linux/amd64', 'linux/arm64'], 'linux/amd64 and linux/arm64')
  const pyspyRun = stages.find(s => s.name === 'pyspy')?.instructions.find(i => i.keyword === 'RUN')?.args ?? ''
  const pinned = [...pyspyRun.matchAll(/(\w+)\) platform=/g)].map(m => `linux/${m[1]}`)
  t.same(platforms.sort(), pinned.sort(), 'exactly the arches with a py-spy wheel hash in the Dockerfile')
})

t.test('its build args are the OCI label args of the Dockerfile', async t => {
  const args = pairs(build?.with?.['build-args'])
  t.same(Object.keys(args).sort(), ['CREATED', 'REVISION', 'SOURCE', 'VERSION'], 'VERSION, REVISION, CREATED and SOURCE')
  const declared = stageArgs(runtime)
  for (const name of Object.keys(args)) t.ok(name in declared, `${name} is an ARG of the runtime stage`)
  t.equal(args.REVISION, '${{ github.sha }}', 'REVISION is the commit')
  t.equal(args.CREATED, '${{ steps.meta.outputs.created }}', 'CREATED is computed')
  t.match(steps.find(s => s.id === 'meta')?.run, /created=\$\(git log -1 --format=%cI\)/, "as the commit's time (RFC 3339)")
  t.equal(args.SOURCE, '${{ github.server_url }}/${{ github.repository }}', "SOURCE is the repository's URL")
  const annotations = Object.keys(pairs(build?.with?.annotations))
  t.ok(
    annotations.length > 0 && annotations.every(a => a.startsWith('index:org.opencontainers.image.')),
    'the multi-arch index is annotated too',
  )
  t.equal(build?.with?.sbom, true, 'with an SBOM attestation')
  t.equal(build?.with?.provenance, 'mode=max', 'and provenance')
})

t.test('every action is pinned by commit, its version in a comment', async t => {
  const uses = [...source.matchAll(/uses: (\S+)(.*)$/gm)]
  t.equal(uses.length, steps.filter(s => s.uses).length, 'every uses: line is seen')
  for (const [, ref = '', comment = ''] of uses) {
    t.match(ref, /^[\w-]+\/[\w-]+@[0-9a-f]{40}$/, `${ref.split('@')[0]} pinned by a full commit hash`)
    t.match(comment, /^ # v\d+\.\d+\.\d+$/, `with the tag it is (${comment.trim()})`)
  }
})
