import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment'
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap'
import type { IContainer } from 'kubernetes-models/v1/Container'
import type { INamespace } from 'kubernetes-models/v1/Namespace'
import type { ISecret } from 'kubernetes-models/v1/Secret'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { VERSION } from '../../src/agent.js'
import { loadConfig, SETTINGS, type Config } from '../../src/config.js'
import { runInject } from '../../src/inject/command.js'
import { parseQuantity } from '../../src/quantity.js'
import { checkManifest } from '../helpers/pod-manifest.js'
import { PYTHON } from '../helpers/python.js'

// sidecar.yaml, checked without a cluster: that it is what `oomwatch inject` writes for the
// demo app (so the two cannot drift), every document against the Kubernetes schema (types
// and misspelled keys), then the fields that make the sidecar see into its neighbour, and
// the agent's own configuration as the real parser reads it from the env.
const MANIFEST = fileURLToPath(new URL('../../sidecar.yaml', import.meta.url))
const DEMO_APP = fileURLToPath(new URL('../../deploy/demo-app.yaml', import.meta.url))

t.test("sidecar.yaml is the injector's output on deploy/demo-app.yaml, as its header's command writes it", async t => {
  const header = /^# +npx oomwatch inject (.*) < deploy\/demo-app\.yaml > sidecar\.yaml$/m.exec(readFileSync(DEMO_APP, 'utf8'))
  t.ok(header, 'the demo app says how sidecar.yaml is made')
  let out = ''
  const io = { readStdin: () => readFileSync(DEMO_APP, 'utf8'), stdout: (text: string) => void (out += text), stderr: () => {} }
  const code = runInject(header![1]!.split(' '), VERSION, io)
  t.equal(code, 0)
  t.equal(readFileSync(MANIFEST, 'utf8'), out, 'equal, byte for byte: regenerate it with that command after changing either')
})

const parsed = parseAllDocuments(readFileSync(MANIFEST, 'utf8'))
const docs = parsed.map(doc => doc.toJS() as { apiVersion?: string; kind?: string; metadata?: { name?: string } })

t.test('sidecar.yaml is valid YAML and every document is a valid Kubernetes object', async t => {
  t.same(
    parsed.flatMap(doc => doc.errors.map(e => e.message)),
    [],
    'no YAML errors',
  )
  t.ok(docs.length >= 2, 'it has documents')
  for (const doc of docs) {
    const problems = checkManifest(doc)
    t.same(problems.schema, [], `${doc.kind} ${doc.metadata?.name}: matches the schema`)
    t.same(problems.unknownKeys, [], `${doc.kind} ${doc.metadata?.name}: has no key the schema does not know`)
  }
})

t.test('the checks catch what they are for', async t => {
  const deployment = structuredClone(docs.find(d => d.kind === 'Deployment')) as IDeployment
  const pod = deployment.spec!.template.spec!
  ;(pod as unknown as Record<string, unknown>).shareProcessNamespaces = true
  ;(pod.initContainers![0]!.securityContext as Record<string, unknown>).readOnlyRootFileSystem = true
  t.same(
    checkManifest(deployment).unknownKeys,
    ['/spec/template/spec/initContainers/0/securityContext/readOnlyRootFileSystem', '/spec/template/spec/shareProcessNamespaces'],
    'a misspelled key is reported with its path',
  )
  const typed = structuredClone(docs.find(d => d.kind === 'Deployment')) as IDeployment
  ;(typed.spec!.template.spec!.initContainers![0]!.securityContext as Record<string, unknown>).runAsUser = '0'
  t.match(checkManifest(typed).schema, [/runAsUser must be integer/], 'a wrong type is reported')
  t.throws(
    () => checkManifest({ apiVersion: 'example.com/v1', kind: 'Widget' }),
    /no schema model/,
    'a kind without a model is not passed unchecked',
  )
})

const deployment = docs.find(d => d.kind === 'Deployment') as IDeployment
const podSpec = deployment.spec!.template.spec!
const sidecar = podSpec.initContainers?.find(c => c.name === 'oomwatch') as IContainer
// No Secret is shipped: the README creates it, as `kubectl create secret generic oomwatch-token --from-literal=token="$(openssl rand -hex 32)"` would.
const secrets: ISecret[] = [
  {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'oomwatch-token' },
    type: 'Opaque',
    stringData: { token: randomBytes(32).toString('hex') },
  },
]

/**
 * A Secret volume of `container` as the kubelet mounts it, written under `root`: each key a
 * file. Returns the path in `root` that stands for `path` in the container, when `path` lies
 * in such a volume.
 */
