import { cpSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const FIXTURES = fileURLToPath(new URL('../fixtures/proc/', import.meta.url))

/** cgroup v2 as a pod's app container sees it: its own cgroup at /sys/fs/cgroup (cgroup namespace root). */
const V2_MOUNTINFO =
  '30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n'

/**
 * A procfs root in `dir` holding the captured python3.11 process 4242 (NOFILE hard
 * 1073741816) and the uwsgi process 4343, each in a cgroup v2 container of its own
 * whose files are under `<pid>/root/sys/fs/cgroup`. Tests edit the files to inject faults.
 */
export function makeFakeProc(dir: string, limitBytes = 268435456): { dir: string; cgroupDir: (pid: number) => string } {
  const cgroupDir = (pid: number) => join(dir, String(pid), 'root/sys/fs/cgroup')
  for (const pid of [4242, 4343]) {
    cpSync(join(FIXTURES, String(pid)), join(dir, String(pid)), { recursive: true, verbatimSymlinks: true })
    writeFileSync(join(dir, String(pid), 'cgroup'), '0::/\n')
    writeFileSync(join(dir, String(pid), 'mountinfo'), V2_MOUNTINFO)
    mkdirSync(cgroupDir(pid), { recursive: true })
    writeFileSync(join(cgroupDir(pid), 'memory.max'), `${limitBytes}\n`)
    writeFileSync(join(cgroupDir(pid), 'memory.current'), `${10 << 20}\n`)
    writeFileSync(join(cgroupDir(pid), 'memory.events'), 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n')
  }
  mkdirSync(join(dir, 'self'))
  writeFileSync(join(dir, 'self', 'mountinfo'), V2_MOUNTINFO)
  return { dir, cgroupDir }
}
