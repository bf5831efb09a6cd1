import t, { type Test } from 'tap'
import { PYTHON } from '../helpers/python.js'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ancestorDirs, locateMemoryCgroup } from '../../src/cgroup/locate.js'
import {
  CgroupCounters,
  findMemoryCgroup,
  nodeIo,
  readLimit,
  toMemoryLimit,
  type CgroupIo,
  type MemoryCgroup,
} from '../../src/cgroup/memory-cgroup.js'
import { parseMountinfo, parseProcCgroup } from '../../src/cgroup/parse.js'
import { expectedCgroupVersion } from '../helpers/guest.js'

const FIX = fileURLToPath(new URL('../fixtures/cgroup', import.meta.url))
const MiB = 1024 * 1024
const limitFileOf = (version: 1 | 2): string => (version === 2 ? 'memory.max' : 'memory.limit_in_bytes')
/** Where the kernel counts OOM kills: memory.events on v2, memory.oom_control on v1. */
const oomFile = (version: 1 | 2): string => (version === 2 ? 'memory.events' : 'memory.oom_control')

const idOf = (version: 1 | 2, dir: string): string => {
  const st = statSync(dir)
  return `${version}:${st.dev}:${st.ino}`
}

const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: injected`), { code })

/** Real filesystem, except that paths under a rule's prefix fail with its errno code (most specific prefix first). */
const failing = (rules: Record<string, string>): CgroupIo => {
  const check = (path: string): void => {
    const hit = Object.keys(rules)
      .filter(p => path.startsWith(p))
      .sort((x, y) => y.length - x.length)[0]
    if (hit !== undefined) throw errno(rules[hit] as string)
  }
  return {
    readFile: path => (check(path), nodeIo.readFile(path)),
    stat: path => (check(path), nodeIo.stat(path)),
  }
}

/** Escapes a path as the kernel does in mountinfo. */
const mangle = (path: string): string => path.replace(/[ \t\n\\]/g, c => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`)

const POD = 'kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8a3c5e0f_4b1d_4c9e_9d7a_2f1e6b0c7d11.slice'
const LEAF = `${POD}/cri-containerd-5d8e2a917c44.scope`

