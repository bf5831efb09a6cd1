#!/usr/bin/env node
// What `?since=0` replays cost the agent: a journal of synthetic events (~60 MiB, within the
// 64 Mi default) in a temporary directory, the agent (dist/cli.js, as shipped) started on it,
// then 1 and 4 clients that replay it all at once. Black-box: the agent's event-loop stall is
// the longest answer to a `/livez` probe sent every 10 ms, its memory the peak VmRSS.
// A client follows the pages of a capped replay (`replay.truncated`, reconnect with
// `?since=next`); an agent without pages sends one replay, and its client stops there.
//
// Usage: npm run build && node bench/replay.mjs [--mib 60] [--clients 1,4]
// Prints a markdown table on stdout, progress on stderr. Not a test: numbers vary by machine.
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { once } from 'node:events'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Worker } from 'node:worker_threads'
import { fmt, MiB, option, ROOT, startAgentProcess, usageOf } from './lib/common.mjs'

const { WebSocket } = createRequire(import.meta.url)('ws')
const args = process.argv.slice(2)
const journalMiB = Number(option(args, 'mib', '60'))
const clientCounts = option(args, 'clients', '1,4').split(',').map(Number)

/** A valid `process` event, ~400 bytes, as the agent journals them. */
function processLine(seq) {
  const event = {
    type: 'process',
    pid: 1000 + (seq % 30000),
    ppid: 1,
    startTime: seq,
    cmdline: ['/usr/bin/python3', '/app/worker.py', '--queue', `jobs-${seq % 17}`],
    python: { via: 'exe', detail: '/usr/bin/python3.11' },
    rlimits: { NOFILE: { soft: 1024, hard: 1048576, units: 'files' }, AS: { soft: 'unlimited', hard: 'unlimited', units: 'bytes' } },
    memory: { rssBytes: 12_345_678, limit: { bytes: 268_435_456, source: 'cgroup-v2', path: '/sys/fs/cgroup/memory.max' } },
    seq,
    ts: new Date(1_790_000_000_000 + seq).toISOString(),
  }
  return `${JSON.stringify(event)}\n`
}

/** Fills `dir` with four segments of about `mib / 4` MiB each; returns the last seq. */
function writeJournal(dir, mib) {
  const perSegment = (mib * MiB) / 4
  let seq = 0
  for (let segment = 0; segment < 4; segment++) {
    const fd = openSync(join(dir, `events-${String(seq + 1).padStart(16, '0')}.jsonl`), 'w', 0o600)
    let bytes = 0
    let batch = ''
    while (bytes < perSegment) {
      const line = processLine(++seq)
      bytes += line.length
      batch += line
      if (batch.length > 1 << 20) {
        writeSync(fd, batch)
        batch = ''
      }
    }
    writeSync(fd, batch)
    closeSync(fd)
  }
  return seq
}

/**
 * Sequential GET /livez every 10 ms from a worker thread (its own event loop: this process's
 * clients parsing their replays do not delay it); the longest answer is how long the agent's
 * event loop was held, plus a round trip.
 */
