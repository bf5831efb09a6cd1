import { closeSync, openSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import type { OomwatchEvent } from '../../src/protocol/events.js'

/** A valid `process` event (~320 bytes as a journal line), as the agent journals them. */
export function syntheticProcess(seq: number): OomwatchEvent {
  return {
    type: 'process',
    pid: 1000 + (seq % 30000),
    ppid: 1,
    startTime: seq,
    cmdline: ['/usr/bin/python3', '/app/worker.py', '--queue', `jobs-${seq % 17}`],
    python: { via: 'exe', detail: '/usr/bin/python3.11' },
    rlimits: { NOFILE: { soft: 1024, hard: 1048576, units: 'files' } },
    memory: { rssBytes: 12_345_678, limit: { bytes: 268_435_456, source: 'cgroup-v2' } },
    seq,
    ts: new Date(1_790_000_000_000 + seq).toISOString(),
  }
}

/** The journal's name for a segment whose first event is `firstSeq`. */
export function segmentName(firstSeq: number): string {
  return `events-${String(firstSeq).padStart(16, '0')}.jsonl`
}

/**
 * Writes `count` synthetic events, seq 1 to `count`, into `segments` segment files of `dir`,
 * as a previous agent would have left them; returns their total size in bytes.
 */
export function fillJournal(dir: string, count: number, segments: number): number {
  const perSegment = Math.ceil(count / segments)
  let bytes = 0
  for (let first = 1; first <= count; first += perSegment) {
    const fd = openSync(join(dir, segmentName(first)), 'w', 0o600)
    let batch = ''
    for (let seq = first; seq < first + perSegment && seq <= count; seq++) {
      batch += `${JSON.stringify(syntheticProcess(seq))}\n`
      if (batch.length > 1 << 20) {
        bytes += writeSync(fd, batch)
        batch = ''
      }
    }
    bytes += writeSync(fd, batch)
    closeSync(fd)
  }
  return bytes
}
