// Helpers shared by the benchmarks: the real interpreter and py-spy, memory cgroups below
// our own, process liveness, the agent as a separate process, statistics and the machine.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const DAEMON = join(ROOT, 'test/fixtures/python/leaky_daemon.py')
/** The real interpreter behind `python3`, not a pyenv shim (a shim changes the pid's identity by exec). */
export const PYTHON = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim()
/** The project's py-spy, as `npm run setup` installs it; else the one on PATH, resolved past shims. */
export const PYSPY = existsSync(join(ROOT, '.venv/bin/py-spy')) ? join(ROOT, '.venv/bin/py-spy') : findOnPath('py-spy')

function findOnPath(name) {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim()
  if (!found) throw new Error(`${name} not found: run \`npm run setup\` (it installs py-spy in ./.venv)`)
  // A pyenv shim is a script that execs the real binary: ask pyenv which one.
  if (!found.includes('/shims/')) return found
  return spawnSync('pyenv', ['which', name], { encoding: 'utf8' }).stdout.trim() || found
}
export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
export const MiB = 1 << 20

/**
 * Re-runs this benchmark in a fresh PID namespace with its own /proc (what a pod with
 * `shareProcessNamespace` shows its sidecar), unless already there or `--no-isolate` is
 * given. On a shared machine the host's /proc holds other people's Python processes,
 * which the agent and the alternatives would all watch. bash is the namespace's pid 1
 * because it reaps the orphans a double-forking daemon leaves. Returns only when the
 * caller is to run here; otherwise exits with the isolated run's status.
 */
