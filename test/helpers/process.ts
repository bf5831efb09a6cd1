import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

/** True while `pid` exists and is not a zombie: its memory, and its stack, still there. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    return state !== 'Z' && state !== 'X'
  } catch {
    return false
  }
}

/** Resolves with the monotonic time at which `pid` was first seen dead (polled every 2 ms). */
export async function deathOf(pid: number, timeoutMs = 60_000): Promise<number> {
  const until = performance.now() + timeoutMs
  while (performance.now() < until) {
    if (!isAlive(pid)) return performance.now()
    await sleep(2)
  }
  throw new Error(`pid ${pid} still alive after ${timeoutMs} ms`)
}

/** Waits for a file to hold a pid (a daemon's pidfile). */
export async function readPidfile(path: string, timeoutMs = 10_000): Promise<number> {
  const until = performance.now() + timeoutMs
  while (performance.now() < until) {
    try {
      const pid = Number(readFileSync(path, 'utf8'))
      if (pid > 0) return pid
    } catch {
      // not written yet
    }
    await sleep(10)
  }
  throw new Error(`no pid in ${path} after ${timeoutMs} ms`)
}
