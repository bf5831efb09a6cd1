import { appendFileSync, chmodSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { Journal } from '../../src/journal/journal.js'
import { MAX_REPLAY, planReplay, type JournalReplay } from '../../src/journal/replay.js'
import { MAX_LINE_BYTES, SegmentCursor } from '../../src/journal/segment-cursor.js'
import type { OomwatchEvent } from '../../src/protocol/events.js'
import { fillJournal, segmentName, syntheticProcess } from '../helpers/journal-fill.js'

const MiB = 1 << 20

/** Every event a replay sends, batch after batch. */
async function drain(replay: JournalReplay): Promise<OomwatchEvent[]> {
  const events: OomwatchEvent[] = []
  for (let batch = await replay.read(); batch.length > 0; batch = await replay.read()) events.push(...batch)
  await replay.close()
  return events
}

const seqs = (events: OomwatchEvent[]) => events.map(event => event.seq)
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, at) => from + at)

/** Runs `fn` with the process umask at 0, so only the modes the journal sets itself count. */
function withoutUmask<T>(fn: () => T): T {
  const old = process.umask(0)
  try {
    return fn()
  } finally {
    process.umask(old)
  }
}

t.test('planReplay: what follows since, the missed, a page at most', async t => {
  t.same(planReplay(5, 5, 1), { since: 5, count: 0, missed: 0 }, 'nothing new')
  t.same(planReplay(9, 5, 1), { since: 9, count: 0, missed: 0 }, 'a since from the future (a restart without journal)')
  t.same(planReplay(0, 5, undefined), { since: 0, count: 0, missed: 5 }, 'nothing kept')
  t.same(planReplay(2, 10, 1), { since: 2, count: 8, missed: 0 })
  t.same(planReplay(2, 10, 6), { since: 2, count: 5, missed: 3 }, 'seq 3 to 5 rotated away')
  t.same(
    planReplay(0, MAX_REPLAY * 3, 1),
    { since: 0, count: MAX_REPLAY, missed: 0, truncated: true, next: MAX_REPLAY },
    'a page, and where to go on',
  )
  t.same(planReplay(MAX_REPLAY, MAX_REPLAY * 2, 1), { since: MAX_REPLAY, count: MAX_REPLAY, missed: 0 }, 'the last page is not truncated')
})

t.test('modes: the directory 0700 (an existing one too), segments 0600, whatever the umask', async t => {
  const root = t.testdir()
  const fresh = join(root, 'fresh', 'journal')
  const journal = withoutUmask(() => new Journal({ dir: fresh, maxBytes: MiB, memoryBytes: MiB }))
  withoutUmask(() => journal.append(syntheticProcess(1)))
  journal.close()
  t.equal(statSync(fresh).mode & 0o777, 0o700, 'a new directory')
  const [segment] = readdirSync(fresh)
  t.equal(statSync(join(fresh, segment!)).mode & 0o777, 0o600, 'a segment')
  t.equal(journal.dirModeError, undefined)

  const shared = join(root, 'emptydir')
  mkdirSync(shared)
  chmodSync(shared, 0o777)
  new Journal({ dir: shared, maxBytes: MiB, memoryBytes: MiB }).close()
  t.equal(statSync(shared).mode & 0o777, 0o700, 'an existing directory (an emptyDir is 0777)')
})

t.test('a short write is reported, and the journal goes on at the next line', async t => {
  const dir = t.testdir()
  let cut = true
  const journal = new Journal({
    dir,
    maxBytes: MiB,
    memoryBytes: MiB,
    // The volume is full for one write: 10 bytes of the line reach it.
    write: (fd, data) => (cut ? ((cut = false), writeSyncPart(fd, data, 10)) : writeSyncPart(fd, data, data.length)),
  })
  cut = false
  journal.append(syntheticProcess(1))
  cut = true
  t.throws(() => journal.append(syntheticProcess(2)), { code: 'JOURNAL_SHORT_WRITE', message: /10 of \d+ bytes of seq 2/ })
  journal.append(syntheticProcess(3))
  journal.append(syntheticProcess(4))
  journal.close()
  const lines = readFileSync(join(dir, readdirSync(dir)[0]!), 'utf8').split('\n')
  t.equal(lines[1]!.length, 10, 'the torn line ends where the write was cut')
  t.match(lines[2], /"seq":3,/, 'and the next line starts on a line of its own')

  const reopened = new Journal({ dir, maxBytes: MiB, memoryBytes: MiB })
  t.equal(reopened.skippedLines, 1, 'the torn line is skipped, with a count')
  t.equal(reopened.lastSeq, 4)
  t.same(seqs(await drain(reopened.replay(0))), [1, 3, 4], 'the others are replayed')
  reopened.close()
})

