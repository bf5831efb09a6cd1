#!/usr/bin/env node
// Clients that replay an agent's whole journal from `?since=0`, run as a process of their own
// so that their work is not counted in the agent's event-loop delay (test/e2e/replay-load.test.ts).
// Usage: node replay-clients.mjs PORT UNTIL LIVE CLIENTS
// Each client follows the pages (`replay.truncated`, `?since=next`) and any close that says where to
// go on, checks that every seq goes on by one (a hello's `missed` aside), and ends once it has seq
// UNTIL and then LIVE live events. Prints `last-page` when a client's last page begins, then one
// JSON line per client: { connections, received, gaps, live }.
import { createRequire } from 'node:module'

const { WebSocket } = createRequire(import.meta.url)('ws')
const [port, until, live, clients] = process.argv.slice(2).map(Number)
/** The seq from the tail of an event's JSON, without parsing the rest. */
const seqOf = text => Number(/"seq":(\d+),"ts":"[^"]*"\}$/.exec(text)?.[1] ?? NaN)

async function replayAll() {
  const run = { connections: 0, received: 0, gaps: [], live: [] }
  let last = 0
  for (;;) {
    run.connections++
    const since = last
    const page = await new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/?since=${since}`)
      let replay
      let done = false
      ws.on('message', data => {
        const text = String(data)
        if (text.startsWith('{"type":"hello"')) {
          replay = JSON.parse(text).replay
          if (replay?.since !== since) run.gaps.push(`hello says since ${replay?.since}, asked ${since}`)
          last = since + (replay?.missed ?? 0)
          if (!replay?.truncated) process.stdout.write('last-page\n')
          return
        }
        const seq = seqOf(text)
        if (seq !== last + 1) run.gaps.push(`${last} then ${seq}`)
        last = seq
        run.received++
        if (seq > until) run.live.push(seq)
        if (run.live.length >= live && last >= until) {
          done = true
          ws.close()
        }
      })
      ws.on('close', (code, reason) => resolve({ replay, done, code, reason: String(reason) }))
      ws.on('error', reject)
    })
    if (page.done) return run
    if (page.replay?.truncated && page.replay.next !== last) run.gaps.push(`page said next ${page.replay.next}, ended at ${last}`)
    if (run.connections > 100) throw new Error(`no end after 100 connections (last close ${page.code} ${page.reason}, seq ${last})`)
  }
}

const runs = await Promise.all(Array.from({ length: clients }, () => replayAll()))
for (const run of runs) process.stdout.write(`${JSON.stringify(run)}\n`)
