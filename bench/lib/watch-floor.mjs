// The floor of the cost benchmark: a bare loop that reads the same /proc and cgroup files
// as the agent at its default cadence, and does nothing else (no detection, no events, no
// WebSocket, no logging). Every 100 ms: each container's memory usage, through a
// descriptor kept open. Every 500 ms: a scan of /proc; a new pid costs one readlink of its
// exe, a new Python process its cmdline, stat, limits and cgroup. Every 1 s: each Python
// process's stat, through a descriptor kept open (pread), as the agent reads it. Prints
// `ready` after the first scan; runs until killed.
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, readSync } from 'node:fs'
import { join } from 'node:path'

const INTERPRETER = /^python(?:\d+(?:\.\d+)?[dmt]*)?$/
const seen = new Set() // pids examined once, Python or not
const pythons = new Map() // pid -> { rssPages, limits, cmdline, cgroup, statFd }
const cgroups = new Map() // usage file -> { fd, bytes, members }
const buf = Buffer.alloc(512)

function usageFileOf(pid) {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .split('\n')
    .map(line => line.split(':'))
  const v1 = lines.find(([, controllers]) => controllers?.split(',').includes('memory'))
  return v1
    ? join('/sys/fs/cgroup/memory', v1[2], 'memory.usage_in_bytes')
    : join('/sys/fs/cgroup', lines.find(([id]) => id === '0')[2], 'memory.current')
}

function rssPages(stat) {
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[21])
}

function scan() {
  const present = new Set()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const pid = Number(name)
    present.add(pid)
    if (seen.has(pid)) continue
    seen.add(pid)
    try {
      const exe = readlinkSync(`/proc/${pid}/exe`)
      if (!INTERPRETER.test(exe.slice(exe.lastIndexOf('/') + 1))) continue
      const cmdline = readFileSync(`/proc/${pid}/cmdline`)
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const limits = readFileSync(`/proc/${pid}/limits`, 'utf8')
      const cgroup = usageFileOf(pid)
      const statFd = openSync(`/proc/${pid}/stat`, 'r')
      if (!cgroups.has(cgroup)) cgroups.set(cgroup, { fd: openSync(cgroup, 'r'), bytes: 0, members: 0 })
      cgroups.get(cgroup).members++
      pythons.set(pid, { rssPages: rssPages(stat), limits, cmdline, cgroup, statFd })
    } catch {
      // gone, a kernel thread, or not ours to read
    }
  }
  for (const pid of seen) if (!present.has(pid)) seen.delete(pid)
  for (const [pid, python] of pythons) {
    if (present.has(pid)) continue
    pythons.delete(pid)
    closeSync(python.statFd)
    const cgroup = cgroups.get(python.cgroup)
    if (--cgroup.members === 0) (closeSync(cgroup.fd), cgroups.delete(python.cgroup))
  }
}

function usage() {
  for (const cgroup of cgroups.values()) cgroup.bytes = Number(buf.toString('utf8', 0, readSync(cgroup.fd, buf, 0, buf.length, 0)))
}

function refresh() {
  for (const python of pythons.values()) {
    try {
      python.rssPages = rssPages(buf.toString('utf8', 0, readSync(python.statFd, buf, 0, buf.length, 0)))
    } catch {
      // gone: the next scan drops it
    }
  }
}

scan()
process.stdout.write(`ready ${pythons.size}\n`)
setInterval(usage, 100)
setInterval(scan, 500)
setInterval(refresh, 1000)
