import type { PythonIdentity } from '../protocol/values.js'

/*
 * CPython installs its interpreter as python, python3, python3.11, with ABI flags
 * appended on some builds: d (debug), m (pymalloc, up to 3.7), t (free-threaded,
 * 3.13+). Anything else that starts with "python" (python3-config, pythonista) is not
 * an interpreter. `ipython` and friends are scripts whose exe is the interpreter.
 */
const INTERPRETER = /^python(?:\d+(?:\.\d+)?[dmt]*)?$/

/** libpython3.11.so.1.0, libpython2.7.so, libpython3.13t.so, libpython3.so (stable ABI). */
const LIBPYTHON = /^libpython\d+(?:\.\d+)?[dmt]*\.so(?:\.\d+)*$/

// The kernel appends this to an exe link or a mapped path whose file was unlinked,
// as happens to a running interpreter when its package is upgraded.
const DELETED = ' (deleted)'

/*
 * A maps line: address, perms, offset, dev, inode, then the pathname after padding.
 * The pathname is the rest of the line, spaces included.
 */
const MAPS_PATHNAME = /^\S+\s+\S+\s+\S+\s+\S+\s+\d+\s+(.+)$/

/**
 * Whether `path` (an exe link target) names a CPython interpreter binary, judged by
 * its basename. A `" (deleted)"` suffix is ignored.
 */
export function isPythonExecutable(path: string): boolean {
  return INTERPRETER.test(basename(path))
}

/**
 * The pathname of the first libpython shared library mapped in `/proc/<pid>/maps`
 * text, as the kernel prints it (so a `" (deleted)"` marker is kept), or `undefined`.
 * This is how an embedding host (uwsgi, mod_wsgi, a C++ service) is recognised.
 */
export function findLibpython(mapsText: string): string | undefined {
  // Most processes map no libpython; skip the line split for them.
  if (!mapsText.includes('libpython')) return undefined
  for (const line of mapsText.split('\n')) {
    const pathname = MAPS_PATHNAME.exec(line)?.[1]
    if (pathname !== undefined && LIBPYTHON.test(basename(pathname))) return pathname
  }
  return undefined
}

/**
 * Decides whether a process is Python: first by its executable, then by a mapped
 * libpython. Either input may be `undefined` (a kernel thread has no exe; maps may
 * not have been read).
 *
 * @param exe - the target of `/proc/<pid>/exe`
 * @param mapsText - the text of `/proc/<pid>/maps`
 */
export function identifyPython(exe: string | undefined, mapsText: string | undefined): PythonIdentity | undefined {
  if (exe !== undefined && isPythonExecutable(exe)) return { via: 'exe', detail: exe }
  const lib = mapsText === undefined ? undefined : findLibpython(mapsText)
  return lib === undefined ? undefined : { via: 'libpython', detail: lib }
}

function basename(path: string): string {
  const live = path.endsWith(DELETED) ? path.slice(0, -DELETED.length) : path
  return live.slice(live.lastIndexOf('/') + 1)
}