function mountSecret(container: IContainer, path: string, root: string): string | undefined {
  const mount = container.volumeMounts?.find(m => path.startsWith(`${m.mountPath}/`))
  const secretName = podSpec.volumes?.find(v => v.name === mount?.name)?.secret?.secretName
  const secret = secrets.find(s => s.metadata?.name === secretName)
  if (!mount || !secret) return undefined
  const dir = join(root, mount.name)
  mkdirSync(dir, { recursive: true })
  for (const [key, value] of Object.entries(secret.stringData ?? {})) writeFileSync(join(dir, key), value)
  for (const [key, value] of Object.entries(secret.data ?? {})) writeFileSync(join(dir, key), Buffer.from(value, 'base64'))
  return join(dir, path.slice(mount.mountPath.length + 1))
}

/** The sidecar's environment as the kubelet would set it: Downward API and Secret references resolved. */
function resolveEnv(container: IContainer): Record<string, string> {
  const env: Record<string, string> = {}
  for (const entry of container.env ?? []) {
    const from = entry.valueFrom
    if (entry.value !== undefined) env[entry.name] = entry.value
    else if (from?.secretKeyRef) {
      const secret = secrets.find(s => s.metadata?.name === from.secretKeyRef!.name)
      const value =
        secret?.stringData?.[from.secretKeyRef.key] ?? Buffer.from(secret?.data?.[from.secretKeyRef.key] ?? '', 'base64').toString()
      if (value) env[entry.name] = value
    } else if (from?.resourceFieldRef) {
      const { containerName, resource, divisor } = from.resourceFieldRef
      const target = [...podSpec.containers, ...(podSpec.initContainers ?? [])].find(c => c.name === containerName)
      const [kind, name] = resource.split('.') as ['limits' | 'requests', string]
      const quantity = target?.resources?.[kind]?.[name]
      if (quantity !== undefined)
        env[entry.name] = String(Math.ceil(parseQuantity(String(quantity)) / parseQuantity(String(divisor ?? '1'))))
    }
  }
  return env
}

t.test('the pod shape: one PID namespace, oomwatch as a native sidecar', async t => {
  t.equal(podSpec.shareProcessNamespace, true, 'shareProcessNamespace: true, so the sidecar sees the app')
  t.equal(podSpec.enableServiceLinks, false, 'no service links (a Service named oomwatch would set OOMWATCH_PORT=tcp://...)')
  t.ok(sidecar, 'oomwatch is an init container')
  t.equal(sidecar.restartPolicy, 'Always', 'with restartPolicy Always: a native sidecar')
  t.notOk(
    podSpec.containers.some(c => c.name === 'oomwatch'),
    'and not also a plain container',
  )
  t.equal(sidecar.command, undefined, "the image's own command runs (oomwatch)")
  t.match(sidecar.image, /oomwatch/, 'the image is oomwatch')
})

t.test("the sidecar's privileges: UID 0, SYS_PTRACE and nothing else", async t => {
  const sc = sidecar.securityContext!
  t.equal(sc.runAsUser, 0, 'UID 0: Kubernetes adds capabilities to root only')
  t.same(sc.capabilities?.drop, ['ALL'], 'every capability dropped')
  t.same(sc.capabilities?.add, ['SYS_PTRACE'], 'but SYS_PTRACE')
  t.equal(sc.allowPrivilegeEscalation, false, 'allowPrivilegeEscalation: false')
  t.equal(sc.readOnlyRootFilesystem, true, 'readOnlyRootFilesystem: true')
  t.not(sc.privileged, true, 'not privileged')
  const namespace = docs.find(d => d.kind === 'Namespace' && d.metadata?.name === deployment.metadata?.namespace) as INamespace | undefined
  t.ok(namespace, 'the namespace is in the file')
  t.equal(
    namespace?.metadata?.labels?.['pod-security.kubernetes.io/enforce'],
    'privileged',
    'and enforces the privileged Pod Security level',
  )
  // The baseline level's allowed additions (Pod Security Standards, "Capabilities").
  const baseline = [
    'AUDIT_WRITE',
    'CHOWN',
    'DAC_OVERRIDE',
    'FOWNER',
    'FSETID',
    'KILL',
    'MKNOD',
    'NET_BIND_SERVICE',
    'SETFCAP',
    'SETGID',
    'SETPCAP',
    'SETUID',
    'SYS_CHROOT',
  ]
  t.notOk(baseline.includes('SYS_PTRACE'), 'because baseline does not allow adding SYS_PTRACE (and restricted forbids UID 0)')
})

