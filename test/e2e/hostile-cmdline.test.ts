import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { once } from 'node:events'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { WebSocket } from 'ws'
import { startAgent } from '../helpers/agent.js'
import { runCli, type CliRun } from '../helpers/cli.js'
import { connect, messageText } from '../helpers/client.js'
import { makeTestCgroup } from '../helpers/memory-cgroup.js'
import { deathOf } from '../helpers/process.js'
import { LEAKY_DAEMON, PYTHON } from '../helpers/python.js'
import type { ExitPayload, IncidentPayload, ProcessPayload } from '../../src/protocol/events.js'

const WSCAT = fileURLToPath(new URL('../../node_modules/.bin/wscat', import.meta.url))
const SECRET = 'hunter2'
const SECRET_ARGS = ['--password', SECRET, `DB_PASSWORD=${SECRET}`, `postgres://u:${SECRET}@h/db`]
// The C0, DEL, C1, separators and bidi controls that escaping must leave out of text mode ('\n' between lines is the block's own).
// eslint-disable-next-line no-control-regex -- looking for them is the point
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/

/** A port that was free a moment ago: the CLI is polled until it listens there. */
async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise(resolve => server.close(resolve))
  return port
}

async function untilReady(port: number, run: CliRun): Promise<void> {
  for (;;) {
    if (run.child.exitCode !== null) throw new Error(`the agent exited (${run.child.exitCode}): ${(await run.done).stderr}`)
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200) return
    } catch {
      // not listening yet
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/** Every file under `dir`, concatenated. */
function allText(dir: string): string {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter(entry => entry.isFile())
    .map(entry => readFileSync(join(entry.parentPath, entry.name), 'utf8'))
    .join('\n')
}

t.test('a password in a command line reaches neither the stream (JSON and text), the journal nor the log', async t => {
  const label = `redact-${process.pid}`
  const journalDir = t.testdir()
  const port = await freePort()
  const run = runCli([], { OOMWATCH_PORT: String(port), OOMWATCH_JOURNAL_DIR: journalDir, OOMWATCH_MATCH: label })
  t.teardown(() => void run.child.kill('SIGKILL'))
  await untilReady(port, run)
  const json = await connect(port)
  t.teardown(() => json.close())
  const text = new WebSocket(`ws://127.0.0.1:${port}/?format=text`)
  t.teardown(() => text.terminate())
  const frames: string[] = []
  text.on('message', data => frames.push(messageText(data)))
  await once(text, 'open')

  // The whole story of one process: seen, caught leaking, OOM-killed.
  const cgroup = makeTestCgroup(256 * 1024 * 1024)
  t.teardown(() => cgroup.remove())
  const command = [PYTHON, LEAKY_DAEMON, '--entries', '10000000', '--rate', '40000000', '--delay', '0.5', '--label', label, ...SECRET_ARGS]
  const [bin, ...args] = cgroup.wrap(command)
  const pid = spawn(bin!, args, { stdio: 'ignore' }).pid!
  const seen = (await json.waitFor(e => e.type === 'process' && e.pid === pid)) as ProcessPayload
  t.same(seen.cmdline.slice(-4), ['--password', '***', 'DB_PASSWORD=***', 'postgres://u:***@h/db'], 'the values hidden, the rest kept')
  const incident = (await json.waitFor(e => e.type === 'incident' && e.pid === pid)) as IncidentPayload
  t.equal(incident.culprit?.function, 'fd_table_from_limit', 'the watch works on the redacted process as ever')
  await deathOf(pid)
  const exit = (await json.waitFor(e => e.type === 'exit' && e.pid === pid)) as ExitPayload
  t.ok(exit.oomKilled && exit.postMortem, 'its OOM kill, with the post-mortem')
  while (!frames.some(frame => frame.startsWith(`OOM-KILLED pid ${pid}`))) await once(text, 'message')

  run.child.kill('SIGTERM')
  const { stdout } = await run.done
  const stream = JSON.stringify(json.events)
  for (const [where, what] of [
    ['the JSON stream', stream],
    ['the text stream', frames.join('\n')],
    ['the journal', allText(journalDir)],
    ['the log on stdout', stdout],
  ] as const) {
    t.notOk(what.includes(SECRET), `${where} never holds the password`)
    t.ok(what.includes('postgres://u:***@h/db'), `${where} tells of the process, redacted`)
  }
  t.ok(
    frames.some(frame => frame.includes('--password *** DB_PASSWORD=*** postgres://u:***@h/db')),
    'text mode shows the redacted line',
  )
})

t.test('a real text-mode client (wscat) sees a hostile command line escaped, never as a new line or a terminal escape', async t => {
  const label = `escape-${process.pid}`
  const agent = await startAgent({ OOMWATCH_MATCH: label })
  t.teardown(() => agent.stop())
  const wscat = spawn(WSCAT, ['-c', `ws://127.0.0.1:${agent.port}/?format=text`], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => wscat.kill())
  let printed = ''
  wscat.stdout.on('data', chunk => (printed += chunk))
  while (!printed.includes('oomwatch ')) await once(wscat.stdout, 'data')

  const hostile = ['\x1b]0;title\x07', '\nINCIDENT fake-1 pid 1 forged', 'rtl\u202eyp.evil\u2028x\x9b2J']
  const sleeper = spawn(PYTHON, ['-c', 'import time; time.sleep(60)', label, ...hostile], { stdio: 'ignore' })
  t.teardown(() => sleeper.kill('SIGKILL'))
  // Until its block is out, the command line its last line (wscat ends each message with a line break).
  const headline = `PROCESS pid ${sleeper.pid} python3 -c`
  while (!/2J\n/.test(printed.slice(printed.indexOf(headline)))) await once(wscat.stdout, 'data')

  t.ok(printed.includes(headline), 'the process is told')
  const shown = String.raw`${label} \x1b]0;title\x07 \nINCIDENT fake-1 pid 1 forged rtl\u202eyp.evil\u2028x\x9b2J`
  t.ok(printed.includes(shown), 'its command line shown escaped')
  t.notMatch(printed, RAW_CONTROL, 'no raw control character reached the terminal')
  t.notOk(
    printed.split('\n').some(line => line.startsWith('INCIDENT')),
    'the forged line is not a line',
  )
})
