// Preloaded into the agent by bench/replay.mjs (`node --require`): samples the agent's own
// event-loop delay from its last SIGUSR2 (sent when the clients start) and, at exit, writes its max and p99 (ms) as JSON to OOMWATCH_BENCH_LOOP_FILE.
const { monitorEventLoopDelay } = require('node:perf_hooks')
const { writeFileSync } = require('node:fs')

const histogram = monitorEventLoopDelay({ resolution: 10 })
histogram.enable()
process.on('SIGUSR2', () => histogram.reset())
process.on('exit', () => {
  histogram.disable()
  const file = process.env.OOMWATCH_BENCH_LOOP_FILE
  if (file) writeFileSync(file, JSON.stringify({ maxMs: histogram.max / 1e6, p99Ms: histogram.percentile(99) / 1e6 }))
})