/** Writes the first `bytes` bytes of `data`, as a short write would. */
function writeSyncPart(fd: number, data: Buffer, bytes: number): number {
  appendFileSync(fd, data.subarray(0, bytes))
  return bytes
}

t.test('a journal line that is valid JSON but no event is skipped with a count, at start and in a replay', async t => {
  const dir = t.testdir()
  fillJournal(dir, 6, 2) // seq 1-3 and 4-6
  for (const first of [1, 4]) appendFileSync(join(dir, segmentName(first)), '{"seq":99,"type":"process","pid":1}\nnot json\n')
  const journal = new Journal({ dir, maxBytes: MiB, memoryBytes: 0 })
  t.equal(journal.skippedLines, 2, 'in the newest segment, read at start')
  t.equal(journal.lastSeq, 6, 'the seq of the last valid event')
  const replay = journal.replay(0)
  t.same(seqs(await drain(replay)), range(1, 6), 'the replay skips them')
  t.equal(replay.skippedLines, 4, 'and counts them')
  journal.close()
})

t.test('a replay reads memory while it has the events, else the disk, a batch at a time, in pages', async t => {
  const dir = t.testdir()
  const count = MAX_REPLAY + 500
  fillJournal(dir, count, 3)
  const journal = new Journal({ dir, maxBytes: 64 * MiB, memoryBytes: 64 * 1024 })
  t.equal(journal.lastSeq, count)
  const first = journal.replay(0)
  t.same(first.plan, { since: 0, count: MAX_REPLAY, missed: 0, truncated: true, next: MAX_REPLAY })
  const batch = await first.read()
  t.ok(batch.length > 0 && batch.length < 200, `a batch is a chunk's worth (${batch.length} events), not the page`)
  const rest = await drain(first)
  t.same(seqs([...batch, ...rest]), range(1, MAX_REPLAY), 'the first page from disk, across segments')
  const second = journal.replay(MAX_REPLAY)
  t.same(second.plan, { since: MAX_REPLAY, count: 500, missed: 0 })
  t.same(seqs(await drain(second)), range(MAX_REPLAY + 1, count), 'the last page, from memory then disk')
  journal.append(syntheticProcess(count + 1))
  const live = journal.replay(count)
  t.same(seqs(await drain(live)), [count + 1], 'a new event, from memory')
  journal.close()
})

t.test('memory only: a replay from the window; what left it is missed', async t => {
  const journal = new Journal({ maxBytes: MiB, memoryBytes: 3 * 400 })
  for (let seq = 1; seq <= 10; seq++) journal.append(syntheticProcess(seq))
  const replay = journal.replay(0)
  t.match(replay.plan, { since: 0, missed: 7, count: 3 })
  t.same(seqs(await drain(replay)), [8, 9, 10])
})

t.test('a segment rotated away under a slow replay ends it with REPLAY_BEHIND', async t => {
  const dir = t.testdir()
  fillJournal(dir, 3000, 3)
  const journal = new Journal({ dir, maxBytes: 64 * MiB, memoryBytes: 0 })
  const replay = journal.replay(0)
  await replay.read()
  for (const name of readdirSync(dir).slice(1)) rmSync(join(dir, name))
  await t.rejects(drain(replay), { code: 'REPLAY_BEHIND' })
  await replay.close()
  journal.close()
})

t.test('a line longer than any event is skipped, and the reading goes on after it', async t => {
  const dir = t.testdir()
  fillJournal(dir, 3, 1)
  const path = join(dir, segmentName(1))
  const events = readFileSync(path, 'utf8')
  writeFileSync(path, `${events}{"x":"${'y'.repeat(MAX_LINE_BYTES + 10)}"}\n${JSON.stringify(syntheticProcess(4))}\n{"torn`)
  const cursor = new SegmentCursor(dir, [{ name: segmentName(1), firstSeq: 1 }])
  const read: OomwatchEvent[] = []
  for (let batch = await cursor.read(1, 10); batch.length > 0; batch = await cursor.read(1, 10)) read.push(...batch)
  await cursor.close()
  t.same(seqs(read), [1, 2, 3, 4])
  t.equal(cursor.skippedLines, 2, 'the long line, and the torn last one')
})
