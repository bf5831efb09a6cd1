import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import pino from 'pino'
import t from 'tap'
import { DEFAULTS, type Config } from '../../src/config.js'
import { ProcReader } from '../../src/proc/reader.js'
import { Watcher, type ActionHooks, type IncidentContext } from '../../src/watch/watcher.js'
import type { EventPayload, IncidentPayload, ProcessInfo } from '../../src/protocol/events.js'
import { makeFakeProc } from '../helpers/fake-proc.js'

const MiB = 1 << 20

// The shell carries the step's decisions out: events in order, the capture, then the
// after-incident hook and the actor's hooks; the actor is not its to stop.
t.test('the watcher emits, captures, and calls the after-incident hook and the actions it is given', async t => {
  const proc = makeFakeProc(t.testdir())
  writeFileSync(join(proc.dir, 'uptime'), '1000.00 500.00\n') // both fixtures started 10 min ago: past their start-up
  const statPath = join(proc.dir, '4242', 'stat')
  const stat = readFileSync(statPath, 'utf8')
  const setRss = (bytes: number) => writeFileSync(statPath, stat.replace(' 16961536 3352 ', ` 16961536 ${bytes / 4096} `))
  const usagePath = join(proc.cgroupDir(4242), 'memory.current')
  let rss = 20 * MiB
  let usage = 10 * MiB
  const events: EventPayload[] = []
  const calls: string[] = []
  const discovered: number[] = []
  let hooked: { incident: IncidentPayload; context: IncidentContext } | undefined
  let acted: { info: ProcessInfo; incidentId: string; stillRunaway: boolean } | undefined
  const actor: ActionHooks = {
    wantsFastScan: false,
    onDiscovered: async info => void discovered.push(info.pid),
    afterIncident: async (info, incidentId, stillRunaway) => {
      calls.push('actor')
      acted = { info, incidentId, stillRunaway }
    },
  }
  let first = true
  const watcher = new Watcher({
    config: { ...(DEFAULTS as Config), procRoot: proc.dir },
    proc: new ProcReader(proc.dir),
    hostMemoryBytes: 1 << 30,
    pageSize: 4096,
    ownPids: new Set(),
    emit: payload => events.push(payload),
    capture: async () => ({ threads: [], pyspyMs: 1 }),
    logger: pino({ level: 'silent' }),
    actor,
    afterIncident: async (incident, context) => {
      calls.push('hook')
      hooked = { incident, context }
    },
    births: {
      moved: () => {
        const moved = first
        first = false
        return moved
      },
      close: () => {},
    },
  })
  watcher.start()
  t.same(
    events.map(e => e.type),
    ['process', 'risk', 'process'],
    'each process announced at the first tick, with its risk (4242: NOFILE hard 1073741816)',
  )
  t.same(discovered.sort(), [4242, 4343], 'and shown to the actor')
  // 4242 leaks: its RSS and its container's usage rise 4 MiB every 10 ms.
  const leak = setInterval(() => {
    rss += 4 * MiB
    usage += 4 * MiB
    setRss(rss)
    writeFileSync(usagePath, `${usage}\n`)
  }, 10)
  t.teardown(() => clearInterval(leak))
  for (let i = 0; i < 300 && !acted; i++) await sleep(10)
  clearInterval(leak)
  const incident = events.find((e): e is IncidentPayload => e.type === 'incident')
  t.equal(incident?.pid, 4242, 'the leak is captured')
  t.equal(hooked?.incident, incident, 'the hook gets the incident emitted')
  t.equal(hooked?.context.info.pid, 4242)
  t.equal(hooked?.context.stillRunaway, true, 'still heading for the limit')
  t.equal(hooked?.context.signal.aborted, false)
  t.same(calls, ['hook', 'actor'], 'the hook is started first, as a flame graph subscriber was')
  t.equal(acted?.incidentId, incident?.id, "the actor's hook gets the incident's id")
  await watcher.stop()
  t.equal(hooked?.context.signal.aborted, true, 'stop() aborts the hook')
})

t.test("memory samples ride on the watch's own ticks: one at the first, then one per everyMs", async t => {
  const proc = makeFakeProc(t.testdir())
  let clock = 0
  const samples: { at: number; pids: number[] }[] = []
  const watcher = new Watcher({
    config: { ...(DEFAULTS as Config), procRoot: proc.dir, intervalMs: 10, fastIntervalMs: 10 },
    proc: new ProcReader(proc.dir),
    hostMemoryBytes: 1 << 30,
    pageSize: 4096,
    ownPids: new Set(),
    emit: () => {},
    capture: async () => ({ threads: [], pyspyMs: 1 }),
    logger: pino({ level: 'silent' }),
    memorySamples: { everyMs: 1000, take: readings => void samples.push({ at: clock, pids: readings.map(r => r.pid).sort() }) },
    births: { moved: () => clock === 0, close: () => {} }, // the first tick lists /proc
    now: () => clock,
  })
  watcher.start()
  t.teardown(() => watcher.stop())
  await sleep(100) // several ticks, the clock standing still
  t.same(samples, [{ at: 0, pids: [4242, 4343] }], 'one sample, at the first tick, of every watched process')
  clock = 999
  await sleep(50)
  t.equal(samples.length, 1, 'none before everyMs')
  clock = 1000
  await sleep(50)
  t.same(samples[1], { at: 1000, pids: [4242, 4343] }, 'the next at the first tick everyMs later')
  t.equal(samples.length, 2)
})
