// --fail-open, as `oomwatch inject` runs the sidecar: a start that cannot finish keeps the
// agent up, degraded and saying why, instead of exiting 2 (a crash loop that can hold a
// native sidecar's app back). The real CLI, real ports, real signals.
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parse } from 'yaml'
import { injectManifests } from '../../src/inject/inject.js'
import { runCli, type CliRun } from '../helpers/cli.js'

const listening = (run: CliRun) => run.line(l => typeof l.port === 'number' && /listening|degraded:/.test(String(l.msg)))

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`)
  return { status: res.status, body: await res.text() }
}

t.test('a bad setting: exit 2 without --fail-open; with it, up and degraded, saying which setting and why', async t => {
  const bad = { OOMWATCH_INTERVAL_MS: 'soon' }
  const strict = await runCli([], { ...bad, OOMWATCH_PORT: '0' }).done
  t.equal(strict.code, 2, 'without --fail-open: the configuration error exits 2')

  const run = runCli([], { ...bad, OOMWATCH_PORT: '0', OOMWATCH_FAIL_OPEN: 'true' })
  t.teardown(() => void run.child.kill('SIGKILL'))
  const said = await run.line(l => l.degraded === 'config')
  t.equal(said.level, 'error', 'an error line in the log')
  t.match(String(said.msg), /OOMWATCH_INTERVAL_MS.*soon/, 'naming the variable and its value')
  const port = (await listening(run)).port as number
  t.same(await get(port, '/livez'), { status: 200, body: 'ok\n' }, '/livez 200: a restart would not fix a setting')
  const ready = await get(port, '/readyz')
  t.equal(ready.status, 503, '/readyz 503')
  t.match(ready.body, /^degraded: config: .*OOMWATCH_INTERVAL_MS/, 'and its body says why')
  const metrics = await get(port, '/metrics')
  t.match(metrics.body, /^oomwatch_degraded\{reason="config"\} 1$/m, 'oomwatch_degraded{reason="config"} 1')
  t.match(metrics.body, /^oomwatch_build_info\{version="[^"]+",node="v\d+/m, 'the build is told')
  t.notMatch(metrics.body, /oomwatch_pyspy_available/, 'py-spy was not looked for: no figure rather than a false 0')
  t.equal((await get(port, '/')).status, 404, 'nothing watched is served: no stream')
  run.child.kill('SIGTERM')
  const end = await run.done
  t.equal(end.code, 0, 'SIGTERM stops it cleanly')
})

t.test('a token file that cannot be read: degraded on the metrics port (token)', async t => {
  const run = runCli([], {
    OOMWATCH_PORT: '0',
    OOMWATCH_METRICS_PORT: '0',
    OOMWATCH_TOKEN_FILE: join(t.testdir({}), 'missing-token'),
    OOMWATCH_FAIL_OPEN: 'true',
  })
  t.teardown(() => void run.child.kill('SIGKILL'))
  await run.line(l => l.degraded !== undefined)
  const port = (await listening(run)).port as number
  const ready = await get(port, '/readyz')
  t.equal(ready.status, 503)
  t.match(ready.body, /degraded: (config|token): .*missing-token/, 'names the file')
  run.child.kill('SIGTERM')
  t.equal((await run.done).code, 0)
})

t.test('py-spy missing where OOMWATCH_PYSPY says: watching goes on without stacks, told as degraded', async t => {
  const dir = t.testdir({})
  const pyspy = join(dir, 'no-py-spy-here')
  const strict = await runCli([], { OOMWATCH_PORT: '0', OOMWATCH_PYSPY: pyspy }).done
  t.equal(strict.code, 2, 'without --fail-open: exit 2')
  const run = runCli([], { OOMWATCH_PORT: '0', OOMWATCH_PYSPY: pyspy, OOMWATCH_FAIL_OPEN: 'true' })
  t.teardown(() => void run.child.kill('SIGKILL'))
  const said = await run.line(l => l.degraded === 'pyspy-missing')
  t.equal(said.level, 'error', 'an error line')
  const port = (await run.line(l => typeof l.port === 'number' && /listening/.test(String(l.msg)))).port as number
  let ready = await get(port, '/readyz')
  for (let i = 0; i < 50 && ready.status !== 200; i++) ready = await get(port, '/readyz')
  t.equal(ready.status, 200, 'the agent watches: ready')
  t.match(ready.body, /degraded \(pyspy-missing\): .*no-py-spy-here/, 'and /readyz says what it goes without')
  const metrics = await get(port, '/metrics')
  t.match(metrics.body, /^oomwatch_degraded\{reason="pyspy-missing"\} 1$/m)
  t.match(metrics.body, /^oomwatch_pyspy_available 0$/m)
  run.child.kill('SIGTERM')
  t.equal((await run.done).code, 0)
})

t.test('a journal directory that cannot be used: events kept in memory, told as degraded', async t => {
  const dir = t.testdir({})
  const file = join(dir, 'a-file')
  writeFileSync(file, 'not a directory')
  const run = runCli([], { OOMWATCH_PORT: '0', OOMWATCH_JOURNAL_DIR: join(file, 'journal'), OOMWATCH_FAIL_OPEN: 'true' })
  t.teardown(() => void run.child.kill('SIGKILL'))
  const said = await run.line(l => l.degraded === 'journal')
  t.match(String(said.msg), /in memory/)
  const port = (await run.line(l => typeof l.port === 'number' && /listening/.test(String(l.msg)))).port as number
  t.match((await get(port, '/metrics')).body, /^oomwatch_degraded\{reason="journal"\} 1$/m)
  run.child.kill('SIGTERM')
  t.equal((await run.done).code, 0)
})

t.test('the injected sidecar, its token Secret not created yet: up, its liveness probe passes, nothing gates the app', async t => {
  const manifest = readFileSync(fileURLToPath(new URL('../fixtures/inject/deployment.yaml', import.meta.url)), 'utf8')
  const injected: unknown = parse(
    injectManifests(manifest, { tokenSecret: 'oomwatch-token', native: true, image: 'oomwatch:0.1.0', version: '0.1.0' }),
  )
  type Container = {
    name: string
    env: { name: string; value?: string }[]
    ports: { name: string; containerPort: number }[]
    livenessProbe: { httpGet: { path: string; port: string } }
    startupProbe?: unknown
    readinessProbe?: unknown
  }
  const sidecar = (injected as { spec: { template: { spec: { initContainers: Container[] } } } }).spec.template.spec.initContainers[0]!
  t.equal(sidecar.name, 'oomwatch')
  t.notOk(sidecar.startupProbe, 'no startup probe: the kubelet starts the app once the sidecar runs')
  t.notOk(sidecar.readinessProbe, 'no readiness probe: the pod stays in its Service whatever the agent does')
  const probePort = sidecar.ports.find(p => p.name === sidecar.livenessProbe.httpGet.port)
  t.equal(probePort?.containerPort, 9643, 'the liveness probe is on the metrics port, which a degraded agent serves')

  // Its environment as the kubelet would give it: the Secret's volume is not there (not created
  // yet), the Downward API's limit resolved. Ports 0: this machine runs other agents.
  const env = Object.fromEntries(sidecar.env.filter(e => e.value !== undefined).map(e => [e.name, e.value!]))
  const tokenFile = join(t.testdir({}), 'token')
  const run = runCli([], {
    ...env,
    OOMWATCH_TOKEN_FILE: tokenFile,
    OOMWATCH_MEMORY_LIMIT: '268435456',
    OOMWATCH_JOURNAL_DIR: t.testdir({}),
    OOMWATCH_PORT: '0',
    OOMWATCH_METRICS_PORT: '0',
  })
  t.teardown(() => void run.child.kill('SIGKILL'))
  const said = await run.line(l => l.degraded !== undefined)
  t.match(String(said.msg), /token/, 'the log says the token is what is missing')
  const port = (await listening(run)).port as number
  await sleep(1500)
  t.equal(run.child.exitCode, null, 'still running: the kubelet counts it started, and the app starts')
  t.equal((await get(port, sidecar.livenessProbe.httpGet.path)).status, 200, 'its liveness probe passes: no restart loop')
  // The Secret is created: the kubelet writes the file into the volume.
  writeFileSync(tokenFile, `${'7f'.repeat(32)}\n`)
  await run.line(l => /the cause is gone/.test(String(l.msg)))
  t.equal((await run.done).code, 0, 'it exits once the token is there, for the kubelet to restart it in full')
})

t.test('a port already taken: degraded (listen), its probes and metrics on the metrics port', async t => {
  const taken = createServer()
  await new Promise<void>(resolve => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => void taken.close())
  const busy = (taken.address() as AddressInfo).port
  const strict = await runCli([], { OOMWATCH_PORT: String(busy) }).done
  t.equal(strict.code, 2, 'without --fail-open: exit 2')
  const run = runCli([], { OOMWATCH_PORT: String(busy), OOMWATCH_METRICS_PORT: '0', OOMWATCH_FAIL_OPEN: 'true' })
  t.teardown(() => void run.child.kill('SIGKILL'))
  const said = await run.line(l => l.degraded === 'listen')
  t.match(String(said.msg), new RegExp(`cannot listen on 127\\.0\\.0\\.1:${busy}`), 'names the address')
  const port = (await listening(run)).port as number
  t.not(port, busy)
  t.equal((await get(port, '/readyz')).status, 503)
  t.match((await get(port, '/metrics')).body, /^oomwatch_degraded\{reason="listen"\} 1$/m)
  run.child.kill('SIGTERM')
  t.equal((await run.done).code, 0)
})