export function isolate() {
  const args = process.argv.slice(2)
  if (process.env.OOMWATCH_BENCH_ISOLATED || args.includes('--no-isolate'))
    return { isolated: Boolean(process.env.OOMWATCH_BENCH_ISOLATED), args: args.filter(a => a !== '--no-isolate') }
  const probe = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true'])
  if (probe.status !== 0) {
    process.stderr.write('note: cannot make a PID namespace (unshare); watching the host /proc, other Python processes included\n')
    return { isolated: false, args }
  }
  const command = [process.execPath, ...process.execArgv, process.argv[1], ...args].map(a => `'${a.replaceAll("'", `'\\''`)}'`).join(' ')
  const run = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'bash', '-c', `${command}; exit $?`], {
    stdio: 'inherit',
    env: { ...process.env, OOMWATCH_BENCH_ISOLATED: '1' },
  })
  process.exit(run.status ?? 1)
}

/** `--name value` or `--name=value` from `args`, else `fallback`. */
export function option(args, name, fallback) {
  const at = args.findIndex(a => a === `--${name}` || a.startsWith(`--${name}=`))
  if (at < 0) return fallback
  return args[at].includes('=') ? args[at].slice(args[at].indexOf('=') + 1) : args[at + 1]
}

/** The first argument that is not an option (nor an option's value), else `fallback`. */
export function positional(args, fallback) {
  for (let i = 0; i < args.length; i++) {
    if (args[i].startsWith('--')) {
      if (!args[i].includes('=')) i++
      continue
    }
    return args[i]
  }
  return fallback
}

/** The memory cgroup this process is in: v1 or v2, and its directory. */
export function ownCgroup() {
  const lines = readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .map(line => line.split(':'))
  const v1 = lines.find(([, controllers]) => controllers?.split(',').includes('memory'))
  if (v1) return { version: 1, dir: join('/sys/fs/cgroup/memory', v1[2]) }
  return { version: 2, dir: join('/sys/fs/cgroup', lines.find(([id]) => id === '0')[2]) }
}

/** A memory cgroup below our own with `limitBytes`; `wrap` prefixes a command so it runs inside. */
export function makeCgroup(name, limitBytes) {
  const own = ownCgroup()
  const dir = join(own.dir, name)
  if (own.version === 2) writeFileSync(join(own.dir, 'cgroup.subtree_control'), '+memory')
  // In our own PID namespace process.pid is always the same: a killed run leaves its cgroup under this name.
  if (existsSync(dir)) {
    try {
      rmdirSync(dir)
    } catch (error) {
      throw new Error(`${dir} is left over from an earlier run and still holds processes (${error.code}): kill them, then rmdir it`, {
        cause: error,
      })
    }
  }
  mkdirSync(dir)
  writeFileSync(join(dir, own.version === 1 ? 'memory.limit_in_bytes' : 'memory.max'), String(limitBytes))
  if (own.version === 2) writeFileSync(join(dir, 'memory.swap.max'), '0')
  const procs = () => readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number)
  return {
    version: own.version,
    dir,
    oomKills: () =>
      Number(
        /^oom_kill (\d+)$/m.exec(readFileSync(join(dir, own.version === 1 ? 'memory.oom_control' : 'memory.events'), 'utf8'))?.[1] ?? 0,
      ),
    wrap: command => ['sh', '-c', `echo $$ > ${join(dir, 'cgroup.procs')} && exec "$@"`, 'sh', ...command],
    async remove() {
      for (let attempt = 0; attempt < 100; attempt++) {
        const left = procs()
        for (const pid of left) {
          try {
            process.kill(pid, 'SIGKILL')
          } catch {
            // gone already
          }
        }
        try {
          rmdirSync(dir)
          return
        } catch {
          await sleep(100)
        }
      }
      process.stderr.write(`note: could not remove ${dir}\n`)
    },
  }
}

/** The state letter of /proc/<pid>/stat, or undefined when the pid is gone. */
export function procState(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat[stat.lastIndexOf(')') + 2]
  } catch {
    return undefined
  }
}

/** True while `pid` exists and is not a zombie: its memory and its stack are still there. */
export function isAlive(pid) {
  const state = procState(pid)
  return state !== undefined && state !== 'Z' && state !== 'X'
}

/** Resolves with the monotonic time `pid` was first seen dead, polling every 2 ms. */
export async function deathOf(pid, timeoutMs = 120_000) {
  const until = performance.now() + timeoutMs
  while (performance.now() < until) {
    if (!isAlive(pid)) return performance.now()
    await sleep(2)
  }
  throw new Error(`pid ${pid} still alive after ${timeoutMs} ms`)
}

/**
 * When `pid` was first seen dead (polled every 2 ms), and how it died when its zombie
 * could be read (exit_code, field 52 of /proc/<pid>/stat: a signal in the low 7 bits).
 */
export async function deathAndStatus(pid, timeoutMs = 120_000) {
  const until = performance.now() + timeoutMs
  while (performance.now() < until) {
    if (!isAlive(pid)) {
      const diedAt = performance.now()
      let status = 'reaped before read'
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
        const code = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[49])
        status = code & 0x7f ? `signal ${code & 0x7f}` : `exit ${code >> 8}`
      } catch {
        // reaped already
      }
      return { diedAt, status }
    }
    await sleep(2)
  }
  throw new Error(`pid ${pid} still alive after ${timeoutMs} ms`)
}

/**
 * oomwatch's result in one run: it won when the incident (received, with `alive` and
 * `state` read at its receipt) names fd_table_from_limit, carries rlimits.NOFILE and came
 * before the death at `diedAt`. `limitNote`: the limit's source in the detail (the pod run).
 */
export function judgeIncident(received, diedAt, { limitNote = false } = {}) {
  const { event } = received
  const named = event.threads.some(thread => thread.frames.some(frame => frame.function === 'fd_table_from_limit'))
  const nofile = event.rlimits?.NOFILE !== undefined
  const limit = limitNote ? ` (limit from ${event.memory.limitSource})` : ''
  return {
    arrived: true,
    won: received.alive && named && nofile && received.receivedAt < diedAt,
    margin: diedAt - received.receivedAt,
    detail: `${event.reason} at ${Math.round(event.memory.fractionOfLimit * 100)}%${limit}, py-spy ${event.capture.pyspyMs} ms${event.capture.error ? `, ${event.capture.error.code}` : ''}${named ? '' : ', no fd_table_from_limit'}${nofile ? '' : ', no NOFILE'}${received.alive ? '' : `, state ${received.state ?? 'gone'} at receipt`}`,
  }
}

/** A watcher's result in a progress line: won or lost, by how much, and why. */
export function describeResult(result) {
  if (!result.arrived) return `lost (${result.detail ?? 'no incident'})`
  return `${result.won ? 'won' : 'LOST'} by ${fmt(result.margin, 0)} ms (${result.detail})`
}

/** Waits for a file to hold a pid (a daemon's pidfile). */
export async function readPidfile(path, timeoutMs = 10_000) {
  const until = performance.now() + timeoutMs
  while (performance.now() < until) {
    try {
      const pid = Number(readFileSync(path, 'utf8'))
      if (pid > 0) return pid
    } catch {
      // not written yet
    }
    await sleep(5)
  }
  throw new Error(`no pid in ${path} after ${timeoutMs} ms`)
}

/** utime, stime and reaped children's time of `pid` in clock ticks, and its VmHWM/VmRSS in bytes. */
export function usageOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[0] is state (field 3): utime is field 14, stime 15, cutime 16, cstime 17.
  const [utime, stime, cutime, cstime] = [11, 12, 13, 14].map(i => Number(fields[i]))
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = key => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024
  return {
    ownTicks: utime + stime,
    childTicks: cutime + cstime,
    ticks: utime + stime + cutime + cstime,
    hwmBytes: kb('VmHWM'),
    rssBytes: kb('VmRSS'),
  }
}

/** The node flags on the `#!/usr/bin/env -S node ...` line of a built cli.js: how the image runs it. */
export function shippedNodeFlags(cli = join(ROOT, 'dist/cli.js')) {
  const first = readFileSync(cli, 'utf8').split('\n', 1)[0]
  return /^#!\/usr\/bin\/env -S node\b/.test(first) ? first.split(/\s+/).slice(3) : []
}

/**
 * Starts the agent as a sidecar would run it: `node <its shebang's flags> dist/cli.js
 * --port 0`, defaults otherwise (no OOMWATCH_* from our environment), `nodeArgs` added;
 * `shippedFlags: false` runs it with `nodeArgs` alone; `node`: another Node binary than
 * this one; `log`: a writable stream its log (stdout) goes to once it listens, else drained.
 * Resolves once it listens, with its port.
 */
export async function startAgentProcess({
  nodeArgs = [],
  shippedFlags = true,
  args = [],
  env = {},
  cli = join(ROOT, 'dist/cli.js'),
  stderr = 'inherit',
  node = process.execPath,
  log,
} = {}) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('OOMWATCH_')))
  const flags = [...(shippedFlags ? shippedNodeFlags(cli) : []), ...nodeArgs]
  const child = spawn(node, [...flags, cli, '--port', '0', ...args], { stdio: ['ignore', 'pipe', stderr], env: { ...clean, ...env } })
  const exited = new Promise(resolve => child.once('exit', (code, signal) => resolve({ code, signal })))
  let buffered = ''
  const port = await new Promise((resolve, reject) => {
    child.once('exit', code => reject(new Error(`agent exited (${code}) before listening`)))
    const untilListening = chunk => {
      buffered += chunk
      let nl
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        try {
          const entry = JSON.parse(line)
          if (typeof entry.port === 'number' && /listening/.test(entry.msg)) {
            // From now on its log is drained, not parsed: parsing a large incident's log line
            // here would delay this process's WebSocket client, and be counted as the agent's.
            child.stdout.off('data', untilListening)
            if (log) child.stdout.pipe(log)
            else child.stdout.resume()
            resolve(entry.port)
            return
          }
        } catch {
          // not JSON: keep reading
        }
      }
    }
    child.stdout.on('data', untilListening)
  })
  return {
    pid: child.pid,
    port,
    stderr: child.stderr,
    exited,
    async stop() {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    },
  }
}

