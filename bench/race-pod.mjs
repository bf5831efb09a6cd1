// The race against the OOM killer in a simulated pod: the project's test pod
// (test/helpers/pod.ts) instead of race.mjs's one PID namespace. The app and the agent
// are separate containers (their own mount and cgroup namespaces, sibling cgroups, the
// app's limit on its own cgroup, the agent with sidecar.yaml's securityContext: read-only
// root, only CAP_SYS_PTRACE, no_new_privs) in one PID namespace, so the agent reaches the
// app's cgroup files through /proc/<pid>/root, as a real sidecar must.
// Usage: npm run build && node bench/race-pod.mjs [runs=5] [--cells first-instant|RATE:MODE:DELAY:LIMIT,...]
//        [--agent-caps sys_ptrace] [--agent-cli /path/to/other/dist/cli.js] [--agent-node-args '...']
//
// One pod per run (the helper starts the app once): the agent starts, the app container
// runs the seed-shaped daemon (leaky_daemon.py, --pidfile; --daemonize in the daemon
// cells) into its limit, the kernel OOM-kills it, the pod is torn down. The cells are
// race.mjs's (lib/cells.mjs), by default the four first-instant ones, interleaved.
// oomwatch wins a run when the incident for the leaking pid (the pod's pid, from the
// pidfile) names fd_table_from_limit, carries rlimits.NOFILE and arrives while the
// process is alive: its host pid (the pod's hostPidOfApp) not gone, not a zombie, read at
// receipt. Margin = death (the host pid polled every 2 ms) minus arrival. The agent is
// given the app's limit as sidecar.yaml gives it (OOMWATCH_MEMORY_LIMIT from the Downward
// API), OOMWATCH_PORT=0, OOMWATCH_HOST=127.0.0.1, no token. No by-hand loop here.
//
// The helper is TypeScript: this script registers the TypeScript loader that tap uses
// (@tapjs/typescript/import: ts-node, transpile only) and imports it. The agent runs as
// the image runs it, `node <shebang flags> dist/cli.js`, when the helper takes
// `agentCommand`; a helper without it runs `node <this process's execArgv> src/cli.ts`,
// so the execArgv is set to the shebang's flags and the loader: the same code from src/,
// under the loader. The first lines of the output say which.
import { readFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { WebSocket } from 'ws'
import { cellId, cellLabel, cellsFrom, entriesFor, formatLimit, leakLabel, sameCell, target, verdict } from './lib/cells.mjs'
import {
  DAEMON,
  PYTHON,
  ROOT,
  deathAndStatus,
  describeResult,
  fmt,
  judgeIncident,
  isAlive,
  machine,
  median,
  option,
  positional,
  procState,
  readPidfile,
  shippedNodeFlags,
} from './lib/common.mjs'

const args = process.argv.slice(2)
const runs = Number(positional(args, 5))
const cells = cellsFrom(args, 'first-instant')
const agentCaps = option(args, 'agent-caps', 'sys_ptrace').split(',').filter(Boolean)
const agentCli = option(args, 'agent-cli', join(ROOT, 'dist/cli.js'))
const agentNodeArgs = option(args, 'agent-node-args', '').split(' ').filter(Boolean)
const GRACE_MS = 2000 // after the death, for an event still on its way
const MAX_TRIES = 3

if (process.getuid() !== 0) throw new Error('race-pod.mjs needs root (the pod makes namespaces, mounts and cgroups)')
// The agent's environment is the pod spec's, not ours.
for (const key of Object.keys(process.env)) if (key.startsWith('OOMWATCH_')) delete process.env[key]
process.env.TS_NODE_TRANSPILE_ONLY = '1'
await import('@tapjs/typescript/import')
const { startPod } = await import('../test/helpers/pod.ts')

const flags = [...shippedNodeFlags(agentCli), ...agentNodeArgs]
const agentCommand = [process.execPath, ...flags, agentCli]
// For a helper that runs `process.execPath, ...process.execArgv, src/cli.ts` (and ignores agentCommand).
process.execArgv.splice(0, process.execArgv.length, ...flags, '--import', '@tapjs/typescript/import')

console.error(`machine: ${machine()}`)
console.error(`cells: ${cells.map(cellLabel).join('; ')}; ${runs} run(s) each, one pod per run`)

const rows = []
const voided = []
let agentRan
for (let run = 1; run <= runs; run++) {
  for (const cell of cells) {
    for (let attempt = 1; attempt <= MAX_TRIES; attempt++) {
      const row = { ...cell, run, ...(await race(cell, `${run}-${attempt}`)) }
      console.error(
        `${cellLabel(cell)} run ${run}${attempt > 1 ? ` (try ${attempt})` : ''}: ${row.oomKilled ? 'OOM-killed' : `NOT OOM-killed (${row.death})`} ${fmt(row.livedMs, 0)} ms after start, oomwatch ${describeResult(row.agent)}; pod up in ${fmt(row.setupMs, 0)} ms, run ${fmt(row.totalMs / 1000, 1)} s`,
      )
      if (row.oomKilled || attempt === MAX_TRIES) {
        rows.push(row)
        break
      }
      voided.push(row)
    }
  }
}

/** One run in a fresh pod: the app leaks until the kernel kills it; did the incident come first, by how much. */
async function race(cell, run) {
  const started = performance.now()
  const { rate, mode, delay, limit } = cell
  const work = mkdtempSync(join(tmpdir(), `oomwatch-race-pod-${run}-${cellId(cell)}-`))
  const pidfile = join(work, 'app.pid')
  const app = [
    PYTHON,
    DAEMON,
    '--entries',
    entriesFor(limit),
    '--rate',
    String(rate),
    '--delay',
    String(delay),
    '--pidfile',
    pidfile,
    ...(mode === 'daemon' ? ['--daemonize'] : []),
  ]
  const pod = await startPod(
    {
      appLimitBytes: limit,
      app,
      agentCaps,
      agentEnv: { OOMWATCH_MEMORY_LIMIT: String(limit), OOMWATCH_PORT: '0', OOMWATCH_HOST: '127.0.0.1' },
      agentCommand, // see the top of this file
    },
    work,
  )
  const setupMs = performance.now() - started
  agentRan ??= agentCmdline(pod)
  const incidents = []
  const ws = new WebSocket(`ws://127.0.0.1:${pod.port}/`)
  ws.on('message', data => {
    const receivedAt = performance.now()
    const event = JSON.parse(String(data))
    if (event.type !== 'incident') return
    // Checked the moment the stack arrives: proof that it came before the kill.
    const hostPid = pod.hostPidOfApp(event.pid)
    incidents.push({
      event,
      receivedAt,
      hostPid,
      alive: hostPid !== undefined && isAlive(hostPid),
      state: hostPid === undefined ? undefined : procState(hostPid),
    })
  })
  try {
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
    const killsBefore = pod.appOomKills()
    const spawnedAt = performance.now()
    await pod.startApp()
    const podPid = await readPidfile(pidfile)
    let hostPid
    for (let i = 0; i < 500 && hostPid === undefined; i++) {
      hostPid = pod.hostPidOfApp(podPid)
      if (hostPid === undefined) await sleep(2)
    }
    if (hostPid === undefined) throw new Error(`pod pid ${podPid} not found in the app's cgroup: ${pod.stderr()}`)
    const { diedAt, status } = await deathAndStatus(hostPid)
    await sleep(GRACE_MS)
    const oomKilled = pod.appOomKills() > killsBefore

    const received = incidents.find(({ event }) => event.pid === podPid)
    let agent = {
      arrived: false,
      detail: incidents.length ? `incidents for other pids: ${incidents.map(({ event }) => event.pid).join(', ')}` : 'no incident',
    }
    if (received) agent = judgeIncident(received, diedAt, { limitNote: true })

    return { podPid, hostPid, oomKilled, death: status, livedMs: diedAt - spawnedAt, agent, setupMs, totalMs: performance.now() - started }
  } finally {
    ws.close()
    await pod.stop()
    rmSync(work, { recursive: true, force: true })
  }
}

/** The agent container's node process's command line, from the agent's cgroup (the app's sibling). */
function agentCmdline(pod) {
  try {
    for (const pid of readFileSync(join(dirname(pod.appCgroup), 'agent', 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter(Boolean)) {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean)
      if (argv[0] === process.execPath) return argv.map(arg => arg.replace(ROOT, '')).join(' ')
    }
  } catch {
    // gone already
  }
  return 'unknown'
}

const won = result => result.arrived && result.won
const fromSrc = / src\/cli\.ts$/.test(agentRan)
console.log(
  `Simulated pod (test/helpers/pod.ts), one pod per run; agent caps: ${agentCaps.join(',') || 'none'}; agent: \`${agentRan}\`${fromSrc ? ' (the helper has no agentCommand: src/ under the TypeScript loader, with the shebang flags)' : ''}.\n`,
)
console.log(`### Per run\n`)
console.log(`| leak | delay (s) | limit | run | OOM-killed | lived (ms) | oomwatch first | oomwatch margin (ms) | pod up (ms) | notes |`)
console.log(`|---|---|---|---|---|---|---|---|---|---|`)
for (const row of rows) {
  console.log(
    `| ${leakLabel(row)} | ${row.delay} | ${formatLimit(row.limit)} | ${row.run} | ${row.oomKilled ? 'yes' : `no (${row.death})`} | ${fmt(row.livedMs, 0)} | ${won(row.agent) ? 'yes' : 'no'} | ${row.agent.arrived ? fmt(row.agent.margin, 0) : '—'} | ${fmt(row.setupMs, 0)} | ${row.agent.detail} |`,
  )
}
console.log(`\n### Per cell (${runs} run${runs === 1 ? '' : 's'} each)\n`)
console.log(`Margins over the runs won: median (min–max), ms.\n`)
console.log(`| leak | delay (s) | limit | OOM-killed | oomwatch wins | oomwatch margin median (min–max) ms | oomwatch target |`)
console.log(`|---|---|---|---|---|---|---|`)
const verdicts = []
for (const cell of cells) {
  const mine = rows.filter(row => sameCell(row, cell))
  const margins = mine.filter(row => won(row.agent)).map(row => row.agent.margin)
  const wins = margins.length
  const check = verdict(cell, wins, mine.length)
  verdicts.push(check)
  console.log(
    `| ${leakLabel(cell)} | ${cell.delay} | ${formatLimit(cell.limit)} | ${mine.filter(row => row.oomKilled).length}/${mine.length} | ${wins}/${mine.length} | ${wins ? `${fmt(median(margins), 0)} (${fmt(Math.min(...margins), 0)}–${fmt(Math.max(...margins), 0)})` : '—'} | ${target(cell).text}: ${check.met ? 'met' : 'MISSED'} |`,
  )
}
if (voided.length) {
  console.log(
    `\nVoid runs (not OOM-killed, run again): ${voided.map(row => `${cellLabel(row)} run ${row.run}: ${row.death}, host pid ${row.hostPid}`).join('; ')}.`,
  )
}
const all = [...rows, ...voided]
console.log(
  `\noomwatch won ${rows.filter(row => won(row.agent)).length} of ${rows.length} runs. One pod up (agent listening) in ${fmt(median(all.map(row => row.setupMs)), 0)} ms median, one run ${fmt(median(all.map(row => row.totalMs)) / 1000, 1)} s median.`,
)
console.log(`\nTargets (oomwatch wins per cell):\n`)
for (const { line } of verdicts) console.log(`- ${line}`)
const missed = verdicts.filter(({ met }) => !met).length
console.log(
  `\n${missed ? `${missed} of ${verdicts.length} cells MISSED their target.` : `Every cell met its target (${verdicts.length} cells).`}`,
)
