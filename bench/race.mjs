// The race against the OOM killer, oomwatch side by side with the by-hand alternative.
// Usage: npm run bench:race -- [runs=5] [--cells default|paced|first-instant|RATE:MODE:DELAY:LIMIT,...]
//        [--rates 40M,200M,0] [--modes plain,daemon] [--delays 1] [--limits 256Mi]
//        [--agent-node-args '--max-semi-space-size=2'] [--agent-cli /path/to/other/dist/cli.js]
//
// A seed-shaped daemon leaks into a fresh memory cgroup, once per cell and run: each cell
// is a rate (bytes/s; 0 = as fast as CPython goes), run directly or double-forked, after
// a delay of normal life (0: from its first instant), at a limit (lib/cells.mjs). By
// default the six paced cells (40M, 200M, unthrottled; direct, daemonized; delay 1 s;
// 256 MiB) and the four first-instant ones (unthrottled, delay 0; direct, daemonized;
// 256 MiB and 1 GiB). `runs` times per cell, cells interleaved so that the machine's noise
// spreads over all of them. Watching it at the same time, each with its own output:
// - oomwatch: `node <shebang flags> dist/cli.js --port 0`, defaults otherwise, one process for the whole
//   benchmark, as a sidecar runs; a WebSocket client in this process. It wins a run when
//   the incident for the pid, naming fd_table_from_limit and carrying rlimits.NOFILE,
//   arrives while the process is alive (/proc/<pid>/stat checked at receipt).
// - by hand: bench/by-hand-watch.sh (a bash loop: every second, each Python process's
//   VmRSS against 80% of the limit, then `py-spy dump`), one loop per limit, each
//   watching the cgroups of its limit only (as the loop in a container watches its own).
//   It wins when a dump naming fd_table_from_limit is written before the kill.
// Margin = time of death (/proc/<pid> polled every 2 ms) minus arrival, on this process's
// monotonic clock. Runs in its own PID namespace unless --no-isolate (see lib/common.mjs).
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { WebSocket } from 'ws'
import { cellId, cellLabel, cellsFrom, entriesFor, formatLimit, leakLabel, sameCell, target, verdict } from './lib/cells.mjs'
import {
  DAEMON,
  PYSPY,
  PYTHON,
  ROOT,
  deathAndStatus,
  describeResult,
  fmt,
  judgeIncident,
  isolate,
  isAlive,
  machine,
  makeCgroup,
  median,
  option,
  positional,
  procState,
  readPidfile,
  startAgentProcess,
} from './lib/common.mjs'

const { isolated, args } = isolate()
const runs = Number(positional(args, 5))
const cells = cellsFrom(args)
// For re-measuring a candidate fix: node flags for the agent, or another build's cli.js.
const agentNodeArgs = option(args, 'agent-node-args', '').split(' ').filter(Boolean)
const agentCli = option(args, 'agent-cli', undefined)
const GRACE_MS = 2000 // after the death, for an event or a dump still on its way

const work = mkdtempSync(join(tmpdir(), 'oomwatch-race-'))
console.error(`machine: ${machine()}${isolated ? '; in its own PID namespace' : ''}`)

// oomwatch, and its client.
const agent = await startAgentProcess({ nodeArgs: agentNodeArgs, ...(agentCli && { cli: agentCli }) })
const incidents = []
const ws = new WebSocket(`ws://127.0.0.1:${agent.port}/`)
ws.on('message', data => {
  const receivedAt = performance.now()
  const event = JSON.parse(String(data))
  if (event.type !== 'incident') return
  // Checked the moment the stack arrives: proof that it came before the kill.
  const state = procState(event.pid)
  incidents.push({ event, receivedAt, alive: isAlive(event.pid), state })
})
await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))

