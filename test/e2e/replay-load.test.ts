import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { setTimeout } from 'node:timers/promises'
import t from 'tap'
import { startAgent } from '../helpers/agent.js'
import { fillJournal } from '../helpers/journal-fill.js'

/**
 * The synthetic journal: 170k events, ~60 MiB (within the 64 Mi default), in 3 segments, so
 * that the agent's own first segment rotates nothing away.
 */
const EVENTS = 170_000
const CLIENTS = 4
/** Live events emitted once every client is on its last page: each gets them after its replay. */
const LIVE = 3
const MiB = 1 << 20
const CLIENT_SCRIPT = fileURLToPath(new URL('../helpers/replay-clients.mjs', import.meta.url))

/** What one client saw over all its connections (see test/helpers/replay-clients.mjs). */
interface Run {
  connections: number
  received: number
  gaps: string[]
  live: number[]
}

t.test('four ?since=0 replays of a 60 MiB journal: the loop is not held, memory stays bounded, no gap', async t => {
  const dir = t.testdir()
  const bytes = fillJournal(dir, EVENTS, 3)
  t.ok(bytes > 55 * MiB && bytes < 64 * MiB, `the journal holds ${Math.round(bytes / MiB)} MiB`)
  // Watching no process: on a shared machine the host's other Python processes would be watched
  // (and dumped) too, and that work, not the replay's, would be measured.
  const agent = await startAgent({ OOMWATCH_JOURNAL_DIR: dir, OOMWATCH_MATCH: '^no-such-process-replay-load$' })
  t.teardown(() => agent.stop())
  const until = agent.agent.hub.lastSeq
  t.ok(until >= EVENTS, 'the agent goes on from the journal')

  // The machine's own noise first: this process, the agent idle, for 2 s. On a shared machine
  // under load, a process that does nothing sees delays of tens of ms.
  const idle = monitorEventLoopDelay({ resolution: 10 })
  idle.enable()
  await setTimeout(2000)
  idle.disable()
  const noiseMs = idle.max / 1e6

  // The clients run in a process of their own: only the agent's work is in this event loop.
  const delay = monitorEventLoopDelay({ resolution: 10 })
  const rssBefore = process.memoryUsage.rss()
  let rssPeak = rssBefore
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage.rss())), 50)
  t.teardown(() => clearInterval(sampler))
  delay.enable()
  const clients = spawn(process.execPath, [CLIENT_SCRIPT, String(agent.port), String(until), String(LIVE), String(CLIENTS)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.teardown(() => clients.kill())
  const runs: Run[] = []
  let onLastPage = 0
  for await (const line of createInterface({ input: clients.stdout })) {
    if (line !== 'last-page') runs.push(JSON.parse(line) as Run)
    else if (++onLastPage === CLIENTS) {
      for (let n = 0; n < LIVE; n++) {
        agent.agent.hub.emit({
          type: 'risk',
          pid: 1,
          cmdline: ['python3'],
          rule: 'test',
          rlimit: 'NOFILE',
          value: 1,
          threshold: 1,
          message: `live ${n}`,
        })
      }
    }
  }
  delay.disable()
  clearInterval(sampler)

  t.equal(runs.length, CLIENTS, 'every client got to the end')
  for (const [at, run] of runs.entries()) {
    t.strictSame(run.gaps, [], `client ${at}: every seq once, in order, across ${run.connections} connections`)
    t.ok(run.connections > 1, `client ${at}: the replay came in pages`)
    t.ok(run.live.length >= LIVE, `client ${at}: the live events after the replay`)
  }
  // Not a benchmark: bounds far above what a streamed replay costs, far below a synchronous
  // read of 60 MiB (main: 525 ms for one client, 1.6 s for four; RSS +220 MB, +330 MB).
  const maxDelayMs = delay.max / 1e6
  t.ok(
    maxDelayMs < 200 + noiseMs,
    `the event loop was never held long: max delay ${Math.round(maxDelayMs)} ms (idle, ${Math.round(noiseMs)} ms; bound 200 ms above that)`,
  )
  const growth = (rssPeak - rssBefore) / MiB
  t.ok(
    growth < 160,
    `RSS grew ${Math.round(growth)} MiB (heap garbage included: this process runs without the shipped --optimize-for-size)`,
  )
})
