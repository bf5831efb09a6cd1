import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { BUILT_CLI, shippedNodeFlags } from './cli.js'
import { IN_GUEST } from './guest.js'
import { removeCgroup } from './memory-cgroup.js'

/*
 * A Kubernetes pod built from Linux namespaces, without a container runtime:
 *
 *   pod        a PID namespace (unshare --pid --fork --mount-proc): shareProcessNamespace
 *   app        its own mount and cgroup namespaces, its own memory cgroup with a limit,
 *              and that cgroup mounted read-only at its /sys/fs/cgroup, so that
 *              /proc/<pid>/root/sys/fs/cgroup shows the app's own limit, as a runtime does;
 *              UID 0 with containerd's default capabilities
 *   agent      the same shape in a sibling cgroup, a read-only root filesystem, UID 0 with
 *              every capability dropped but the ones asked for (SYS_PTRACE, or none) and
 *              no_new_privs (allowPrivilegeEscalation: false): sidecar.yaml's securityContext
 *
 * The network namespace stays the host's (a pod's containers share one anyway), so the
 * test reaches the agent on 127.0.0.1. Every mount is made inside a private mount
 * namespace and dies with it; the cgroups are removed by stop().
 */

const REPO = fileURLToPath(new URL('../..', import.meta.url))
const CLI = join(REPO, 'src/cli.ts')

/** containerd's (and Docker's) default capability set for a container that asks for nothing. */
export const RUNTIME_DEFAULT_CAPS = [
  'chown',
  'dac_override',
  'fsetid',
  'fowner',
  'mknod',
  'net_raw',
  'setgid',
  'setuid',
  'setfcap',
  'setpcap',
  'net_bind_service',
  'sys_chroot',
  'kill',
  'audit_write',
]

export interface PodOptions {
  /** The app container's memory limit (its cgroup's), bytes. */
  appLimitBytes: number
  /** The app container's command; it starts only when {@link SimulatedPod.startApp} is called. */
  app: string[]
  /** Capabilities left to the agent (lower case, without `cap_`): `['sys_ptrace']` as in sidecar.yaml, or `[]`. */
  agentCaps: string[]
  /** Environment of the agent container, as the pod spec's `env` would set it. */
  agentEnv: Record<string, string>
  /** The agent container's command. Default: node on src/cli.ts with the tests' loader (dist/ in the v2 guest). */
  agentCommand?: string[]
}