// The by-hand loop: one per limit, each judging against its own limit and watching only the
// cgroups of its limit (their names carry it), as a loop in the app's container would. A
// process under a larger limit passes 80% of a smaller one long before its kill: a loop
// of the smaller limit would dump it early, which no loop in a real container does.
const dumps = []
const loops = [...new Set(cells.map(cell => cell.limit))].map(limit => {
  const loop = spawn('bash', [join(ROOT, 'bench/by-hand-watch.sh'), String(limit)], {
    env: { ...process.env, PYSPY, OUT: join(work, `dumps-${limit}`), CGROUP: `-L${limit}-` },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  createInterface({ input: loop.stdout }).on('line', onDump)
  return loop
})
function onDump(line) {
  const at = performance.now()
  const [outcome, pid, file] = line.split(' ')
  let text = ''
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    // unreadable: counts as a failed dump
  }
  dumps.push({
    at,
    ok: outcome === 'dumped',
    pid: Number(pid),
    named: outcome === 'dumped' && text.includes('fd_table_from_limit'),
    error: outcome === 'dumped' ? undefined : text.trim().split('\n').pop(),
  })
}

console.error(`cells: ${cells.map(cellLabel).join('; ')}; ${runs} run(s) each`)
const rows = []
// A run the OOM killer did not end is no race (on a shared machine something else may
// signal the process): it is listed as void and run again, up to MAX_TRIES times.
const MAX_TRIES = 3
const voided = []
for (let run = 1; run <= runs; run++) {
  for (const cell of cells) {
    for (let attempt = 1; attempt <= MAX_TRIES; attempt++) {
      const row = { ...cell, run, ...(await race(cell, `${run}-${attempt}`)) }
      console.error(
        `${cellLabel(cell)} run ${run}${attempt > 1 ? ` (try ${attempt})` : ''}: ${row.oomKilled ? 'OOM-killed' : `NOT OOM-killed (${row.death})`} ${fmt(row.livedMs, 0)} ms after spawn, oomwatch ${describeResult(row.agent)}, by hand ${describeResult(row.byHand)}`,
      )
      if (row.oomKilled || attempt === MAX_TRIES) {
        rows.push(row)
        break
      }
      voided.push(row)
    }
  }
}

ws.close()
for (const loop of loops) loop.kill('SIGTERM')
await agent.stop()
rmSync(work, { recursive: true, force: true })

/** One run: the daemon leaks until the kernel kills it; who reported it first, and by how much. */
async function race(cell, run) {
  const { rate, mode, delay, limit } = cell
  // `-L<limit>-` in the name: the by-hand loop of that limit watches it (CGROUP above).
  const cgroup = makeCgroup(`oomwatch-race-${process.pid}-${run}-${cellId(cell)}-`, limit)
  const pidfile = join(work, `daemon-${run}-${cellId(cell)}.pid`)
  const command = [
    PYTHON,
    DAEMON,
    '--entries',
    entriesFor(limit),
    '--rate',
    String(rate),
    '--delay',
    String(delay),
    ...(mode === 'daemon' ? ['--daemonize', '--pidfile', pidfile] : []),
  ]
  const [bin, ...argv] = cgroup.wrap(command)
  const killsBefore = cgroup.oomKills()
  const spawnedAt = performance.now()
  const child = spawn(bin, argv, { stdio: 'ignore' })
  const exit = new Promise(resolve => child.once('exit', (code, signal) => resolve(signal ?? `exit ${code}`)))
  const pid = mode === 'daemon' ? await readPidfile(pidfile) : child.pid
  const { diedAt, status } = await deathAndStatus(pid)
  const death = mode === 'daemon' ? status : await exit
  await sleep(GRACE_MS)
  const oomKilled = cgroup.oomKills() > killsBefore
  await cgroup.remove()

  const received = incidents.find(({ event }) => event.pid === pid)
  let agentResult = { arrived: false }
  if (received) agentResult = judgeIncident(received, diedAt)

  const mine = dumps.filter(dump => dump.pid === pid)
  const good = mine.find(dump => dump.named)
  const failures = mine.filter(dump => !dump.ok)
  const byHand = good
    ? {
        arrived: true,
        won: good.at < diedAt,
        margin: diedAt - good.at,
        detail: `${mine.length} dump(s)${failures.length ? `, ${failures.length} failed` : ''}`,
      }
    : { arrived: false, detail: mine.length ? `${failures.length} failed: ${failures[0]?.error ?? ''}` : 'never over 80% at a check' }
  return { pid, oomKilled, death, livedMs: diedAt - spawnedAt, agent: agentResult, byHand }
}

const margin = result => (result.arrived ? `${fmt(result.margin, 0)}` : '—')
const won = result => result.arrived && result.won
const yes = result => (won(result) ? 'yes' : 'no')

console.log(`### Per run\n`)
console.log(
  `| leak | delay (s) | limit | run | OOM-killed | lived (ms) | oomwatch first | oomwatch margin (ms) | by hand first | by-hand margin (ms) | oomwatch ahead of by hand (ms) | notes |`,
)
console.log(`|---|---|---|---|---|---|---|---|---|---|---|---|`)
for (const row of rows) {
  const ahead = row.agent.arrived && row.byHand.arrived ? fmt(row.agent.margin - row.byHand.margin, 0) : '—'
  console.log(
    `| ${leakLabel(row)} | ${row.delay} | ${formatLimit(row.limit)} | ${row.run} | ${row.oomKilled ? 'yes' : `no (${row.death})`} | ${fmt(row.livedMs, 0)} | ${yes(row.agent)} | ${margin(row.agent)} | ${yes(row.byHand)} | ${margin(row.byHand)} | ${ahead} | oomwatch: ${row.agent.detail ?? 'no incident'}; by hand: ${row.byHand.detail} |`,
  )
}
console.log(`\n### Per cell (${runs} run${runs === 1 ? '' : 's'} each)\n`)
console.log(`Margins over the runs won: median (min–max), ms.\n`)
console.log(
  `| leak | delay (s) | limit | OOM-killed | oomwatch wins | oomwatch margin median (min–max) ms | by-hand wins | by-hand margin median (min–max) ms | oomwatch target |`,
)
console.log(`|---|---|---|---|---|---|---|---|---|`)
const verdicts = []
for (const cell of cells) {
  const mine = rows.filter(row => sameCell(row, cell))
  const stats = pick => {
    const margins = mine.filter(row => won(row[pick])).map(row => row[pick].margin)
    return margins.length ? `${fmt(median(margins), 0)} (${fmt(Math.min(...margins), 0)}–${fmt(Math.max(...margins), 0)})` : '—'
  }
  const wins = pick => mine.filter(row => won(row[pick])).length
  const check = verdict(cell, wins('agent'), mine.length)
  verdicts.push(check)
  console.log(
    `| ${leakLabel(cell)} | ${cell.delay} | ${formatLimit(cell.limit)} | ${mine.filter(row => row.oomKilled).length}/${mine.length} | ${wins('agent')}/${mine.length} | ${stats('agent')} | ${wins('byHand')}/${mine.length} | ${stats('byHand')} | ${target(cell).text}: ${check.met ? 'met' : 'MISSED'} |`,
  )
}
if (voided.length) {
  console.log(
    `\nVoid runs (not OOM-killed, run again): ${voided.map(row => `${cellLabel(row)} run ${row.run}: ${row.death}, pid ${row.pid}`).join('; ')}.`,
  )
}
const total = rows.filter(row => won(row.agent)).length
console.log(`\noomwatch won ${total} of ${rows.length} runs; by hand ${rows.filter(row => won(row.byHand)).length} of ${rows.length}.`)
console.log(`\nTargets (oomwatch wins per cell):\n`)
for (const { line } of verdicts) console.log(`- ${line}`)
const missed = verdicts.filter(({ met }) => !met).length
console.log(
  `\n${missed ? `${missed} of ${verdicts.length} cells MISSED their target.` : `Every cell met its target (${verdicts.length} cells).`}`,
)