function probe(port) {
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads')
    const { get } = require('node:http')
    let stop = false
    let max = 0
    parentPort.on('message', () => (stop = true))
    const once = () => new Promise(resolve => {
      const started = performance.now()
      get({ host: '127.0.0.1', port: workerData, path: '/livez', agent: false }, res => {
        res.resume()
        res.on('end', () => resolve(performance.now() - started))
      }).on('error', () => resolve(performance.now() - started))
    })
    ;(async () => {
      while (!stop) {
        max = Math.max(max, await once())
        await new Promise(resolve => setTimeout(resolve, 10))
      }
      parentPort.postMessage(max)
    })()`,
    { eval: true, workerData: port },
  )
  return {
    async end() {
      worker.postMessage('stop')
      const [max] = await once(worker, 'message')
      await worker.terminate()
      return max
    },
  }
}

/** Peak VmRSS of `pid`, sampled every 20 ms until `end()`. */
function rssPeak(pid) {
  let peak = usageOf(pid).rssBytes ?? 0
  const timer = setInterval(() => (peak = Math.max(peak, usageOf(pid).rssBytes ?? 0)), 20)
  return {
    end() {
      clearInterval(timer)
      return peak
    },
  }
}

/** One client's whole replay from 0: follows pages until `lastSeq`; resolves with events and connections. */
async function replayAll(port, lastSeq) {
  let since = 0
  let events = 0
  let connections = 0
  let gaps = 0
  for (;;) {
    connections++
    const page = await new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/?since=${since}`)
      let hello
      let last = since
      ws.on('message', data => {
        const event = JSON.parse(String(data))
        if (event.type === 'hello') {
          hello = event
          // What was rotated away before the replay is no gap of the replay.
          last = since + (event.replay?.missed ?? 0)
          return
        }
        if (event.seq !== last + 1) gaps++
        last = event.seq
        events++
        const replayEnd = hello.replay.since + hello.replay.missed + hello.replay.count
        if (!hello.replay.truncated && last >= replayEnd) ws.close()
      })
      ws.on('close', () => resolve({ hello, last }))
      ws.on('error', reject)
    })
    if (!page.hello?.replay?.truncated) return { events, connections, gaps }
    since = page.hello.replay.next
    if (since >= lastSeq) return { events, connections, gaps }
  }
}

const dir = mkdtempSync(join(tmpdir(), 'oomwatch-bench-replay-'))
try {
  const rows = []
  let lastSeq = 0
  for (const clients of clientCounts) {
    // A fresh journal for each agent: the agent's first event rotates the oldest segment away.
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir)
    lastSeq = writeJournal(dir, journalMiB)
    process.stderr.write(`${lastSeq} events in ${dir}\n`)
    const loopFile = join(dir, '..', `${basename(dir)}-loop.json`)
    const agent = await startAgentProcess({
      env: { OOMWATCH_JOURNAL_DIR: dir, OOMWATCH_BENCH_LOOP_FILE: loopFile },
      nodeArgs: ['--require', join(ROOT, 'bench/lib/loop-delay.cjs')],
      stderr: 'ignore',
    })
    await sleep(1500)
    const before = usageOf(agent.pid).rssBytes
    process.kill(agent.pid, 'SIGUSR2')
    const stall = probe(agent.port)
    const rss = rssPeak(agent.pid)
    const started = performance.now()
    const results = await Promise.all(Array.from({ length: clients }, () => replayAll(agent.port, lastSeq)))
    const seconds = (performance.now() - started) / 1000
    const peak = rss.end()
    const maxStall = await stall.end()
    await agent.stop()
    // The agent's own event-loop delay from the clients' start to its stop.
    const loop = JSON.parse(readFileSync(loopFile, 'utf8'))
    rmSync(loopFile, { force: true })
    rows.push({ clients, before, peak, maxStall, loop, seconds, results })
    process.stderr.write(
      `${clients} client(s): /livez ${fmt(maxStall, 0)} ms, loop delay ${fmt(loop.maxMs, 0)} ms, ` +
        `RSS ${fmt(before / MiB)} -> ${fmt(peak / MiB)} MiB\n`,
    )
  }
  console.log(`journal: ${journalMiB} MiB, ${lastSeq} events\n`)
  console.log(
    '| clients | longest /livez answer (ms) | max event-loop delay inside the agent (ms) | RSS before (MiB) | peak RSS (MiB) | events per client | connections per client | seq gaps | s to replay |',
  )
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |')
  for (const { clients, before, peak, maxStall, loop, seconds, results } of rows) {
    console.log(
      `| ${clients} | ${fmt(maxStall, 0)} | ${fmt(loop.maxMs, 0)} | ${fmt(before / MiB)} | ${fmt(peak / MiB)} | ${results[0].events} | ${results[0].connections} | ${results.reduce((n, r) => n + r.gaps, 0)} | ${fmt(seconds)} |`,
    )
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
