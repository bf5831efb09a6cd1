/**
 * Pure cgroup location: from a process's `/proc/<pid>/cgroup` entries and a mount table,
 * which mounted directory is its memory cgroup. No I/O: the caller decides whose mount
 * table it is and what prefix (`/proc/<pid>/root`) to put in front.
 */
import { posix } from 'node:path'
import type { CgroupEntry, MountEntry } from './parse.js'

/** Where a memory cgroup sits in a mount table. */
export interface MemoryCgroupLocation {
  version: 1 | 2
  /** The mount point of the cgroup filesystem that shows it. */
  mountPoint: string
  /** The cgroup's path below the mount point, without a leading slash; `''` when it is the mount point. */
  relative: string
}

/** Path segments; empty ones (leading, trailing, doubled slashes) dropped. */
function segments(path: string): string[] {
  return path.split('/').filter(s => s !== '')
}

/**
 * The part of `cgroupPath` below `mountRoot`, or `undefined` when the cgroup is not
 * visible through the mount. Both paths are relative to the same cgroup namespace and
 * may start with `..` segments, so they are compared as text, never normalised: `/..`
 * in both is the same place, and a `..` left over after the prefix climbs out of it.
 */
function below(mountRoot: string, cgroupPath: string): string | undefined {
  const root = segments(mountRoot)
  const path = segments(cgroupPath)
  if (path.length < root.length) return undefined
  if (root.some((s, i) => path[i] !== s)) return undefined
  const rest = path.slice(root.length)
  if (rest.includes('..')) return undefined
  return rest.join('/')
}

/**
 * Of the mounts that show `cgroupPath`, the one that shows it most directly: the deepest
 * mount root (a container's bind mount of its own cgroup beats a host-wide mount), and
 * on a tie the later line, since a later mount on the same point shadows an earlier one.
 */
function bestMount(mounts: MountEntry[], cgroupPath: string): { mount: MountEntry; relative: string } | undefined {
  let best: { mount: MountEntry; relative: string; depth: number } | undefined
  for (const mount of mounts) {
    const relative = below(mount.root, cgroupPath)
    if (relative === undefined) continue
    const depth = segments(mount.root).length
    if (best === undefined || depth >= best.depth) best = { mount, relative, depth }
  }
  return best
}

/**
 * Finds the memory cgroup of a process in a mount table.
 *
 * A v1 line with the `memory` controller wins (on a hybrid host the memory controller
 * lives on v1 and the cgroup2 mount has none); otherwise the `0::` line with a `cgroup2`
 * mount. When the process has a v1 memory line but no v1 memory mount shows it, the v2
 * hierarchy is not tried: it would carry no memory controller.
 *
 * @param entries - the process's `/proc/<pid>/cgroup`
 * @param mounts - a mount table in the same cgroup namespace view as `entries`
 * @returns `undefined` when no mount shows the process's memory cgroup
 */
export function locateMemoryCgroup(entries: CgroupEntry[], mounts: MountEntry[]): MemoryCgroupLocation | undefined {
  const v1 = entries.find(e => e.hierarchy !== 0 && e.controllers.includes('memory'))
  if (v1 !== undefined) {
    const found = bestMount(
      mounts.filter(m => m.fsType === 'cgroup' && m.superOptions.includes('memory')),
      v1.path,
    )
    return found && { version: 1, mountPoint: found.mount.mountPoint, relative: found.relative }
  }
  const v2 = entries.find(e => e.hierarchy === 0)
  if (v2 === undefined) return undefined
  const found = bestMount(
    mounts.filter(m => m.fsType === 'cgroup2'),
    v2.path,
  )
  return found && { version: 2, mountPoint: found.mount.mountPoint, relative: found.relative }
}

/**
 * The memory cgroup's path as `entries` give it (the v1 memory line, else the v2 one): a
 * container runtime names its leaf after the container, where a sidecar's view of the
 * mount cannot (it sees the app's own cgroup mounted at `/`).
 */
export function memoryCgroupPath(entries: CgroupEntry[]): string {
  const line = entries.find(e => e.hierarchy !== 0 && e.controllers.includes('memory')) ?? entries.find(e => e.hierarchy === 0)
  return line?.path ?? '/'
}

/**
 * The cgroup directory and its ancestors inside the mount, innermost first, ending at
 * the mount point: the chain whose smallest limit is the one enforced.
 *
 * @param mountPoint - the mount point (possibly already prefixed with `/proc/<pid>/root`)
 * @param relative - as returned by {@link locateMemoryCgroup}
 */
export function ancestorDirs(mountPoint: string, relative: string): string[] {
  const rest = segments(relative)
  const dirs: string[] = []
  for (let n = rest.length; n >= 0; n--) dirs.push(posix.join(mountPoint, ...rest.slice(0, n)))
  return dirs
}
