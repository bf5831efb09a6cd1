import { spawn } from 'node:child_process'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { buildJs } from '../helpers/v2-kernel-build.js'

// The kernel tests, again on cgroup v2: this machine is cgroup v1, so the files below run a
// second time inside ONE boot of the QEMU guest of scripts/v2-guest/ (unified hierarchy only),
// with OOMWATCH_TEST_GUEST=1 so that they skip their timing asserts (test/helpers/guest.ts).
// Each inner file is one assertion here, with its failing lines when it fails. No QEMU, no
// kernel: this test fails with the script's own message (npm run setup:system installs them).

const REPO = fileURLToPath(new URL('../..', import.meta.url))
const GUEST = join(REPO, 'scripts/v2-guest/v2-guest.sh')

/** Listed one by one: the inner run must never pick up this file or v2-guest.test.ts again. */
const FILES = [
  'test/e2e/e2e-oom.test.ts',
  'test/e2e/e2e-pod.test.ts',
  'test/e2e/actions.test.ts',
  'test/e2e/cgroup-memory.test.ts',
  'test/e2e/group-kill.test.ts',
  'test/e2e/memory-high.test.ts',
]

/** Runs FILES in one process (test/helpers/v2-kernel-suite.ts), compiled to JavaScript first (v2-kernel-build.ts). */
const SUITE = 'test/helpers/v2-kernel-suite.ts'

/** The whole guest run: measured at about 140 s on this 2-core machine, under Node 20 and 24 alike. */
const GUEST_TIMEOUT_S = 900
/** The suite's own timeout, for all of FILES: package.json's 180 s is for one file on the host. */
const INNER_TIMEOUT_S = GUEST_TIMEOUT_S - 60

// package.json's 180 s per file cannot hold a guest run: the root test tells the runner its own.
t.setTimeout((GUEST_TIMEOUT_S + 60) * 1000)

/** This process's NOFILE limits, soft and hard: the guest's init starts at the kernel's 1024/4096. */
function nofile(): [string, string] {
  const line = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
  if (!line) throw new Error('no "Max open files" line in /proc/self/limits')
  return [line[1] as string, line[2] as string]
}

/**
 * In the guest the agent runs from dist/ (test/helpers/cli.ts, pod.ts): `npm test` builds it
 * first; a lone run of this file must not test a stale build.
 */
function checkBuilt(): void {
  const built = join(REPO, 'dist/cli.js')
  let builtAt: number
  try {
    builtAt = statSync(built).mtimeMs
  } catch {
    throw new Error(`${built} is missing: run \`npm run build\` first (the guest runs the agent from dist/)`)
  }
  const sources = readdirSync(join(REPO, 'src'), { recursive: true, encoding: 'utf8' }).filter(name => name.endsWith('.ts'))
  const newer = sources.filter(name => statSync(join(REPO, 'src', name)).mtimeMs > builtAt)
  if (newer.length > 0)
    throw new Error(`dist/ is older than src/${newer[0]}: run \`npm run build\` first (the guest runs the agent from dist/)`)
}

interface Run {
  code: number | null
  stdout: string
  stderr: string
  seconds: number
}

/** Runs the suite, compiled into `built`, in the guest. */
function runInGuest(built: string): Promise<Run> {
  const [soft, hard] = nofile()
  const args = [
    ...['--memory', '4096', '--cpus', '2', '--timeout', String(GUEST_TIMEOUT_S), '--cwd', built],
    ...['--env', 'OOMWATCH_TEST_GUEST=1', '--env', `OOMWATCH_V2_KERNEL_FILES=${FILES.join(' ')}`],
    // No tap runner and no TypeScript loader (their start costs some 40 s there): the suite as
    // JavaScript on this node, with the root's timeout.
    ...['--env', `TAP_TIMEOUT=${INNER_TIMEOUT_S}`, '--'],
    // actions.test.ts expects this machine's NOFILE (a clamp must lower something).
    ...['sh', '-c', `ulimit -Hn ${hard} && ulimit -Sn ${soft} && exec "$@"`, 'sh'],
    ...[process.execPath, '--enable-source-maps', SUITE.replace(/\.ts$/, '.js')],
  ]
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const child = spawn(GUEST, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', code => resolve({ code, stdout, stderr, seconds: Math.round((performance.now() - started) / 1000) }))
  })
}

interface FileResult {
  results: number
  /** The sum of its top-level tests' times, ms. */
  ms: number
  failed: boolean
  /** Every failing line of the file's tests, each with its YAML diagnostics. */
  failures: string[]
}

/** Each file's results in the suite's TAP: its top-level tests follow the marker `v2-kernel file <path>`. */
function resultsByFile(stdout: string): Map<string, FileResult> {
  const byFile = new Map<string, FileResult>()
  let current: FileResult | undefined
  const lines = stdout.split('\n')
  for (const [at, line] of lines.entries()) {
    const marker = /^(?:not )?ok \d+ - v2-kernel file (\S+)/.exec(line)
    if (marker) {
      byFile.set(marker[1] as string, (current = { results: 0, ms: 0, failed: false, failures: [] }))
      continue
    }
    if (!current) continue
    if (/^(not )?ok \d+ - /.test(line)) {
      current.results++
      current.ms += Number(/ # time=([\d.]+)ms$/.exec(line)?.[1] ?? 0)
      if (line.startsWith('not ok')) current.failed = true
    }
    if (/^\s*not ok /.test(line)) {
      // Its YAML diagnostics follow, indented below it, up to "...": enough to see why.
      const more = lines.slice(at + 1, at + 16)
      const close = more.findIndex(l => l.trim() === '...')
      current.failures.push(line, ...more.slice(0, close < 0 ? 15 : close + 1))
    }
  }
  return byFile
}

t.test(`${FILES.length} kernel test files, run again in a cgroup v2 guest`, async t => {
  checkBuilt()
  // Readable by nobody (cgroup-memory.test.ts).
  const built = `/var/tmp/oomwatch-v2-kernel-${process.pid}`
  t.teardown(buildJs(REPO, built, ['src', 'test/helpers', ...FILES], ['test/fixtures']))
  const run = await runInGuest(built)
  t.comment(`the guest run took ${run.seconds} s (boot, ${FILES.length} files, power-off)`)
  t.equal(run.code, 0, 'the inner test run passed in the guest', {
    exit: run.code,
    stderr: run.stderr.split('\n').slice(-40).join('\n'),
  })
  const byFile = resultsByFile(run.stdout)
  for (const file of FILES) {
    const result = byFile.get(file)
    if (result) t.comment(`${file}: ${result.results} tests, ${Math.round(result.ms / 1000)} s`)
    t.ok(result && result.results > 0 && !result.failed, `${file} passed on cgroup v2`, {
      ...(result === undefined ? { why: 'no result for it: the guest run ended before it (see stderr)' } : {}),
      ...(result?.results === 0 ? { why: 'it ran no test' } : {}),
      failures: result?.failures.join('\n'),
      stderr: result === undefined ? run.stderr.split('\n').slice(-20).join('\n') : undefined,
    })
  }
})
