import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { PYTHON } from '../helpers/python.js'

// scripts/v2-guest/ boots a QEMU guest with a cgroup v2 kernel on this machine's own files and
// runs one command in it. Each guest costs about 5 to 15 s of one core (TCG): this file boots
// three, one after the other (the script itself never runs two at once).

const GUEST = fileURLToPath(new URL('../../scripts/v2-guest/v2-guest.sh', import.meta.url))
const PROBE = fileURLToPath(new URL('../fixtures/v2-guest/probe.sh', import.meta.url))

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

const guest = (args: string[], env: NodeJS.ProcessEnv = process.env, file = GUEST): Promise<Run> =>
  new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', code => resolve({ code, stdout, stderr }))
  })

/** The probe's `key=value` lines. */
const parse = (stdout: string): Map<string, string> =>
  new Map(stdout.split('\n').flatMap(line => (line.includes('=') ? [line.split(/=(.*)/s, 2) as [string, string]] : [])))

t.test('the command runs in a cgroup v2 guest where the kernel OOM-kills a memory.oom.group cgroup', async t => {
  const dir = t.testdir({})
  const run = await guest(['--cwd', dir, '--env', 'V2_GUEST_PROBE=passed', '--', PROBE, PYTHON, '7'])
  t.equal(run.code, 7, "the command's exit status comes out", { stderr: run.stderr })
  t.match(run.stderr, /^probe: this line is on stderr$/m, "the command's stderr comes out on stderr")
  const got = parse(run.stdout)
  const kernels = readdirSync('/boot').flatMap(name => (name.startsWith('vmlinuz-') ? [name.slice(8)] : []))
  t.ok(kernels.includes(got.get('kernel') ?? ''), `runs a kernel from /boot (${got.get('kernel')})`)
  t.equal(got.get('cwd'), dir, 'in the directory given')
  t.equal(got.get('env'), 'passed', 'with the environment given')
  t.equal(got.get('fstype'), 'cgroup2fs', '/sys/fs/cgroup is cgroup2')
  t.equal(got.get('cgroup-mounts')?.trim(), '/sys/fs/cgroup:cgroup2', 'and no cgroup v1 hierarchy is mounted')
  t.equal(got.get('self-cgroup')?.trim(), '0::/', 'the command is in the unified hierarchy only')
  t.match(got.get('subtree-control') ?? '', /\bmemory\b/, 'memory is enabled for child cgroups')
  t.equal(got.get('node'), process.version, "this machine's node runs in the guest")
  t.equal(got.get('python'), '42', "this machine's python runs in the guest")
  t.equal(got.get('nsenter-node'), process.version, 'nsenter -m lands in the same root')

  t.equal(got.get('hog-status'), '137', 'the process over memory.max was SIGKILLed')
  t.equal(got.get('bystander-status'), '137', 'so was the idle one beside it (memory.oom.group)')
  const events = new Map(
    (got.get('memory.events') ?? '')
      .trim()
      .split(/\s+/)
      .flatMap((word, i, all) => (i % 2 === 0 ? [[word, Number(all[i + 1])] as const] : [])),
  )
  t.ok((events.get('oom_kill') ?? 0) > 0, `memory.events counts the OOM kill (${got.get('memory.events')})`)
  t.ok((events.get('oom_group_kill') ?? 0) > 0, 'and the group kill')
  t.equal(got.get('cgroup-procs-left'), '0', 'nothing is left in the cgroup')
})

t.test('a guest that dies during the command: exit 4, says so, and shows the console', async t => {
  const run = await guest(['--', 'sh', '-c', 'echo started; echo c >/proc/sysrq-trigger; echo not-reached'])
  t.equal(run.code, 4)
  t.equal(run.stdout, 'started\n', 'the output up to the crash came out, nothing after')
  t.match(run.stderr, /the guest stopped before the command ended/)
  t.match(run.stderr, /console, from line \d+:\n.*sysrq: Trigger a crash/, "the console's tail shows why")
})

t.test('--timeout: exit 124 and says which limit passed', async t => {
  const run = await guest(['--timeout', '1', '--', 'true'])
  t.equal(run.code, 124)
  t.match(run.stderr, /did not finish within 1s \(--timeout\)/)
})

t.test('no QEMU on PATH: exit 3, and names the step that installs it', async t => {
  const run = await guest([GUEST, '--', 'true'], { PATH: '/nonexistent' }, '/bin/bash')
  t.equal(run.code, 3)
  t.match(run.stderr, /qemu-system-x86_64 not found: run `npm run setup:system` as root/)
})

t.test('QEMU that cannot start: exit 3 with its own words', async t => {
  const run = await guest(['--memory', '99999999', '--', 'true'])
  t.equal(run.code, 3)
  t.match(run.stderr, /qemu-system-x86_64 failed to start \(exit 1\): .*cannot set up guest memory/)
})

t.test('bad usage: exit 2, naming what was wrong', async t => {
  for (const [args, message] of [
    [[], /no command given/],
    [['--timeout', '0', 'true'], /--timeout wants a positive integer, got '0'/],
    [['--memory', '2G', 'true'], /--memory wants a positive integer, got '2G'/],
    [['--env', 'no-equals', 'true'], /--env wants NAME=VALUE, got 'no-equals'/],
    [['--cwd', '/nonexistent', 'true'], /--cwd '\/nonexistent' is not a directory/],
    [['--frobnicate', 'true'], /unknown option '--frobnicate'/],
  ] as const) {
    const run = await guest([...args])
    t.equal(run.code, 2, args.join(' '))
    t.match(run.stderr, message)
    t.match(run.stderr, /^usage: /m)
  }
})
