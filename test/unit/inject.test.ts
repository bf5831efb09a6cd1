import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { runInject } from '../../src/inject/command.js'
import { injectManifests, InjectError } from '../../src/inject/inject.js'
import { checkManifest } from '../helpers/pod-manifest.js'

const FIXTURES = fileURLToPath(new URL('../fixtures/inject/', import.meta.url))
const OPTIONS = { tokenSecret: 'oomwatch-token', native: true, image: 'oomwatch:0.1.0', version: '0.1.0' }
/** Each kind's input, the options it was injected with, and its golden output (reviewed by hand). */
const CASES: { file: string; container?: string }[] = [
  { file: 'deployment.yaml' },
  { file: 'statefulset.yaml', container: 'worker' },
  { file: 'daemonset.yaml' },
  { file: 'job.yaml' },
  { file: 'cronjob.yaml' },
  { file: 'pod.yaml' },
  { file: 'list.json' },
]

const read = (name: string) => readFileSync(`${FIXTURES}${name}`, 'utf8')
const golden = (file: string) => file.replace(/\.(yaml|json)$/, '.injected.$1')
/** The Kubernetes objects of a manifest's text (a List's items one by one). */
function objects(text: string): unknown[] {
  return parseAllDocuments(text).flatMap(doc => {
    const value = doc.toJS() as { kind?: string; items?: unknown[] }
    return value.kind === 'List' ? (value.items ?? []) : [value]
  })
}
/** The pod spec of an injected object of the kinds in CASES. */
function podSpec(object: unknown): Record<string, unknown> {
  type Template = { template: { spec: Record<string, unknown> } }
  const o = object as { kind: string; spec: Record<string, unknown> & Template & { jobTemplate: { spec: Template } } }
  if (o.kind === 'Pod') return o.spec
  if (o.kind === 'CronJob') return o.spec.jobTemplate.spec.template.spec
  return o.spec.template.spec
}

for (const { file, container } of CASES) {
  t.test(`${file}: its golden output, valid, and the same when injected again`, async t => {
    const options = { ...OPTIONS, container }
    const out = injectManifests(read(file), options, file)
    t.equal(out, read(golden(file)), `${golden(file)} is what inject writes`)
    for (const object of objects(out)) {
      const problems = checkManifest(object)
      t.same(problems, { schema: [], unknownKeys: [] }, `${(object as { kind: string }).kind}: valid against the Kubernetes schema`)
    }
    t.equal(injectManifests(out, options, file), out, 'idempotent')
    for (const line of read(file)
      .split('\n')
      .filter(line => line.includes('#')))
      t.ok(out.includes(line), `comment kept: ${line.trim()}`)
  })
}

t.test(
  'what it adds: the process namespace, the sidecar first among the init containers, its volumes, the app its limit comes from',
  async t => {
    const [deployment] = objects(injectManifests(read('statefulset.yaml'), { ...OPTIONS, container: 'worker' }))
    const spec = podSpec(deployment) as {
      shareProcessNamespace: boolean
      initContainers: {
        name: string
        restartPolicy?: string
        env: { name: string; valueFrom?: unknown }[]
        readinessProbe?: unknown
        startupProbe?: unknown
      }[]
      volumes: { name: string; secret?: { secretName: string } }[]
    }
    t.equal(spec.shareProcessNamespace, true)
    t.same(
      spec.initContainers.map(c => c.name),
      ['oomwatch', 'migrate'],
      'first: it then watches the init containers after it',
    )
    const sidecar = spec.initContainers[0]!
    t.equal(sidecar.restartPolicy, 'Always', 'a native sidecar')
    t.notOk(
      sidecar.readinessProbe ?? sidecar.startupProbe,
      'fail-open: no probe that could hold the app or take the pod out of its Service',
    )
    t.same(sidecar.env.find(e => e.name === 'OOMWATCH_MEMORY_LIMIT')?.valueFrom, {
      resourceFieldRef: { containerName: 'worker', resource: 'limits.memory', divisor: '1' },
    })
    t.same(spec.volumes.find(v => v.name === 'oomwatch-token')?.secret?.secretName, 'oomwatch-token')
  },
)

t.test('--classic: a plain container after the app, with no restartPolicy', async t => {
  const out = injectManifests(read('deployment.yaml'), { ...OPTIONS, native: false })
  const spec = podSpec(objects(out)[0]) as { containers: { name: string; restartPolicy?: string }[]; initContainers?: unknown }
  t.same(
    spec.containers.map(c => c.name),
    ['web', 'oomwatch'],
  )
  t.notOk(spec.containers[1]!.restartPolicy)
  t.notOk(spec.initContainers)
  t.same(checkManifest(objects(out)[0]), { schema: [], unknownKeys: [] })
  const native = injectManifests(out, OPTIONS)
  t.same(
    (podSpec(objects(native)[0]) as { containers: { name: string }[] }).containers.map(c => c.name),
    ['web'],
    'injected again as native: moved, not doubled',
  )
})