export interface SimulatedPod {
  cgroupVersion: 1 | 2
  /** The app container's cgroup directory, as the host sees it. */
  appCgroup: string
  /** The agent's port, from its `listening` log line. */
  port: number
  /** Every JSON line the agent printed so far. */
  logs: Record<string, unknown>[]
  /** What the pod printed on stderr so far: the app's output (stdout too) and any container's errors. */
  stderr(): string
  /** Lets the app container's command run (a FIFO it waits on). */
  startApp(): Promise<void>
  /** The kernel's count of OOM kills in the app container's cgroup. */
  appOomKills(): number
  /** Host pid of the process whose pid in the pod's PID namespace is `podPid`, if it is in the app container. */
  hostPidOfApp(podPid: number): number | undefined
  /** Resolves with the first agent log line (already printed or to come) that matches. */
  line(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>
  /** Stops the agent with SIGTERM, kills the pod's PID namespace, removes the cgroups. Idempotent. */
  stop(): Promise<void>
}

/** Single-quotes a word for sh. */
export function q(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`
}

function cmd(words: string[]): string {
  return words.map(q).join(' ')
}

/** Fails with what is missing: these tests must not skip on a machine that cannot run them. */
function checkPrerequisites(): void {
  const missing: string[] = []
  if (process.getuid?.() !== 0) missing.push('root (the simulated pod makes namespaces, mounts and cgroups)')
  const has = (tool: string, args: string[], want: RegExp) => {
    try {
      return want.test(execFileSync(tool, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }))
    } catch {
      return false
    }
  }
  if (!has('unshare', ['--help'], /--cgroup/) || !has('unshare', ['--help'], /--kill-child/)) {
    missing.push('unshare from util-linux 2.32 or later (--pid --fork --mount-proc --cgroup --kill-child)')
  }
  if (!has('setpriv', ['--help'], /--bounding-set/)) missing.push('setpriv from util-linux (--bounding-set, --inh-caps, --no-new-privs)')
  if (!existsSync(join(REPO, '.venv/bin/py-spy'))) missing.push('py-spy in the project (npm run setup:pyspy)')
  if (missing.length > 0) throw new Error(`the simulated pod needs: ${missing.join('; ')}`)
}

interface PodCgroups {
  version: 1 | 2
  pod: string
  app: string
  agent: string
}

/** The pod's cgroup below this process's own, with one child per container, as the kubelet lays them out. */
function makePodCgroups(appLimitBytes: number): PodCgroups {
  const own = readFileSync('/proc/self/cgroup', 'utf8').split('\n')
  const v1 = own.map(line => line.split(':')).find(([, controllers]) => controllers?.split(',').includes('memory'))
  const version = v1 ? 1 : 2
  const base = v1
    ? join('/sys/fs/cgroup/memory', v1[2] ?? '')
    : join('/sys/fs/cgroup', own.find(line => line.startsWith('0::'))?.slice(3) ?? '')
  const pod = join(base, `oomwatch-pod-${process.pid}-${Date.now()}`)
  const app = join(pod, 'app')
  const agent = join(pod, 'agent')
  try {
    if (version === 2) writeFileSync(join(base, 'cgroup.subtree_control'), '+memory')
    mkdirSync(pod)
    if (version === 2) writeFileSync(join(pod, 'cgroup.subtree_control'), '+memory')
    mkdirSync(app)
    mkdirSync(agent)
    writeFileSync(join(app, version === 1 ? 'memory.limit_in_bytes' : 'memory.max'), String(appLimitBytes))
    if (version === 2) writeFileSync(join(app, 'memory.swap.max'), '0')
  } catch (error) {
    throw new Error(
      `cannot make the pod's memory cgroups at ${pod} (needs root and a writable cgroup v${version} below this process's): ${(error as Error).message}`,
      { cause: error },
    )
  }
  return { version, pod, app, agent }
}

function procsOf(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/**
 * The shell that turns a forked child of the pod's init into a container: into its
 * cgroup, then new mount and cgroup namespaces, with its own cgroup mounted read-only at
 * /sys/fs/cgroup. Runs with every capability; `setpriv` drops them at the last exec.
 */
function containerSetup(version: 1 | 2): string {
  const mountCgroup =
    version === 1
      ? [
          'mount -t tmpfs -o mode=755,size=64k cgroup /sys/fs/cgroup',
          'mkdir /sys/fs/cgroup/memory',
          // Inside the cgroup namespace a v1 mount is rooted at the container's own cgroup.
          'mount -t cgroup -o memory cgroup /sys/fs/cgroup/memory',
          'mount -o remount,bind,ro /sys/fs/cgroup/memory',
          'mount -o remount,bind,ro /sys/fs/cgroup',
        ]
      : [
          // The host's own cgroup2 mount is copied into the new mount namespace, and the kernel
          // refuses the same superblock twice on one mount point (EBUSY): detach it first.
          'if mountpoint -q /sys/fs/cgroup; then umount -l /sys/fs/cgroup; fi',
          'mount -t cgroup2 cgroup2 /sys/fs/cgroup',
          'mount -o remount,bind,ro /sys/fs/cgroup',
        ]
  return ['set -e', ...mountCgroup].join('\n')
}

/**
 * readOnlyRootFilesystem, as shell to run in a private mount namespace: every mount
 * read-only but procfs, sysfs and /dev (a runtime mounts those itself), then `writable`
 * bind-mounted back read-write as volumes would be. Proven before the command starts:
 * a write to / must fail.
 */
export function readOnlyRoot(writable: string[]): string {
  return [
    "for m in $(awk '{print $5}' /proc/self/mountinfo); do",
    '  case "$m" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;; esac',
    '  mount -o remount,bind,ro "$m"',
    'done',
    ...writable.map(dir => `mount --bind ${q(dir)} ${q(dir)} && mount -o remount,bind,rw ${q(dir)}`),
    'if touch /.oomwatch-ro-probe 2>/dev/null; then echo "/ is still writable after the read-only remounts" >&2; exit 97; fi',
  ].join('\n')
}

/** src/cli.ts with this test's loader; in the v2 guest dist/, as shipped (the loader's compile costs ~40 s there). */
function defaultAgentCommand(): string[] {
  if (!IN_GUEST) return [process.execPath, ...process.execArgv, CLI]
  return ['env', '-u', 'NODE_OPTIONS', '-u', 'NODE_V8_COVERAGE', process.execPath, ...shippedNodeFlags(), BUILT_CLI]
}

function setpriv(caps: string[], command: string[]): string {
  const bounding = ['-all', ...caps.map(c => `+${c}`)].join(',')
  return `exec ${cmd(['setpriv', '--no-new-privs', '--inh-caps=-all', `--bounding-set=${bounding}`, '--', ...command])}`
}

/**
 * Starts the pod: its PID namespace with the agent container running (the real CLI, with
 * this test's TypeScript loader) and the app container waiting for {@link SimulatedPod.startApp}.
 * Resolves once the agent is listening.
 */
export async function startPod(options: PodOptions, workdir: string): Promise<SimulatedPod> {
  checkPrerequisites()
  const cgroups = makePodCgroups(options.appLimitBytes)
  const gate = join(workdir, 'app-gate')
  execFileSync('mkfifo', [gate])

  // The test runner writes coverage and process info under .tap: the one volume the
  // agent container gets (the image needs none).
  const tapDir = join(REPO, '.tap')
  mkdirSync(tapDir, { recursive: true })

  const appScript = [
    containerSetup(cgroups.version),
    // The container's process starts when the test says so (a FIFO read blocks until then).
    `read -r go < ${q(gate)}`,
    setpriv(RUNTIME_DEFAULT_CAPS, options.app),
  ].join('\n')
  const agentScript = [
    containerSetup(cgroups.version),
    readOnlyRoot([tapDir]),
    `cd ${q(REPO)}`,
    setpriv(options.agentCaps, options.agentCommand ?? defaultAgentCommand()),
  ].join('\n')
  const container = (cgroup: string, script: string, stdout: string) =>
    `sh -c ${q(`echo 0 > ${q(join(cgroup, 'cgroup.procs'))} && exec unshare --mount --cgroup -- sh -c ${q(script)}`)} ${stdout} &`
  // The pod's init (PID 1 of the namespace, as the pause container is). It ends when the
  // agent container does, and its death makes the kernel kill everything in the
  // namespace: a sidecar that fails to start fails the test at once, with its stderr.
  const podInit = [
    container(cgroups.app, appScript, '>&2'),
    container(cgroups.agent, agentScript, ''),
    'agent=$!',
    'wait "$agent"',
    'echo "the agent container exited with status $?" >&2',
  ].join('\n')

  const env: Record<string, string | undefined> = { ...process.env, ...options.agentEnv }
  const child: ChildProcess = spawn('unshare', ['--pid', '--fork', '--mount-proc', '--kill-child', '--', 'sh', '-c', podInit], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  const logs: Record<string, unknown>[] = []
  const waiters = new Set<() => void>()
  let exited: string | undefined
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
    const lines = stdout.split('\n')
    stdout = lines.pop() ?? ''
    for (const text of lines) if (text.startsWith('{')) logs.push(JSON.parse(text) as Record<string, unknown>)
    for (const wake of waiters) wake()
  })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  child.on('close', (code, signal) => {
    exited = `the pod's init ended (${signal ?? `exit ${code}`}); stderr: ${stderr.trim() || '(none)'}`
    for (const wake of waiters) wake()
  })

  const line = (match: (line: Record<string, unknown>) => boolean) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const found = logs.find(match)
        if (found) {
          waiters.delete(check)
          resolve(found)
        } else if (exited !== undefined) {
          waiters.delete(check)
          reject(new Error(`no matching agent log line: ${exited}; logs: ${logs.map(l => String(l.msg)).join(' | ')}`))
        }
      }
      waiters.add(check)
      check()
    })

  let stopping: Promise<void> | undefined
  const stop = () =>
    (stopping ??= (async () => {
      // The agent first, with SIGTERM: it stops cleanly and writes its coverage.
      for (const pid of procsOf(cgroups.agent)) signal(pid, 'SIGTERM')
      for (let i = 0; i < 100 && procsOf(cgroups.agent).length > 0; i++) await sleep(50)
      // Then the pod: SIGKILL to unshare, whose --kill-child takes init, whose death takes
      // every process of the PID namespace, and with them every mount namespace.
      if (exited === undefined) child.kill('SIGKILL')
      for (const dir of [cgroups.app, cgroups.agent]) {
        for (let i = 0; i < 100 && procsOf(dir).length > 0; i++) {
          for (const pid of procsOf(dir)) signal(pid, 'SIGKILL')
          await sleep(50)
        }
      }
      for (const dir of [cgroups.app, cgroups.agent, cgroups.pod]) await removeCgroup(dir)
    })())

  let listening: Record<string, unknown>
  try {
    listening = await line(l => typeof l.port === 'number' && typeof l.msg === 'string' && l.msg.includes('listening'))
  } catch (error) {
    await stop()
    throw error
  }

  const oomFile = join(cgroups.app, cgroups.version === 1 ? 'memory.oom_control' : 'memory.events')
  return {
    cgroupVersion: cgroups.version,
    appCgroup: cgroups.app,
    port: listening.port as number,
    logs,
    stderr: () => stderr,
    line,
    stop,
    startApp: () => writeFile(gate, 'go\n'),
    appOomKills: () => Number(/^oom_kill (\d+)$/m.exec(readFileSync(oomFile, 'utf8'))?.[1] ?? 0),
    hostPidOfApp: podPid =>
      procsOf(cgroups.app).find(pid => {
        try {
          // NSpid: the pid in each namespace from the host's down; the last is the pod's.
          const nspid = /^NSpid:\s+(.*)$/m
            .exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
            ?.trim()
            .split(/\s+/)
          return Number(nspid?.at(-1)) === podPid
        } catch {
          return false
        }
      }),
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name)
  } catch {
    // already gone
  }
}