t.test('findMemoryCgroup on fixture trees', async t => {
  t.test('v2 container in its own cgroup namespace (0::/)', async t => {
    const dir = `${FIX}/procfs-v2/100/root/sys/fs/cgroup`
    const cg = findMemoryCgroup(`${FIX}/procfs-v2`, 100)
    t.strictSame(cg, {
      id: idOf(2, dir),
      version: 2,
      dir,
      via: 'proc-root',
      chain: [dir],
      path: '/',
      limit: { bytes: 536870912, path: `${dir}/memory.max` },
    })
    t.strictSame(toMemoryLimit(cg as MemoryCgroup), {
      bytes: 536870912,
      source: 'cgroup-v2',
      path: `${dir}/memory.max`,
      via: 'proc-root',
    })
  })

  t.test('same container read from a sibling namespace: same id, other path', async t => {
    const a = findMemoryCgroup(`${FIX}/procfs-v2`, 100)
    const b = findMemoryCgroup(`${FIX}/procfs-v2/`, 101)
    t.equal(b?.dir, `${FIX}/procfs-v2/101/root/sys/fs/cgroup`)
    t.not(b?.dir, a?.dir)
    t.equal(b?.id, a?.id, 'dev:ino identifies the cgroup, not the path')
    t.equal(b?.limit?.path, `${FIX}/procfs-v2/101/root/sys/fs/cgroup/memory.max`)
  })

  t.test('v2 limit only on the pod-level parent', async t => {
    const mount = `${FIX}/procfs-v2/200/root/sys/fs/cgroup`
    const cg = findMemoryCgroup(`${FIX}/procfs-v2`, 200)
    t.equal(cg?.version, 2)
    t.equal(cg?.via, 'proc-root')
    t.equal(cg?.dir, `${mount}/${LEAF}`)
    t.strictSame(cg?.chain, ancestorDirs(mount, LEAF))
    t.equal(cg?.chain.length, 5)
    t.strictSame(cg?.limit, { bytes: 536870912, path: `${mount}/${POD}/memory.max` })
  })

  t.test('v1 container (bind-mounted memory cgroup)', async t => {
    const dir = `${FIX}/procfs-v1/300/root/sys/fs/cgroup/memory`
    const cg = findMemoryCgroup(`${FIX}/procfs-v1`, 300)
    t.strictSame(cg, {
      id: idOf(1, dir),
      version: 1,
      dir,
      via: 'proc-root',
      chain: [dir],
      path: '/kubepods/burstable/pod7c1e2d3f-0a4b-4c5d-8e6f-90a1b2c3d4e5/3b5f6a7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192',
      limit: { bytes: 268435456, path: `${dir}/memory.limit_in_bytes` },
    })
    t.equal(toMemoryLimit(cg as MemoryCgroup)?.source, 'cgroup-v1')
  })

  t.test('hybrid host: v1 memory, limit on the user slice', async t => {
    const mount = `${FIX}/procfs-hybrid/400/root/sys/fs/cgroup/memory`
    const cg = findMemoryCgroup(`${FIX}/procfs-hybrid`, 400)
    t.equal(cg?.version, 1)
    t.equal(cg?.dir, `${mount}/user.slice/user-1000.slice/session-3.scope`)
    t.strictSame(cg?.limit, { bytes: 4294967296, path: `${mount}/user.slice/user-1000.slice/memory.limit_in_bytes` })
  })

  t.test('odd trees', async t => {
    const odd = `${FIX}/procfs-odd`
    const spaced = findMemoryCgroup(odd, 500)
    t.equal(spaced?.dir, `${odd}/500/root/srv/my cgroups/app`, 'mount point with \\040 unescaped')
    t.strictSame(spaced?.limit, { bytes: 268435456, path: `${odd}/500/root/srv/my cgroups/app/memory.max` })

    const unlimited = findMemoryCgroup(odd, 503)
    t.equal(unlimited?.version, 1)
    t.equal(unlimited?.limit, undefined)
    t.notOk(unlimited !== undefined && 'limit' in unlimited, 'no limit key when nothing sets one')
    t.equal(toMemoryLimit(unlimited as MemoryCgroup), undefined)

    t.throws(() => findMemoryCgroup(odd, 501), { code: 'CGROUP_PARSE', message: /memory\.max: ""/ }, 'empty memory.max')
    t.throws(() => findMemoryCgroup(odd, 502), { code: 'CGROUP_PARSE', message: /cgroup/ }, 'garbage cgroup file')
    t.throws(() => findMemoryCgroup(odd, 507), { code: 'CGROUP_PARSE', message: /memory\.limit_in_bytes: "-1\\n"/ })
    t.equal(findMemoryCgroup(odd, 504), undefined, 'outside every mount, also in the agent view')
    t.equal(findMemoryCgroup(odd, 505), undefined, 'mountinfo gone: the process exited')
    t.equal(findMemoryCgroup(odd, 506), undefined, 'cgroup directory removed ((deleted) suffix)')
    t.equal(findMemoryCgroup(odd, 999), undefined, 'no such process')
  })

  t.test('read failures other than gone/denied are reported', async t => {
    const v2 = `${FIX}/procfs-v2`
    t.throws(() => findMemoryCgroup(v2, 100, failing({ [`${v2}/100/cgroup`]: 'EIO' })), {
      code: 'CGROUP_READ',
      path: `${v2}/100/cgroup`,
      cause: { code: 'EIO' },
    })
    t.throws(
      () => findMemoryCgroup(v2, 100, failing({ [`${v2}/100/cgroup`]: 'EACCES' })),
      { code: 'CGROUP_READ', cause: { code: 'EACCES' } },
      'the cgroup file is world-readable: denied is a real error',
    )
    const noCode: CgroupIo = {
      ...nodeIo,
      stat: () => {
        throw new Error('no errno')
      },
    }
    t.throws(() => findMemoryCgroup(v2, 100, noCode), { code: 'CGROUP_READ', message: /^cannot read .*\/sys\/fs\/cgroup$/ })
    t.throws(
      () => findMemoryCgroup(v2, 200, failing({ [`${v2}/200/root/sys/fs/cgroup/${POD}/memory.max`]: 'EACCES' })),
      { code: 'CGROUP_READ', path: `${v2}/200/root/sys/fs/cgroup/${POD}/memory.max` },
      'a limit file we may not read',
    )
  })
})

