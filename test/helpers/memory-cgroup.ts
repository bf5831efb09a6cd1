import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

/** A memory cgroup made for one test, below this process's own, with a hard limit. */
export interface TestCgroup {
  version: 1 | 2
  dir: string
  /** The kernel's count of OOM kills in this cgroup. */
  oomKills(): number
  /** A shell prefix that moves the shell into the cgroup, then execs the command. */
  wrap(command: string[]): string[]
  /** Kills what is left inside and removes the cgroup. */
  remove(): Promise<void>
}

/**
 * Makes a memory cgroup (v1 or v2, whichever this machine has) with `limitBytes`.
 * Throws with a clear message when it cannot: these tests need root and a writable
 * cgroup below their own, and must fail rather than skip without one.
 */
export function makeTestCgroup(limitBytes: number, name = `oomwatch-test-${process.pid}-${Date.now()}`): TestCgroup {
  const own = readFileSync('/proc/self/cgroup', 'utf8').split('\n')
  const v1 = own.map(line => line.split(':')).find(([, controllers]) => controllers?.split(',').includes('memory'))
  const version = v1 ? 1 : 2
  const base = v1
    ? join('/sys/fs/cgroup/memory', v1[2] ?? '')
    : join('/sys/fs/cgroup', own.find(line => line.startsWith('0::'))?.slice(3) ?? '')
  const dir = join(base, name)
  try {
    if (version === 2) writeFileSync(join(base, 'cgroup.subtree_control'), '+memory')
    mkdirSync(dir)
    writeFileSync(join(dir, version === 1 ? 'memory.limit_in_bytes' : 'memory.max'), String(limitBytes))
    if (version === 2) writeFileSync(join(dir, 'memory.swap.max'), '0')
  } catch (error) {
    throw new Error(
      `cannot make a memory cgroup at ${dir} (needs root and a writable cgroup v${version} below this process's): ${(error as Error).message}`,
      { cause: error },
    )
  }
  const oomKills = () => {
    const text = readFileSync(join(dir, version === 1 ? 'memory.oom_control' : 'memory.events'), 'utf8')
    return Number(/^oom_kill (\d+)$/m.exec(text)?.[1] ?? 0)
  }
  const procs = () => readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number)
  return {
    version,
    dir,
    oomKills,
    wrap: command => ['sh', '-c', `echo $$ > ${join(dir, 'cgroup.procs')} && exec "$@"`, 'sh', ...command],
    async remove() {
      for (let attempt = 0; attempt < 50; attempt++) {
        const left = procs()
        if (left.length === 0) break
        for (const pid of left) {
          try {
            process.kill(pid, 'SIGKILL')
          } catch {
            // already gone
          }
        }
        await sleep(100)
      }
      await removeCgroup(dir)
    },
  }
}

/**
 * Removes a cgroup whose processes were killed. On v2 it stays busy (EBUSY) until the last of
 * them is reaped, which the pod's init may not have done yet even when cgroup.procs is empty.
 */
export async function removeCgroup(dir: string): Promise<void> {
  for (let attempt = 0; existsSync(dir); attempt++) {
    try {
      rmdirSync(dir)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EBUSY' || attempt >= 100) throw error
      await sleep(50)
    }
  }
}
