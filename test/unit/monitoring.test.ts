import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { IPodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor'
import type { IPrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule'
import t, { type Test } from 'tap'
import { parse, parseAllDocuments, stringify } from 'yaml'
import { checkManifest } from '../helpers/pod-manifest.js'

// deploy/podmonitor.yaml and deploy/prometheusrule.yaml, checked without a cluster: both
// against the Prometheus Operator's CRD schema, then the rules by Prometheus's own
// promtool: `check rules` (PromQL and templates parse), and `test rules` on the series of
// test/fixtures/monitoring/, where each alert must fire and where it must not.
const root = (path: string): string => fileURLToPath(new URL(`../../${path}`, import.meta.url))
const FIXTURES = root('test/fixtures/monitoring')

function load<T>(path: string): T {
  const docs = parseAllDocuments(readFileSync(root(path), 'utf8'))
  if (docs.length !== 1 || docs[0]!.errors.length > 0) throw new Error(`${path}: expected one valid YAML document`)
  return docs[0]!.toJS() as T
}
const podMonitor = load<IPodMonitor>('deploy/podmonitor.yaml')
const rule = load<IPrometheusRule>('deploy/prometheusrule.yaml')
type Rule = NonNullable<NonNullable<IPrometheusRule['spec']['groups']>[number]['rules']>[number]
const alerts: Rule[] = (rule.spec.groups ?? []).flatMap(g => g.rules ?? []).filter(r => r.alert !== undefined)

const PROMTOOL = process.env.PROMTOOL ?? 'promtool'
const found = spawnSync(PROMTOOL, ['--version'], { encoding: 'utf8' })
const MISSING =
  `${PROMTOOL} not found (${found.error?.message ?? `exit ${found.status}`}): run \`npm run setup:system\` ` +
  "(installs Debian's prometheus package, which ships promtool), or set PROMTOOL to its path"

/** Runs promtool in `dir`; its combined output, for the assertion's message. */
function promtool(dir: string, ...args: string[]): { status: number | null; output: string } {
  const run = spawnSync(PROMTOOL, args, { cwd: dir, encoding: 'utf8', timeout: 60_000 })
  return { status: run.status, output: `${run.stdout}${run.stderr}${run.error?.message ?? ''}` }
}

/** The PrometheusRule's groups as a Prometheus rules file, optionally changed first. */
function rulesFile(edit: (rule: Rule) => void = () => {}): string {
  const groups = structuredClone(rule.spec.groups ?? [])
  for (const group of groups) for (const r of group.rules ?? []) edit(r)
  return stringify({ groups })
}

/** A temp dir holding `rules.yaml` and a copy of the fixture `test`; removed at teardown. */
function workdir(t: Test, rules: string, test: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'oomwatch-rules-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'rules.yaml'), rules)
  copyFileSync(join(FIXTURES, test), join(dir, test))
  return dir
}

const withoutAnnotations = (r: Rule): void => {
  delete r.annotations
}

t.test('both files match the Prometheus Operator CRD schema', async t => {
  for (const doc of [podMonitor, rule]) {
    const problems = checkManifest(doc)
    t.same(problems.schema, [], `${doc.kind}: matches the schema`)
    t.same(problems.unknownKeys, [], `${doc.kind}: has no key the schema does not know`)
  }
  const misspelled = structuredClone(podMonitor) as unknown as { spec: Record<string, unknown> }
  misspelled.spec.podMetricEndpoints = misspelled.spec.podMetricsEndpoints
  delete misspelled.spec.podMetricsEndpoints
  t.match(checkManifest(misspelled).schema, [/podMetricsEndpoints/], 'the CRD schema is the one checked: a misspelled required key fails')
  const badFor = structuredClone(rule)
  badFor.spec.groups![0]!.rules![0]!.for = '5 minutes'
  t.match(checkManifest(badFor).schema, [/pattern/], 'a `for` that is not a Prometheus duration fails')
})

t.test('the PodMonitor scrapes the injected pods on the metrics port', async t => {
  t.same(podMonitor.spec.selector.matchLabels, { 'oomwatch.io/injected': 'true' }, 'selects the label `oomwatch inject` sets')
  t.same(podMonitor.spec.namespaceSelector, { any: true }, 'in every namespace')
  const [endpoint, ...others] = podMonitor.spec.podMetricsEndpoints ?? []
  t.same(others, [], 'one endpoint')
  t.match(
    endpoint,
    { port: 'oomwatch-prom', path: '/metrics', scheme: 'http', interval: '15s' },
    'port oomwatch-prom, /metrics, every 15 s',
  )
  t.same(endpoint?.relabelings, [{ action: 'labeldrop', regex: 'container' }], "drops the target's `container`, so oomwatch's own is kept")
})

t.test('every alert has a severity and tells the on-call engineer what to do', async t => {
  t.same(
    alerts.map(a => a.alert),
    [
      'OomwatchRunawayCaught',
      'OomwatchOOMKillAfterIncident',
      'OomwatchContainerOOMKilled',
      'OomwatchPyspyFailing',
      'OomwatchPyspyUnavailable',
      'OomwatchDegraded',
      'OomwatchContainerNearLimit',
    ],
    'the alerts, in order',
  )
  for (const a of alerts) {
    t.match(a.labels?.severity, /^(critical|warning)$/, `${a.alert}: severity`)
    t.ok(a.annotations?.summary, `${a.alert}: summary`)
    t.match(
      a.annotations?.description,
      /kubectl -n \{\{ \$labels\.namespace \}\} \S+ (pod\/)?\{\{ \$labels\.pod \}\}/,
      `${a.alert}: a command to run`,
    )
  }
  const severity = (name: string): string | undefined => alerts.find(a => a.alert === name)?.labels?.severity
  t.equal(severity('OomwatchOOMKillAfterIncident'), 'critical', 'a kill with its stack in hand pages')
  t.equal(severity('OomwatchContainerOOMKilled'), 'warning', 'any kill is lower')
})

t.test('promtool', async t => {
  if (found.status !== 0) return t.fail(MISSING)

  t.test('check rules: the PromQL and the templates parse', async t => {
    const dir = workdir(t, rulesFile(), 'alerts.test.yaml')
    const { status, output } = promtool(dir, 'check', 'rules', 'rules.yaml')
    t.equal(status, 0, 'promtool check rules passes', { output })
    t.match(output, `SUCCESS: ${alerts.length} rules found`)
  })

  t.test('test rules: each alert fires when it should, and not when it should not', async t => {
    const tests = parse(readFileSync(join(FIXTURES, 'alerts.test.yaml'), 'utf8')) as {
      tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[]
    }
    const cases = tests.tests.flatMap(test => test.alert_rule_test)
    for (const a of alerts) {
      t.ok(
        cases.some(c => c.alertname === a.alert && c.exp_alerts.length > 0),
        `${a.alert}: a case where it fires`,
      )
      t.ok(
        cases.some(c => c.alertname === a.alert && c.exp_alerts.length === 0),
        `${a.alert}: a case where it does not`,
      )
    }
    const dir = workdir(t, rulesFile(withoutAnnotations), 'alerts.test.yaml')
    const { status, output } = promtool(dir, 'test', 'rules', 'alerts.test.yaml')
    t.equal(status, 0, 'promtool test rules passes', { output })
  })

  t.test('test rules: the annotations, rendered, are what the fixture shows', async t => {
    const dir = workdir(t, rulesFile(), 'annotations.test.yaml')
    const { status, output } = promtool(dir, 'test', 'rules', 'annotations.test.yaml')
    t.equal(status, 0, 'promtool test rules passes', { output })
  })

  t.test('the tests catch what they are for', async t => {
    // Without "or appeared within the window", a pod's first incident goes unseen.
    const plainIncrease = rulesFile(r => {
      withoutAnnotations(r)
      if (r.alert === 'OomwatchRunawayCaught') r.expr = 'sum by (namespace, pod, reason) (increase(oomwatch_incidents_total[10m])) > 0'
    })
    let run = promtool(workdir(t, plainIncrease, 'alerts.test.yaml'), 'test', 'rules', 'alerts.test.yaml')
    t.not(run.status, 0, 'plain increase() fails the tests')
    t.match(run.output, /first incident.*\n.*alertname: OomwatchRunawayCaught/, 'on the first-incident case')
    // Without the incident condition, every OOM kill would claim a stack to read.
    const anyKill = rulesFile(r => {
      withoutAnnotations(r)
      if (r.alert === 'OomwatchOOMKillAfterIncident') r.expr = String(r.expr).split('and on')[0]!
    })
    run = promtool(workdir(t, anyKill, 'alerts.test.yaml'), 'test', 'rules', 'alerts.test.yaml')
    t.match(run.output, /without a prior incident.*\n.*alertname: OomwatchOOMKillAfterIncident/, 'a kill with no incident must not fire it')
    // A changed command in a description shows in the rendered annotations.
    const edited = rulesFile(r => {
      if (r.annotations?.description) r.annotations.description = r.annotations.description.replace('-c oomwatch', '-c sidecar')
    })
    run = promtool(workdir(t, edited, 'annotations.test.yaml'), 'test', 'rules', 'annotations.test.yaml')
    t.not(run.status, 0, 'an edited description fails the annotations test')
  })
})
