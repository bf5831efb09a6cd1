import { spawn } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import t from 'tap'
import { startAgent } from '../helpers/agent.js'
import { connect, type Received } from '../helpers/client.js'
import { makeTestCgroup } from '../helpers/memory-cgroup.js'
import { LEAKY_DAEMON, PYTHON } from '../helpers/python.js'
import type { IncidentPayload } from '../../src/protocol/events.js'

// The live page in a real browser: Debian's Chromium (installed by .ci/run when missing),
// driven by playwright-core, which downloads no browser of its own.
const CHROMIUM = '/usr/bin/chromium'
const SCREENSHOT = fileURLToPath(new URL('../artifacts/page.png', import.meta.url))
const LIMIT = 256 * 1024 * 1024
const TOKEN = 'page-token'

t.test('the live page: connects, shows a watched process, then a real leak with its culprit', async t => {
  const label = `page-${process.pid}`
  const agent = await startAgent({
    OOMWATCH_TOKEN: TOKEN,
    OOMWATCH_MATCH: label,
    OOMWATCH_NOFILE_RISK: '4096',
    OOMWATCH_FLAMEGRAPH_SECONDS: '2',
  })
  t.teardown(() => agent.stop())
  const witness = await connect(agent.port, { headers: { authorization: `Bearer ${TOKEN}` } })
  t.teardown(() => witness.close())

  const context = await chromium.launchPersistentContext(t.testdir(), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1366, height: 860 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
  t.teardown(() => context.close())
  const page = context.pages()[0] ?? (await context.newPage())
  const problems: string[] = []
  page.on('pageerror', error => problems.push(`page error: ${error.message}`))
  page.on('console', message => message.type() === 'error' && problems.push(`console: ${message.text()}`))

  const response = await page.goto(`http://127.0.0.1:${agent.port}/?token=${TOKEN}`)
  const csp = response?.headers()['content-security-policy'] ?? ''
  t.match(csp, /script-src 'self'; style-src 'self'/, 'a strict CSP: script and style from the agent only')
  t.notMatch(csp, /unsafe-inline/, 'nothing inline')
  await page.locator('#status', { hasText: 'live' }).waitFor()
  t.pass('the page connected over the WebSocket, with the token as its subprotocol')
  // A string: this file is compiled without the DOM's types.
  const statusColour = await page.evaluate("getComputedStyle(document.getElementById('status')).backgroundColor")
  t.equal(statusColour, 'rgb(31, 122, 61)', 'its stylesheet applies (the live badge is green)')
  t.match(await page.locator('#processes').innerText(), /No Python process seen yet/, 'before any process: what to expect')
  t.match(await page.locator('#agent').innerText(), /agent 0\.1\.0 · py-spy 0\.4\.2/)

  const cgroup = makeTestCgroup(LIMIT)
  t.teardown(() => cgroup.remove())
  // Idle for a few seconds, then ~40 MB/s into the 256 MiB limit.
  const [bin, ...args] = cgroup.wrap([
    PYTHON,
    LEAKY_DAEMON,
    '--entries',
    '10000000',
    '--rate',
    '40000000',
    '--delay',
    '4',
    '--label',
    label,
  ])
  const pid = spawn(bin!, args, { stdio: 'ignore' }).pid!

  const card = page.locator(`#processes [data-pid="${pid}"]`)
  await card.waitFor()
  const cardText = await card.innerText()
  t.match(cardText, /leaky_daemon\.py/, 'the watched process, by its command name')
  t.match(cardText, new RegExp(`pid ${pid}`))
  t.match(cardText, /of 256 MiB \(\d+%, cgroup-v1|of 256 MiB \(\d+%, cgroup-v2/, 'its memory against its limit')
  await page.locator('#risks', { hasText: 'nofile-hard-huge' }).waitFor()
  t.pass('the risk of its NOFILE limit is listed')

  const incident = (await witness.waitFor(e => e.type === 'incident' && e.pid === pid)) as IncidentPayload & Received
  const culprit = page.locator(`#incidents [data-incident="${incident.id}"] .culprit`)
  await culprit.waitFor()
  t.match(
    await culprit.innerText(),
    /fd_table_from_limit \(.*leaky_daemon\.py:\d+\)\s+← culprit/,
    "the incident's culprit function, marked in its stack",
  )
  const stack = await page.locator(`#incidents [data-incident="${incident.id}"] pre.stack`).innerText()
  t.match(stack, /Thread \d+ \((idle|active|active\+gil)\): "MainThread"[\s\S]*serve \(/, 'the stack, laid out as py-spy dump prints it')

  const link = page.locator(`#incidents [data-incident="${incident.id}"] a.flamegraph`)
  await link.waitFor()
  const href = await link.getAttribute('href')
  t.equal(href, `/incidents/${incident.id}/flamegraph.svg?token=${TOKEN}`, 'a link to its flame graph, with the token')
  const svg = await page.request.get(`http://127.0.0.1:${agent.port}${href}`)
  t.equal(svg.headers()['content-type'], 'image/svg+xml', 'which the agent serves')

  await card.locator('.badge', { hasText: 'OOM-killed' }).waitFor({ timeout: 60_000 })
  t.pass('the process card says the kernel OOM-killed it')
  t.equal(await card.locator('svg.chart polyline').count(), 1, 'its memory, drawn')
  t.match(await card.locator('svg.chart').textContent(), /limit 256 MiB/, 'against its limit')
  await page.locator(`#incidents [data-incident="${incident.id}"] .badge`, { hasText: 'then OOM-killed' }).waitFor()

  mkdirSync(fileURLToPath(new URL('../artifacts/', import.meta.url)), { recursive: true })
  await page.screenshot({ path: SCREENSHOT, fullPage: true })
  t.comment(`screenshot: ${SCREENSHOT}`)
  t.same(problems, [], 'no script error, no refused connection or CSP violation in the console')
})