/**
 * Spawns `count` idle Python processes (the seed's daemon, no leak; `daemon`: a copy of it) inside
 * `cgroup`; resolves once each printed `ready`.
 */
export async function spawnIdlePythons(count, cgroup, daemon = DAEMON) {
  const children = []
  const ready = []
  for (let i = 0; i < count; i++) {
    const [bin, ...args] = cgroup.wrap([PYTHON, daemon, '--entries', '0', '--delay', '0'])
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'ignore'] })
    children.push(child)
    ready.push(
      new Promise((resolve, reject) => {
        child.stdout.once('data', () => resolve())
        child.once('exit', code => reject(new Error(`idle python exited (${code})`)))
      }),
    )
    // Paced so that 200 interpreters starting at once do not swamp a 2-core machine
    // (1000 take ~70 s here, ~7.5 MiB of cgroup memory each).
    if (i % 10 === 9) await Promise.all(ready.slice(-10))
  }
  await Promise.all(ready)
  for (const child of children) child.stdout.destroy()
  return {
    pids: children.map(child => child.pid),
    async stop() {
      const exits = children.map(child =>
        child.exitCode !== null || child.signalCode !== null ? undefined : new Promise(resolve => child.once('exit', resolve)),
      )
      for (const child of children) child.kill('SIGKILL')
      await Promise.all(exits)
    },
  }
}

export function median(values) {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

export const fmt = (value, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '—')

/** One line describing the machine, for BENCHMARKS.md. */
export function machine() {
  const kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
  const pyspy = spawnSync(PYSPY, ['--version'], { encoding: 'utf8' }).stdout.trim()
  const python = spawnSync(PYTHON, ['--version'], { encoding: 'utf8' }).stdout.trim()
  return `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${kernel}, cgroup v${ownCgroup().version}, Node ${process.version}, ${python}, ${pyspy}; load average at start ${load}; ${new Date().toISOString()}`
}
