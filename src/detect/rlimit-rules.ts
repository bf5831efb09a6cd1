import type { Risk, RlimitTable, RlimitValue } from '../protocol/values.js'

export interface RiskOptions {
  /** NOFILE hard limit above which code sized by it is dangerous (default 1048576). */
  nofileRisk: number
}

/** Bytes per entry of a CPython set of ints (~28 B int + 16 B slot x load), for the estimate. */
const SET_BYTES_PER_ENTRY = 60

const MiB = 1 << 20

/**
 * Rlimit rules. Each is justified by a known failure:
 * - NOFILE hard huge: code sized by the fd limit (close-all-fds loops, `set(range(0, hard))`,
 *   per-fd tables in libraries) allocates per possible fd. containerd's `LimitNOFILE=infinity`
 *   makes the hard limit ~1e9 (1073741816), so such code asks for tens of GB.
 * - NOFILE soft huge: the same for code that reads the soft limit (subprocess's close_fds
 *   fallback, select/poll tables).
 * - AS limited: a finite address-space limit makes allocations fail with MemoryError long
 *   before the cgroup limit, which looks like a leak's crash but is a setting.
 */
export function findRisks(rlimits: RlimitTable, options: RiskOptions): Risk[] {
  const risks: Risk[] = []
  const nofile = rlimits.NOFILE
  if (nofile) {
    for (const which of ['hard', 'soft'] as const) {
      const value = nofile[which]
      if (!exceeds(value, options.nofileRisk)) continue
      const shown = value === 'unlimited' ? 'unlimited' : String(value)
      const estimate =
        value === 'unlimited' ? '' : ` (about ${Math.round((value * SET_BYTES_PER_ENTRY) / MiB)} MiB for a set of every fd number)`
      risks.push({
        rule: `nofile-${which}-huge`,
        rlimit: 'NOFILE',
        value,
        threshold: options.nofileRisk,
        message:
          `NOFILE ${which} limit ${shown} is above ${options.nofileRisk}: code sized by it, like a close-all-fds loop ` +
          `or set(range(0, ${which}_limit)), allocates per possible fd${estimate}. ` +
          `Lower it in the container (ulimit -n, or the runtime's LimitNOFILE).`,
      })
    }
  }
  const as = rlimits.AS
  if (as && as.soft !== 'unlimited') {
    risks.push({
      rule: 'as-limited',
      rlimit: 'AS',
      value: as.soft,
      threshold: as.soft,
      message:
        `AS (address space) soft limit is ${as.soft} bytes: allocations fail with MemoryError once virtual ` +
        `memory reaches it, whatever the container's memory limit.`,
    })
  }
  return risks
}

function exceeds(value: RlimitValue, threshold: number): boolean {
  return value === 'unlimited' || value > threshold
}