t.test('agent-mount fallback (fixtures, injected EACCES)', async t => {
  const proc = t.testdir({})
  symlinkSync(`${FIX}/procfs-v2/200`, `${proc}/200`)
  // The agent's own mount table: the host's cgroup2 hierarchy, mounted at the fixture tree.
  const hostMount = `${FIX}/procfs-v2/200/root/sys/fs/cgroup`
  mkdirSync(`${proc}/self`)
  writeFileSync(
    `${proc}/self/mountinfo`,
    '30 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n' +
      `33 24 0:27 / ${mangle(hostMount)} rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate\n`,
  )
  const viaRoot = findMemoryCgroup(proc, 200)
  t.equal(viaRoot?.via, 'proc-root')

  for (const code of ['EACCES', 'EPERM']) {
    const cg = findMemoryCgroup(proc, 200, failing({ [`${proc}/200/root`]: code }))
    t.equal(cg?.via, 'agent-mount', `${code} on /proc/<pid>/root`)
    t.equal(cg?.dir, `${hostMount}/${LEAF}`)
    t.strictSame(cg?.chain, ancestorDirs(hostMount, LEAF))
    t.strictSame(cg?.limit, { bytes: 536870912, path: `${hostMount}/${POD}/memory.max` })
    t.equal(cg?.id, viaRoot?.id, 'same cgroup, same id, whichever way it was reached')
  }
  const viaMountinfo = findMemoryCgroup(proc, 200, failing({ [`${proc}/200/mountinfo`]: 'EACCES' }))
  t.equal(viaMountinfo?.via, 'agent-mount', 'EACCES on /proc/<pid>/mountinfo')
  t.equal(viaMountinfo?.dir, `${hostMount}/${LEAF}`)
  t.equal(toMemoryLimit(viaMountinfo as MemoryCgroup)?.via, 'agent-mount')

  t.equal(findMemoryCgroup(proc, 200, failing({ [`${proc}/200/mountinfo`]: 'ESRCH' })), undefined, 'mountinfo gone: no fallback')
  t.equal(findMemoryCgroup(proc, 200, failing({ [`${proc}/200/root`]: 'ENOENT' })), undefined, 'root gone: no fallback')
  t.equal(
    findMemoryCgroup(proc, 200, failing({ [`${proc}/200/root`]: 'EACCES', [`${hostMount}/${LEAF}`]: 'ENOENT' })),
    undefined,
    'cgroup removed, seen through the agent mount',
  )
  t.throws(
    () => findMemoryCgroup(proc, 200, failing({ [`${proc}/200/root`]: 'EACCES', [hostMount]: 'EACCES' })),
    { code: 'CGROUP_READ', path: `${hostMount}/${LEAF}`, cause: { code: 'EACCES' } },
    'denied in our own view too',
  )
  t.throws(
    () => findMemoryCgroup(`${FIX}/procfs-v2`, 100, failing({ [`${FIX}/procfs-v2/100/root`]: 'EACCES' })),
    { code: 'CGROUP_READ', path: `${FIX}/procfs-v2/self/mountinfo`, cause: { code: 'ENOENT' } },
    'own mountinfo unreadable',
  )
})

t.test('agent-mount fallback when the target has no mount showing its cgroup', async t => {
  const dir = t.testdir({
    proc: {
      700: {
        cgroup: '0::/other.scope\n',
        // Only a sibling cgroup is mounted in the target's namespace.
        mountinfo: '1256 1255 0:30 /app.scope /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw\n',
      },
    },
    'cg fs': { 'other.scope': { 'memory.max': '1048576\n' } },
  })
  mkdirSync(`${dir}/proc/self`)
  writeFileSync(`${dir}/proc/self/mountinfo`, `33 24 0:27 / ${mangle(`${dir}/cg fs`)} rw - cgroup2 cgroup2 rw\n`)
  const cg = findMemoryCgroup(`${dir}/proc`, 700)
  t.equal(cg?.via, 'agent-mount')
  t.equal(cg?.dir, `${dir}/cg fs/other.scope`)
  t.strictSame(cg?.limit, { bytes: 1048576, path: `${dir}/cg fs/other.scope/memory.max` })
})

