// Preloaded into the agent by the latency benchmark (`node --import`): after each incident
// is emitted, one line on stderr, `OOMWATCH_EMIT <incident id> <ns>`, with the monotonic
// time (CLOCK_MONOTONIC, the same clock in every process of the machine) at which its
// emission began. The line is written after the emission returns, so it delays no sink.
import { writeSync } from 'node:fs'
import { pathToFileURL } from 'node:url'

// The events module of the build being run: beside the CLI given to node.
const { EventHub } = await import(new URL('hub.js', pathToFileURL(process.argv[1])).href)
if (typeof EventHub?.prototype?.emit !== 'function') throw new Error('emit-clock: dist/hub.js has no EventHub.prototype.emit to time')
const emit = EventHub.prototype.emit
EventHub.prototype.emit = function timedEmit(payload) {
  const at = process.hrtime.bigint()
  const event = emit.call(this, payload)
  if (event?.type === 'incident') writeSync(2, `OOMWATCH_EMIT ${event.id} ${at}\n`)
  return event
}