t.test('no token is shipped: the Secret is made by a command, mounted as a file, optional', async t => {
  t.notOk(
    docs.some(d => d.kind === 'Secret'),
    "no Secret in the file: a shipped token would be everyone's",
  )
  t.notOk(
    sidecar.env?.some(e => e.valueFrom?.secretKeyRef),
    'no Secret in a variable: it is a mounted file, updated in place when the Secret changes',
  )
  const path = resolveEnv(sidecar).OOMWATCH_TOKEN_FILE ?? ''
  t.match(path, /^\/var\/run\/secrets\//, 'the token file')
  const mount = sidecar.volumeMounts?.find(m => path.startsWith(`${m.mountPath}/`))
  t.equal(mount?.readOnly, true, 'in a read-only mount')
  const volume = podSpec.volumes?.find(v => v.name === mount?.name)?.secret
  t.equal(volume?.defaultMode, 0o400, "readable by the sidecar's user only")
  t.equal(volume?.optional, true, 'optional: a Secret not created yet does not hold the pod, nor the app, at ContainerCreating')
})

t.test("the agent's configuration, as oomwatch parses it from the resolved env", async t => {
  const resolved = resolveEnv(sidecar)
  const root = t.testdir()
  const file = mountSecret(sidecar, resolved.OOMWATCH_TOKEN_FILE ?? '', root)
  const env = { ...resolved, OOMWATCH_TOKEN_FILE: file ?? '' }
  const known = new Set(Object.values(SETTINGS).map(s => s.env))
  t.same(
    Object.keys(env).filter(name => !known.has(name)),
    [],
    'every variable is an oomwatch setting (a misspelled one would be ignored)',
  )
  t.equal(Object.keys(env).length, sidecar.env?.length, 'every reference resolves (the Secret and the container exist)')
  const config = loadConfig([], env) as Config
  t.equal(config.tokenFile, file, 'a token file from the Secret')
  const limitRef = sidecar.env?.find(e => e.name === 'OOMWATCH_MEMORY_LIMIT')?.valueFrom?.resourceFieldRef
  t.equal(limitRef?.resource, 'limits.memory', "OOMWATCH_MEMORY_LIMIT is a container's limits.memory (Downward API)")
  const app = podSpec.containers.find(c => c.name === limitRef?.containerName)
  t.ok(app, 'of a container of this pod: the app')
  t.equal(config.memoryLimit, parseQuantity(String(app?.resources?.limits?.memory)), "the agent reads the app's limit in bytes")
  const port = sidecar.ports?.find(p => p.containerPort === config.port)
  t.ok(port, `the listening port ${config.port} is declared`)
  t.equal(config.host, '0.0.0.0', 'it listens beyond loopback (the kubelet probes the pod IP), so the token is required')
  const probeOn = (probe: typeof sidecar.livenessProbe) => {
    const target = probe?.httpGet?.port
    return {
      path: probe?.httpGet?.path,
      port: typeof target === 'string' ? sidecar.ports?.find(p => p.name === target)?.containerPort : target,
    }
  }
  t.same(probeOn(sidecar.livenessProbe), { path: '/livez', port: config.metricsPort }, 'liveness probe on /livez, on the metrics port')
  t.notOk(sidecar.readinessProbe, 'no readiness probe: the agent never takes the pod out of its Service')
  t.notOk(sidecar.startupProbe, 'no startup probe: the app starts once the sidecar runs, whatever its state')
  t.equal(config.failOpen, true, 'a start that cannot finish stays up, degraded (test/e2e/fail-open.test.ts)')
  t.ok(
    sidecar.ports?.some(p => p.containerPort === config.metricsPort),
    `the metrics port ${config.metricsPort} is declared`,
  )
  t.ok(config.journalDir, 'the journal is kept')
  const mount = sidecar.volumeMounts?.find(m => m.mountPath === config.journalDir)
  t.ok(mount && podSpec.volumes?.some(v => v.name === mount.name), 'in a mounted volume: the root filesystem is read-only')
})

t.test("the sidecar's own resources are set and small", async t => {
  const { requests, limits } = sidecar.resources ?? {}
  for (const [what, value] of Object.entries({
    'requests.cpu': requests?.cpu,
    'requests.memory': requests?.memory,
    'limits.cpu': limits?.cpu,
    'limits.memory': limits?.memory,
  })) {
    t.ok(value !== undefined, `${what} is set`)
  }
  const memory = parseQuantity(String(limits?.memory))
  t.ok(memory <= 256 * 2 ** 20, 'its memory limit is at most 256Mi')
  t.ok(memory >= parseQuantity(String(requests?.memory)), 'and not below its request')
})

t.test('the app runs a Python program that parses', async t => {
  const app = podSpec.containers.find(c => c.name === 'app') as IContainer
  t.ok(app.resources?.limits?.memory, 'the app has a memory limit')
  const script = app.command?.find(arg => arg.endsWith('.py')) ?? ''
  const mount = app.volumeMounts?.find(m => script.startsWith(`${m.mountPath}/`))
  const volume = podSpec.volumes?.find(v => v.name === mount?.name)
  const configMap = docs.find(d => d.kind === 'ConfigMap' && d.metadata?.name === volume?.configMap?.name) as IConfigMap | undefined
  const source = configMap?.data?.[script.slice((mount?.mountPath.length ?? 0) + 1)]
  t.ok(source, `${script} comes from a ConfigMap in the file`)
  const check = 'import ast, sys; ast.parse(sys.stdin.read())'
  t.doesNotThrow(() => execFileSync(PYTHON, ['-c', check], { input: source, stdio: ['pipe', 'ignore', 'pipe'] }), 'and is valid Python')
})