t.test('readLimit re-reads the chain', async t => {
  const dir = t.testdir({ 'memory.max': '1048576\n', child: { 'memory.max': 'max\n' } })
  const cg: MemoryCgroup = { id: 'x', version: 2, dir: `${dir}/child`, via: 'proc-root', chain: [`${dir}/child`, dir], path: '/child' }
  t.strictSame(readLimit(cg), { bytes: 1048576, path: `${dir}/memory.max` })
  writeFileSync(`${dir}/child/memory.max`, '524288\n')
  t.strictSame(readLimit(cg), { bytes: 524288, path: `${dir}/child/memory.max` }, 'resized in place')
  writeFileSync(`${dir}/child/memory.max`, '1048576\n')
  t.strictSame(readLimit(cg), { bytes: 1048576, path: `${dir}/child/memory.max` }, 'a tie goes to the innermost')
  t.equal(readLimit({ ...cg, chain: [`${dir}/nowhere`] }), undefined, 'no limit file at all')
})

t.test('CgroupCounters on fixture trees', async t => {
  t.test('v2', async t => {
    const c = new CgroupCounters(findMemoryCgroup(`${FIX}/procfs-v2`, 100) as MemoryCgroup)
    t.equal(c.dir, `${FIX}/procfs-v2/100/root/sys/fs/cgroup`)
    t.equal(c.usage(), 123604992)
    t.equal(c.usage(), 123604992, 'the second positional read sees the whole file again')
    t.equal(c.oomKills(), 2)
    t.equal(c.oomKills(), 2)
    c.close()
    c.close()
    t.throws(() => c.usage(), { code: 'CGROUP_CLOSED', name: 'CgroupClosedError' })
    t.throws(() => c.oomKills(), { code: 'CGROUP_CLOSED' })
  })

  t.test('v1', async t => {
    const c = new CgroupCounters(findMemoryCgroup(`${FIX}/procfs-v1`, 300) as MemoryCgroup)
    t.equal(c.usage(), 201326592)
    t.equal(c.oomKills(), 3)
    c.close()
  })

  t.test('no oom_kill line (old v1 kernel), no memory.events file', async t => {
    const old = new CgroupCounters(findMemoryCgroup(`${FIX}/procfs-odd`, 503) as MemoryCgroup)
    t.equal(old.usage(), 1048576)
    t.equal(old.oomKills(), undefined)
    old.close()
    const none = new CgroupCounters(findMemoryCgroup(`${FIX}/procfs-odd`, 500) as MemoryCgroup)
    t.equal(none.usage(), 4096)
    t.equal(none.oomKills(), undefined)
    none.close()
    t.throws(() => none.oomKills(), { code: 'CGROUP_CLOSED' })
  })

  t.test('the open descriptors follow in-place rewrites, any length', async t => {
    const dir = t.testdir({ 'memory.current': '7\n', 'memory.events': 'oom 0\noom_kill 0\n' })
    const c = new CgroupCounters({ id: 'x', version: 2, dir, via: 'proc-root', chain: [dir], path: '/' })
    t.equal(c.usage(), 7)
    writeFileSync(`${dir}/memory.current`, '123456789\n')
    t.equal(c.usage(), 123456789)
    writeFileSync(`${dir}/memory.current`, '5\n')
    t.equal(c.usage(), 5, 'shorter content: nothing left over from the previous read')
    // Bigger than the opening buffer: it grows and the counter at the end is still read.
    const padding = Array.from({ length: 200 }, (_, i) => `pad_${i} ${i}\n`).join('')
    writeFileSync(`${dir}/memory.events`, `${padding}oom_kill 9\n`)
    t.equal(c.oomKills(), 9)
    writeFileSync(`${dir}/memory.events`, 'oom_kill 10\n')
    t.equal(c.oomKills(), 10)
    writeFileSync(`${dir}/memory.current`, 'garbage\n')
    t.throws(() => c.usage(), { code: 'CGROUP_PARSE', message: new RegExp(`${dir}/memory\\.current: "garbage\\\\n"`) })
    writeFileSync(`${dir}/memory.events`, 'oom_kill x\n')
    t.throws(() => c.oomKills(), { code: 'CGROUP_PARSE', message: /memory\.events: "oom_kill x"/ })
    c.close()
  })

  t.test('open and read failures', async t => {
    const fds = (): number => readdirSync('/proc/self/fd').length
    const dir = t.testdir({ 'memory.current': { 'not-a-file': '' }, 'memory.events': 'oom_kill 0\n' })
    const cg: MemoryCgroup = { id: 'x', version: 2, dir, via: 'proc-root', chain: [dir], path: '/' }
    const c = new CgroupCounters(cg)
    t.throws(() => c.usage(), { code: 'CGROUP_READ', path: `${dir}/memory.current`, cause: { code: 'EISDIR' } })
    t.equal(c.oomKills(), 0)
    c.close()

    t.throws(() => new CgroupCounters({ ...cg, dir: `${dir}/gone` }), {
      code: 'CGROUP_READ',
      path: `${dir}/gone/memory.current`,
      cause: { code: 'ENOENT' },
    })

    const loop = t.testdir({ 'memory.usage_in_bytes': '1\n' })
    symlinkSync('memory.oom_control', `${loop}/memory.oom_control`) // a symlink to itself: ELOOP
    const before = fds()
    t.throws(() => new CgroupCounters({ ...cg, version: 1, dir: loop }), {
      code: 'CGROUP_READ',
      path: `${loop}/memory.oom_control`,
      cause: { code: 'ELOOP' },
    })
    t.equal(fds(), before, 'the usage descriptor opened first is closed again')
  })
})

