import { runChild } from '../exec/run-child.js'

/** The outcome of one prlimit(1) run. */
export type ClampResult = { result: 'done' } | { result: 'refused' | 'failed'; reason: string; remedy: string }

/**
 * Lowers `pid`'s NOFILE limits with prlimit(1) (util-linux; Node has no prlimit(2)). On
 * another user's process this needs CAP_SYS_RESOURCE, and the kernel says EPERM without it.
 */
export async function setNofile(pid: number, soft: number, hard: number): Promise<ClampResult> {
  const run = await runChild({ bin: 'prlimit', args: ['--pid', String(pid), `--nofile=${soft}:${hard}`], timeoutMs: 5000 })
  if (run.spawnError)
    return {
      result: 'failed',
      reason: `prlimit could not run: ${run.spawnError.code ?? run.spawnError.message}`,
      remedy: 'install util-linux (it provides prlimit) in the image',
    }
  if (run.exitCode === 0) return { result: 'done' }
  const reason = run.stderr.trim() || `prlimit exited with ${run.exitCode}`
  if (/operation not permitted/i.test(reason)) {
    return { result: 'refused', reason, remedy: "add SYS_RESOURCE to the oomwatch container's securityContext.capabilities.add" }
  }
  return { result: 'failed', reason, remedy: 'run the same prlimit by hand to see why' }
}
