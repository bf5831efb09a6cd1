import t from 'tap'
import { buildIncident, type IncidentParts } from '../../src/capture/incident.js'
import { findRisks } from '../../src/detect/rlimit-rules.js'
import { Series } from '../../src/detect/series.js'
import { assess } from '../../src/detect/trigger.js'
import { formatBytes } from '../../src/format/bytes.js'

// An incident built from its parts: verdict, limit, rlimits, risks and the stack.
t.test('buildIncident', async t => {
  const LIMIT = 256 * 1024 * 1024
  const samples = Array.from({ length: 40 }, (_, i) => ({ t: i * 100, bytes: 20 * 1024 * 1024 + i * 4_000_000 }))
  const verdict = assess(Series.of(samples), LIMIT, { fraction: 0.9, seconds: 3, windowMs: 2000 })
  if (verdict.state !== 'runaway') throw new Error(`a real verdict is a runaway, not ${verdict.state}`)
  const rlimits = { NOFILE: { soft: 1024, hard: 1073741816, units: 'files' } }
  const risks = findRisks(rlimits, { nofileRisk: 1048576 })
  const base: IncidentParts = {
    id: 'inc-1',
    pid: 4242,
    cmdline: ['python3', '/app/leak.py'],
    verdict,
    rssBytes: 150_000_000,
    limit: { bytes: LIMIT, source: 'cgroup-v2', path: '/sys/fs/cgroup/memory.max', via: 'proc-root' },
    rlimits,
    risks,
    process: { threads: 1, hwmBytes: 160_000_000 },
    stack: {
      threads: [
        {
          id: 1,
          name: 'MainThread',
          active: true,
          ownsGil: true,
          frames: [{ function: 'fd_table_from_limit', file: '/app/leak.py', line: 12 }],
        },
      ],
      culprit: { function: 'fd_table_from_limit', file: '/app/leak.py', line: 12, threadId: 1, threadName: 'MainThread', why: 'x' },
      pyspyMs: 41.5,
    },
    triggerToStackMs: 52.345,
  }

  t.test('with a culprit and a risk', async t => {
    const incident = buildIncident(base)
    t.match(incident, {
      type: 'incident',
      id: 'inc-1',
      pid: 4242,
      reason: 'time-to-limit',
      memory: {
        rssBytes: 150_000_000,
        usageBytes: verdict.usage,
        limitBytes: LIMIT,
        limitSource: 'cgroup-v2',
        limitPath: '/sys/fs/cgroup/memory.max',
        growthBytesPerSec: 40_000_000,
        secondsToLimit: Math.round(verdict.secondsToLimit * 100) / 100,
      },
      culprit: { function: 'fd_table_from_limit' },
      capture: { triggerToStackMs: 52.3, pyspyMs: 41.5 },
    })
    t.equal(incident.memory.fractionOfLimit, Math.round(verdict.fraction * 1000) / 1000)
    t.strictSame(incident.rlimits, rlimits)
    t.strictSame(incident.process, { threads: 1, hwmBytes: 160_000_000 })
    t.strictSame(incident.risks, risks)
    t.notOk('error' in incident.capture)
    const { summary } = incident
    t.match(summary, /^fd_table_from_limit \(\/app\/leak\.py:12\) is growing memory: /)
    t.match(summary, `${formatBytes(verdict.usage)} of 256 MiB (`)
    t.match(summary, `%, cgroup-v2), +${formatBytes(40_000_000)}/s, limit in `)
    t.match(summary, `Likely cause: ${risks[0]!.message}`)
    t.match(summary, '1073741816')
  })

  t.test('not growing: secondsToLimit null, no "limit in"', async t => {
    const incident = buildIncident({ ...base, verdict: { ...base.verdict, secondsToLimit: Infinity }, risks: [] })
    t.equal(incident.memory.secondsToLimit, null)
    t.notMatch(incident.summary, /limit in/)
    t.notMatch(incident.summary, /Likely cause/, 'no risk, no explanation')
  })

  t.test('the stack failed: the error, no culprit', async t => {
    const error = { code: 'PTRACE_DENIED' as const, message: 'Permission denied', remedy: 'add SYS_PTRACE' }
    const incident = buildIncident({
      ...base,
      stack: { threads: [], pyspyMs: 3, error },
      rssBytes: undefined,
      limit: { bytes: LIMIT, source: 'env' },
    })
    t.strictSame(incident.capture.error, error)
    t.notOk('culprit' in incident)
    t.match(incident.summary, /^pid 4242 \(no stack: PTRACE_DENIED\) is growing memory/)
    t.notOk('rssBytes' in incident.memory)
    t.notOk('limitPath' in incident.memory)
    t.match(incident.summary, ', env)')
  })

  t.test('no error and no Python thread', async t => {
    const incident = buildIncident({ ...base, stack: { threads: [], pyspyMs: 3 } })
    t.match(incident.summary, /^pid 4242 \(no stack: no Python thread\)/)
  })
})