/* ---------- The real cgroup hierarchy of this machine ---------- */

/** This process's memory cgroup directory, as located by the module under test. */
function ownMemoryCgroup(): { version: 1 | 2; dir: string } {
  const loc = locateMemoryCgroup(
    parseProcCgroup(readFileSync('/proc/self/cgroup', 'utf8')),
    parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')),
  )
  if (loc === undefined) throw new Error('this process has no mounted memory cgroup: the real-cgroup tests need one')
  return { version: loc.version, dir: join(loc.mountPoint, loc.relative) }
}

interface Child {
  proc: ChildProcess
  pid: number
  exited: Promise<[number | null, NodeJS.Signals | null]>
}

/** Starts a process and makes sure the test's teardown kills and reaps it. */
function start(t: Test, cmd: string, args: string[]): Child {
  const proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] })
  const exited = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  if (proc.pid === undefined) throw new Error(`cannot start ${cmd}`)
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
    await exited
  })
  return { proc, pid: proc.pid, exited }
}

/**
 * Creates a uniquely named child memory cgroup below this process's own, with `limit`
 * bytes, removed again in teardown (register it before the processes put in it, so
 * they are killed and reaped first: teardowns run last-registered first).
 * Fails, rather than skips, where that is impossible.
 */
function makeChildCgroup(t: Test, limit: number): { version: 1 | 2; dir: string } {
  const own = ownMemoryCgroup()
  const dir = join(own.dir, `oomwatch-test-${process.pid}-${randomBytes(4).toString('hex')}`)
  try {
    mkdirSync(dir)
  } catch (err) {
    throw new Error(
      `cannot create a child memory cgroup at ${dir} (${(err as NodeJS.ErrnoException).code}): ` +
        'the real-cgroup tests need root and a writable memory cgroup hierarchy',
      { cause: err },
    )
  }
  t.teardown(() => {
    if (existsSync(dir)) rmdirSync(dir)
  })
  writeFileSync(join(dir, limitFileOf(own.version)), String(limit))
  return { version: own.version, dir }
}

