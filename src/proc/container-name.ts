/**
 * Which container a process runs in, as a metric label: pure, from what /proc gives.
 * Kubernetes tells no process its container's name; `oomwatch inject` puts it in each app
 * container's environment. Elsewhere the cgroup's leaf stands in (a runtime names it after
 * the container's id).
 */
import { CONTAINER_NAME_VARIABLE } from '../protocol/values.js'

const PREFIX = `${CONTAINER_NAME_VARIABLE}=`
/** A container's id as runtimes write it into the cgroup's name: 64 hex digits. */
const CONTAINER_ID = /[0-9a-f]{64}/

/** The name `oomwatch inject` set, from the raw `/proc/<pid>/environ` (NUL-separated). */
export function nameFromEnviron(environ: Buffer): string | undefined {
  for (const entry of environ.toString('utf8').split('\0')) {
    if (entry.startsWith(PREFIX)) return entry.slice(PREFIX.length).trim() || undefined
  }
  return undefined
}

/**
 * The container label: the injected name, else the id in the cgroup's leaf shortened to 12
 * digits as `docker ps` and `crictl ps` show it, else the leaf itself (a systemd scope, a
 * test's cgroup); `''` at a cgroup root or without a cgroup.
 */
export function containerName(injected: string | undefined, cgroupPath: string | undefined): string {
  if (injected !== undefined) return injected
  const leaf =
    cgroupPath
      ?.split('/')
      .filter(s => s !== '' && s !== '..')
      .pop() ?? ''
  const id = CONTAINER_ID.exec(leaf)
  return id ? id[0].slice(0, 12) : leaf
}