t.test('refusals name the template and what to do', async t => {
  const deployment = read('deployment.yaml')
  const cases: [string, string, RegExp][] = [
    [
      'hostPID',
      deployment.replace('    spec:\n      containers:', '    spec:\n      hostPID: true\n      containers:'),
      /\(Deployment web\): hostPID is true/,
    ],
    [
      'shareProcessNamespace false',
      deployment.replace('    spec:\n      containers:', '    spec:\n      shareProcessNamespace: false\n      containers:'),
      /shareProcessNamespace is false.*remove that line/,
    ],
    ['no container', 'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: []\n', /\(Pod p\): no container to watch/],
    [
      'a container of its name',
      deployment.replace('- name: web', '- name: oomwatch'),
      /a container named "oomwatch" is already there, not added by oomwatch inject/,
    ],
    [
      'a volume of its names',
      deployment.replace('- name: data', '- name: oomwatch-journal'),
      /a volume named oomwatch-\* is already there/,
    ],
    ['not YAML', 'kind: [unclosed\n', /document 1: not valid YAML/],
    ['not JSON', '{"kind": ', /not valid JSON/],
  ]
  for (const [what, text, message] of cases) t.throws(() => injectManifests(text, OPTIONS), { name: 'Error', message }, what)
  t.throws(
    () => injectManifests(deployment, { ...OPTIONS, container: 'api' }),
    new InjectError('stdin, document 1 (Deployment web): no container named "api" (--container); it has web'),
  )
})

t.test('the command: files and stdin, exit 2 with the reason and nothing written', async t => {
  const run = (argv: string[], stdin = '') => {
    const out: string[] = []
    const err: string[] = []
    const code = runInject(argv, '0.1.0', {
      readStdin: () => stdin,
      stdout: text => void out.push(text),
      stderr: text => void err.push(text),
    })
    return { code, out: out.join(''), err: err.join('') }
  }
  const fromStdin = run(['--token-secret', 'oomwatch-token'], read('deployment.yaml'))
  t.same(fromStdin, { code: 0, out: read('deployment.injected.yaml'), err: '' })
  const files = run(['--token-secret', 'oomwatch-token', `${FIXTURES}job.yaml`, `${FIXTURES}daemonset.yaml`])
  t.equal(files.code, 0)
  t.equal(files.out, `${read('job.injected.yaml')}---\n${read('daemonset.injected.yaml')}`, 'several files: one stream of documents')
  t.match(run([], read('deployment.yaml')), { code: 2, out: '', err: /--token-secret NAME is required/ })
  t.match(run(['--token-secret', 's', '--native', '--classic']), { code: 2, err: /exclude each other/ })
  t.match(run(['--token-secret', 's', '--bogus']), { code: 2, err: /Unknown option '--bogus'.*see oomwatch inject --help/ })
  t.match(run(['--token-secret', 's', '/no/such/file.yaml']), { code: 2, out: '', err: /cannot read \/no\/such\/file\.yaml: ENOENT/ })
  t.match(
    run(['--token-secret', 's'], `${read('deployment.yaml')}---\n${read('deployment.yaml').replace('- name: web', '- name: oomwatch')}`),
    { code: 2, out: '', err: /document 2 .*already there/ },
    'a refusal in a later document: nothing is written, not a half-injected stream',
  )
  const help = run(['--help'])
  t.match(help, { code: 0, out: /kubectl get deploy\/x -o yaml \\\n +\| oomwatch inject --token-secret/ })
  for (const line of help.out.split('\n')) t.ok(line.length <= 80, `help fits 80 columns: ${line}`)
})

t.test('each app container is named in its own environment, and the pod labelled for the PodMonitor', async t => {
  const [statefulset] = objects(injectManifests(read('statefulset.yaml'), { ...OPTIONS, container: 'worker' }))
  type Env = { name: string; value?: string }[]
  const spec = podSpec(statefulset) as { containers: { name: string; env?: Env }[]; initContainers: { name: string; env?: Env }[] }
  for (const c of spec.containers) {
    t.same(
      c.env?.filter(e => e.name === 'OOMWATCH_CONTAINER_NAME'),
      [{ name: 'OOMWATCH_CONTAINER_NAME', value: c.name }],
      `${c.name}: its name, once (the agent labels its metrics with it)`,
    )
  }
  const sidecar = spec.initContainers.find(c => c.name === 'oomwatch')!
  t.notOk(
    sidecar.env?.some(e => e.name === 'OOMWATCH_CONTAINER_NAME'),
    'not the sidecar',
  )
  t.same(
    sidecar.env?.filter(e => ['OOMWATCH_METRICS_PORT', 'OOMWATCH_FAIL_OPEN'].includes(e.name)),
    [
      { name: 'OOMWATCH_METRICS_PORT', value: '9643' },
      { name: 'OOMWATCH_FAIL_OPEN', value: 'true' },
    ],
    'metrics on their own port, and a start that cannot finish stays up degraded',
  )
  const labels = (statefulset as { spec: { template: { metadata: { labels: Record<string, string> } } } }).spec.template.metadata.labels
  t.equal(labels['oomwatch.io/injected'], 'true')
})