/** Resolves when `proc` prints a line equal to `line`. */
async function lineFrom(proc: ChildProcess, line: string): Promise<void> {
  let seen = ''
  for await (const chunk of proc.stdout as AsyncIterable<Buffer>) {
    seen += chunk.toString()
    // Whole lines only: an unbuffered interpreter writes "ready" and "\n" apart, and leaving
    // the loop closes the pipe, so the newline's write would kill it with EPIPE.
    if (seen.split('\n').slice(0, -1).includes(line)) return
  }
  throw new Error(`process ended before printing ${JSON.stringify(line)}; printed ${JSON.stringify(seen)}`)
}

/** Waits until `pid` is in cgroup `dir` (the sh wrapper moves itself in first). */
async function joined(pid: number, dir: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').includes(String(pid))) return
    await new Promise(r => setTimeout(r, 10))
  }
  throw new Error(`pid ${pid} never joined ${dir}`)
}

t.test('real cgroup: located through /proc/<pid>/root, counters survive the process', async t => {
  const cgroup = makeChildCgroup(t, 64 * MiB)
  const limitFile = limitFileOf(cgroup.version)
  // The process is moved in by writing its pid, then allocates: v1 charges memory to the
  // cgroup where it is touched and does not move old charges along (this kernel rejects
  // memory.move_charge_at_immigrate), so a plain sleeper would show usage 0.
  // The real interpreter, not the pyenv shim: the shim's own processes share stdin and stdout.
  const py = start(t, PYTHON, [
    '-c',
    ['import sys, time', 'sys.stdin.readline()', "x = b'x' * (8 << 20)", "print('ready', flush=True)", 'time.sleep(60)'].join('\n'),
  ])
  writeFileSync(join(cgroup.dir, 'cgroup.procs'), String(py.pid))
  py.proc.stdin?.write('go\n')
  await lineFrom(py.proc, 'ready')

  const dir = `/proc/${py.pid}/root${cgroup.dir}`
  const cg = findMemoryCgroup('/proc', py.pid) as MemoryCgroup
  t.equal(cg.version, cgroup.version)
  t.equal(cg.version, expectedCgroupVersion(cgroup.version), `this machine is cgroup v${cg.version}`)
  t.equal(cg.via, 'proc-root')
  t.equal(cg.dir, dir)
  t.strictSame(cg.limit, { bytes: 67108864, path: `${dir}/${limitFile}` })
  t.equal(cg.id, idOf(cgroup.version, cgroup.dir), 'dev:ino through /proc/<pid>/root equals our direct path')

  // A second process in the same cgroup, reached through its own /proc/<pid>/root.
  const sleeper = start(t, 'sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec sleep 60', 'sh', cgroup.dir])
  await joined(sleeper.pid, cgroup.dir)
  const other = findMemoryCgroup('/proc', sleeper.pid) as MemoryCgroup
  t.not(other.dir, cg.dir)
  t.equal(other.id, cg.id, 'two processes in one cgroup share the id')

  const counters = new CgroupCounters(cg)
  t.teardown(() => counters.close())
  const usage = counters.usage()
  t.ok(usage >= 8 * MiB, `usage ${usage} counts the 8 MiB the process touched`)
  t.ok(counters.usage() > 0, 'positional reads start from offset 0 every time')
  t.equal(counters.oomKills(), 0)
  t.equal(counters.oomKills(), 0, `the second read of ${oomFile(cgroup.version)} is whole, not EOF`)

  writeFileSync(join(cgroup.dir, limitFile), String(100 * MiB))
  t.strictSame(readLimit(cg), { bytes: 100 * MiB, path: `${dir}/${limitFile}` }, 'resized in place')

  py.proc.kill('SIGKILL')
  sleeper.proc.kill('SIGKILL')
  await Promise.all([py.exited, sleeper.exited])
  t.notOk(existsSync(`/proc/${py.pid}`), 'the process is gone')
  t.equal(findMemoryCgroup('/proc', py.pid), undefined, 'a vanished process is not an error')
  t.equal(readLimit(cg), undefined, 'limit paths through /proc/<pid>/root are gone with it')
  t.equal(counters.oomKills(), 0, 'oom_kill is still readable through the open descriptor')
  t.type(counters.usage(), 'number')

  rmdirSync(cgroup.dir)
  t.throws(
    () => counters.usage(),
    { code: 'CGROUP_READ', cause: { code: 'ENODEV' } },
    'once the cgroup is removed the descriptors fail with ENODEV',
  )
})

