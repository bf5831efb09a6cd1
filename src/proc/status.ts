import type { ProcStatus } from '../types.js'
import { ProcParseError } from './errors.js'

/**
 * Parses the text of `/proc/<pid>/status`. Memory figures (`kB` in the file, which the
 * kernel means as KiB) are returned in bytes. Kernel threads have no `Vm*` lines, and
 * a field whose value is not the expected number is treated as absent too: a missing
 * figure is safer for the caller than a wrong one.
 *
 * @throws {ProcParseError} when there is no `Name:` line.
 */
export function parseStatus(text: string): ProcStatus {
  let name: string | undefined
  const out: Omit<ProcStatus, 'name'> = {}
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':')
    if (colon < 0) continue
    const value = line.slice(colon + 1)
    switch (line.slice(0, colon)) {
      case 'Name':
        // Only the kernel's tab goes: a command name may itself start with a space.
        name = value.startsWith('\t') ? value.slice(1) : value
        break
      case 'VmRSS':
        out.rssBytes = kibToBytes(value)
        break
      case 'VmHWM':
        out.hwmBytes = kibToBytes(value)
        break
      case 'VmSwap':
        out.swapBytes = kibToBytes(value)
        break
      case 'Threads':
        out.threads = firstInt(value)
        break
      case 'PPid':
        out.ppid = firstInt(value)
        break
      case 'Uid':
        // Real, effective, saved, filesystem: the real uid is the owner of the process.
        out.uid = firstInt(value)
        break
    }
  }
  if (name === undefined) throw new ProcParseError('status', 'no Name: line')
  return { name, ...out }
}

function kibToBytes(value: string): number | undefined {
  const m = /^\s*(\d+) kB\s*$/.exec(value)
  return m === null ? undefined : Number(m[1]) * 1024
}

function firstInt(value: string): number | undefined {
  const m = /^\s*(\d+)/.exec(value)
  return m === null ? undefined : Number(m[1])
}
