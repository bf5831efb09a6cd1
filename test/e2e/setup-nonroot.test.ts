import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import {
  copyFileSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
} from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { PYTHON } from '../helpers/python.js'
import { connect } from '../helpers/client.js'
import type { HelloPayload } from '../../src/protocol/events.js'

// The README's first command, `npm run setup && npm start`, as a user without root, on a copy
// of the project's tracked files that the user owns: no apt, nothing written outside that copy
// and its HOME. npm ci, the venv and the build take most of its time; CI runs it once per Node.
const REPO = fileURLToPath(new URL('../..', import.meta.url))
const USER = 'nobody'
const LABEL = `oomwatch-setup-${process.pid}`

/** The user's uid and gid, as the system's user database has them. */
function ids(user: string): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, user], { encoding: 'utf8' }).trim())
  return { uid: id('-u'), gid: id('-g') }
}

/** Copies the files git tracks (as they are in the work tree) into `dest`: symlinks as links, modes kept. */
function copyTracked(dest: string): void {
  const files = execFileSync('git', ['ls-files', '-z'], { cwd: REPO, encoding: 'utf8' }).split('\0').filter(Boolean)
  for (const file of files) {
    const from = join(REPO, file)
    const to = join(dest, file)
    const stat = lstatSync(from, { throwIfNoEntry: false })
    // A tracked file deleted in the work tree is not part of it.
    if (stat === undefined) continue
    mkdirSync(dirname(to), { recursive: true })
    if (stat.isSymbolicLink()) symlinkSync(readlinkSync(from), to)
    else copyFileSync(from, to)
  }
}