t.test('real cgroup: an OOM kill raises oomKills() by one', async t => {
  const cgroup = makeChildCgroup(t, 32 * MiB)
  // sh joins the cgroup, waits for the go-ahead, then becomes python: the allocation
  // happens inside the cgroup, and the pid we locate by is the one that gets killed.
  const child = start(t, 'sh', [
    '-c',
    'echo $$ > "$1/cgroup.procs" && read go && exec python3 -c "x = bytearray(100*1024*1024)"',
    'sh',
    cgroup.dir,
  ])
  await joined(child.pid, cgroup.dir)
  const cg = findMemoryCgroup('/proc', child.pid) as MemoryCgroup
  t.equal(cg.version, expectedCgroupVersion(cgroup.version))
  t.strictSame(cg.limit, { bytes: 32 * MiB, path: `${cg.dir}/${limitFileOf(cg.version)}` })
  const counters = new CgroupCounters(cg)
  t.teardown(() => counters.close())
  const before = counters.oomKills()
  t.equal(before, 0)

  child.proc.stdin?.write('go\n')
  const [code, signal] = await child.exited
  t.equal(code, null)
  t.equal(signal, 'SIGKILL', 'the OOM killer sends SIGKILL')
  t.notOk(existsSync(`/proc/${child.pid}`))
  t.equal(counters.oomKills(), (before as number) + 1, 'read after the process is gone')
  // The count the module read is the kernel's own line in memory.events (v2) or memory.oom_control (v1).
  const kernelCount = Number(/^oom_kill (\d+)$/m.exec(readFileSync(join(cgroup.dir, oomFile(cgroup.version)), 'utf8'))?.[1])
  t.equal(kernelCount, (before as number) + 1, `the kernel's oom_kill line in ${oomFile(cgroup.version)} says the same`)
})

t.test('real cgroup: an agent without ptrace rights falls back to its own mount', async t => {
  const cgroup = makeChildCgroup(t, 48 * MiB)
  const target = start(t, 'sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec sleep 60', 'sh', cgroup.dir])
  await joined(target.pid, cgroup.dir)

  // Run the lookup as nobody: /proc/<pid>/root of a root-owned process is EACCES then,
  // while its mountinfo stays readable. Tap's coverage hooks would fail to write as
  // nobody, so the child gets only the TypeScript loader.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(NODE_OPTIONS|NODE_V8_COVERAGE|_TAPJS_)/.test(k)))
  // Compiled to .js beside this file in the v2 guest (test/helpers/v2-kernel-build.ts), where no loader runs.
  const script = fileURLToPath(new URL(`../fixtures/cgroup/bin/find-memory-cgroup${extname(import.meta.url)}`, import.meta.url))
  const loader = process.execArgv.filter(a => a.includes('@tapjs/typescript'))
  const child = spawn(process.execPath, [...loader, script, '/proc', String(target.pid)], {
    uid: 65534,
    gid: 65534,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
  })
  const [code] = (await once(child, 'exit')) as [number | null]
  t.equal(code, 0, 'the unprivileged lookup ran')
  const result = JSON.parse(out) as { uid: number; cg: MemoryCgroup; counters: { usage: number; oomKills: number } }
  t.equal(result.uid, 65534)
  t.equal(result.cg.via, 'agent-mount')
  t.equal(result.cg.dir, cgroup.dir)
  t.equal(result.cg.version, expectedCgroupVersion(cgroup.version))
  t.strictSame(result.cg.limit, { bytes: 48 * MiB, path: `${cgroup.dir}/${limitFileOf(cgroup.version)}` })
  t.equal(result.cg.id, findMemoryCgroup('/proc', target.pid)?.id, 'same id as the proc-root lookup')
  t.equal(result.counters.oomKills, 0)
  t.type(result.counters.usage, 'number')
})
