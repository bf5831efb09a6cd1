// The cost benchmark's systeminformation variant: the agent's polling written with
// `si.processes()`, the first thing the package list suggests. Every 100 ms: each
// container's memory usage, through a descriptor kept open (si has no cgroup reader).
// Every 500 ms: `si.processes()`, which finds new Python processes and gives every
// process's RSS at once (so it also stands for the 1 s per-process read); a new Python
// process's limits and cgroup are read from /proc (si has no rlimits). A scan is not
// started while the last one runs. Prints `ready` after the first scan.
import { closeSync, openSync, readFileSync, readSync } from 'node:fs'
import { join } from 'node:path'
import si from 'systeminformation'

const INTERPRETER = /^python(?:\d+(?:\.\d+)?[dmt]*)?$/
const pythons = new Map() // pid -> { rssBytes, limits, command, cgroup }
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

async function scan() {
  const { list } = await si.processes()
  const present = new Set()
  for (const p of list) {
    if (!INTERPRETER.test(p.name) && !INTERPRETER.test(p.command.slice(p.command.lastIndexOf('/') + 1))) continue
    present.add(p.pid)
    const known = pythons.get(p.pid)
    if (known) {
      known.rssBytes = p.memRss * 1024
      continue
    }
    try {
      const limits = readFileSync(`/proc/${p.pid}/limits`, 'utf8')
      const cgroup = usageFileOf(p.pid)
      if (!cgroups.has(cgroup)) cgroups.set(cgroup, { fd: openSync(cgroup, 'r'), bytes: 0, members: 0 })
      cgroups.get(cgroup).members++
      pythons.set(p.pid, { rssBytes: p.memRss * 1024, limits, command: `${p.command} ${p.params}`, cgroup })
    } catch {
      // gone since ps listed it
    }
  }
  for (const [pid, python] of pythons) {
    if (present.has(pid)) continue
    pythons.delete(pid)
    const cgroup = cgroups.get(python.cgroup)
    if (--cgroup.members === 0) (closeSync(cgroup.fd), cgroups.delete(python.cgroup))
  }
}

function usage() {
  for (const cgroup of cgroups.values()) cgroup.bytes = Number(buf.toString('utf8', 0, readSync(cgroup.fd, buf, 0, buf.length, 0)))
}

async function scanLoop() {
  const started = performance.now()
  await scan()
  setTimeout(scanLoop, Math.max(0, 500 - (performance.now() - started)))
}

await scan()
process.stdout.write(`ready ${pythons.size}\n`)
setInterval(usage, 100)
setTimeout(scanLoop, 500)