/** The process's output so far, and how it ended. */
interface Run {
  child: ChildProcess
  output: () => string
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Runs `command` as the user (setpriv drops every capability with the uid), in its own process group. */
function runAs(who: { uid: number; gid: number }, command: string[], cwd: string, env: Record<string, string>): Run {
  const wrapped = ['--reuid', String(who.uid), '--regid', String(who.gid), '--clear-groups', '--pdeathsig', 'SIGKILL', '--']
  const child = spawn('setpriv', [...wrapped, ...command], { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  let text = ''
  child.stdout.on('data', chunk => (text += chunk))
  child.stderr.on('data', chunk => (text += chunk))
  // On exit, not on close: an orphaned grandchild would hold the pipes open.
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(resolve =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  )
  return { child, output: () => text, done }
}

/** Waits for `check` to return a value, polling; fails with `what` and the output after `ms`. */
async function until<T>(what: string, ms: number, run: Run, check: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    const value = await check().catch(() => undefined)
    if (value !== undefined) return value
    await sleep(250)
  }
  throw new Error(`${what} within ${ms} ms; output:\n${run.output().slice(-4000)}`)
}

/** Whether any process of group `pgid` is alive. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0)
    return true
  } catch {
    return false
  }
}

// 30 to 55 s measured here, two minutes on a busy machine: more than package.json's 180 s per file.
t.setTimeout(300_000)

if (process.getuid?.() !== 0) {
  t.plan(0, 'needs root: it creates files owned by another user and runs the setup as that user (setpriv)')
} else {
  t.test(`npm run setup && npm start as ${USER}: no root, no apt, the agent watches the user's Python`, async t => {
    const who = ids(USER)
    const base = mkdtempSync(join(tmpdir(), 'oomwatch-setup-'))
    const groups: number[] = []
    t.teardown(() => {
      for (const pgid of groups) if (groupAlive(pgid)) process.kill(-pgid, 'SIGKILL')
      rmSync(base, { recursive: true, force: true })
    })
    const project = join(base, 'project')
    const home = join(base, 'home')
    const cache = join(base, 'npm-cache')
    copyTracked(project)
    mkdirSync(home)
    // npm ci from a copy of root's npm cache (CI's own npm ci filled it): fast, and it needs
    // the registry only for what is missing. The user must own it (npm appends to its index).
    const rootCache = join(process.env.npm_config_cache ?? join(homedir(), '.npm'), '_cacache')
    if (existsSync(rootCache)) cpSync(rootCache, join(cache, '_cacache'), { recursive: true })
    else mkdirSync(cache)
    // This machine's package-index settings for pip, where root keeps them, become the user's.
    for (const file of ['.config/pip/pip.conf', '.pip/pip.conf']) {
      if (!existsSync(join(homedir(), file))) continue
      mkdirSync(dirname(join(home, file)), { recursive: true })
      cpSync(join(homedir(), file), join(home, file))
    }
    execFileSync('chown', ['-R', `${who.uid}:${who.gid}`, base])
    execFileSync('chmod', ['0755', base])

    // A user's environment, none of the test runner's (its NODE_OPTIONS loads a hook that
    // writes under .tap). This Node first on PATH: CI's second pass runs the image's.
    const passed = Object.entries(process.env).filter(([name]) => /^(PIP_|https?_proxy$|no_proxy$)/i.test(name))
    const env: Record<string, string> = {
      ...(Object.fromEntries(passed) as Record<string, string>),
      HOME: home,
      PATH: `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`,
      LANG: 'C.UTF-8',
      npm_config_cache: cache,
      npm_config_prefer_offline: 'true',
      npm_config_update_notifier: 'false',
    }

    const started = performance.now()
    const setup = runAs(who, ['npm', 'run', 'setup'], project, env)
    groups.push(setup.child.pid!)
    const setupEnd = await setup.done
    const setupSeconds = (performance.now() - started) / 1000
    t.equal(setupEnd.code, 0, `npm run setup as ${USER} exits 0 (${setupSeconds.toFixed(1)} s)`, {
      output: setup.output().slice(-4000),
    })
    t.notMatch(setup.output(), /apt-get|installing Debian packages/, 'the setup runs no apt')
    t.ok(existsSync(join(project, '.venv/bin/py-spy')), 'py-spy is in the copy, in ./.venv')

    // A Python process of the user, and one of root: the agent sees both, with different rights.
    const sleeper = ['-c', 'import time; time.sleep(600)', LABEL]
    const mine = runAs(who, ['python3', ...sleeper], project, env)
    groups.push(mine.child.pid!)
    const roots = spawn(PYTHON, sleeper, { stdio: 'ignore' })
    t.teardown(() => void roots.kill('SIGKILL'))

    const startAt = performance.now()
    const agent = runAs(who, ['npm', 'start'], project, { ...env, OOMWATCH_PORT: '0', OOMWATCH_MATCH: LABEL })
    groups.push(agent.child.pid!)
    // Port 0: the agent's first log line says which port it got.
    const port = await until('the agent listening', 150_000, agent, async () => {
      const line = agent.output().match(/^\{.*"port":(\d+).*listening on.*$/m)
      return line ? Number(line[1]) : undefined
    })
    const ready = await until('/readyz 200', 30_000, agent, async () => {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`)
      return res.status === 200 ? res : undefined
    })
    t.equal(
      ready.status,
      200,
      `/readyz answers 200 (${((performance.now() - startAt) / 1000).toFixed(1)} s after npm start, build included)`,
    )
    const watched = await until('both Python processes watched', 30_000, agent, async () => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
      // One series per container and command: summed.
      const count = [...text.matchAll(/^oomwatch_watched_processes\{[^}]*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0)
      return count >= 2 ? count : undefined
    })
    t.equal(watched, 2, 'oomwatch_watched_processes counts the two labelled Python processes')

    const client = await connect(port)
    t.teardown(() => client.close())
    const hello = (await client.waitFor(event => event.type === 'hello')) as unknown as HelloPayload
    const own = hello.watching.find(p => p.pid === mine.child.pid)
    const other = hello.watching.find(p => p.pid === roots.pid)
    t.equal(own?.python.via, 'exe', "the user's own process: recognised by /proc/<pid>/exe, which the user may read")
    t.equal(other?.python.via, 'cmdline', "root's process: seen, but by its command line only (its exe is refused)")

    // The py-spy the setup installed, run as the user: the user's own process, not root's.
    const pyspy = join(project, '.venv/bin/py-spy')
    const asUser = ['--reuid', String(who.uid), '--regid', String(who.gid), '--clear-groups', '--']
    const dump = (pid: number) => spawnSync('setpriv', [...asUser, pyspy, 'dump', '--pid', String(pid)], { encoding: 'utf8', env })
    const yama = existsSync('/proc/sys/kernel/yama/ptrace_scope') ? Number(readFileSync('/proc/sys/kernel/yama/ptrace_scope', 'utf8')) : 0
    const ownDump = dump(mine.child.pid!)
    if (yama === 0) t.match(ownDump.stdout, new RegExp(`Thread ${mine.child.pid}`), "py-spy dumps the user's own process", ownDump)
    else t.not(ownDump.status, 0, `Yama ptrace_scope ${yama}: py-spy may not attach to a process it did not start`)
    const otherDump = dump(roots.pid!)
    t.not(otherDump.status, 0, "py-spy is refused root's process")
    t.match(otherDump.stdout + otherDump.stderr, /permission denied/i, 'with the error oomwatch reports as PTRACE_DENIED')

    // SIGTERM to npm, as a supervisor sends it: it reaches the agent, which stops cleanly.
    client.close()
    agent.child.kill('SIGTERM')
    const end = await Promise.race([agent.done, sleep(20_000).then(() => 'still running 20 s after SIGTERM')])
    t.strictSame(end, { code: 0, signal: null }, 'npm start exits 0 on SIGTERM')
    t.match(agent.output(), /"msg":"oomwatch stopped"/, 'the agent logged its clean stop')
    t.notOk(groupAlive(agent.child.pid!), 'no process of npm start outlives it (the agent is not orphaned)')
    t.comment(`npm run setup took ${setupSeconds.toFixed(1)} s; the whole test ${((performance.now() - started) / 1000).toFixed(1)} s`)
  })
}
