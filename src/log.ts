import pino, { type DestinationStream, type Logger } from 'pino'
import type { OomwatchEvent } from './protocol/events.js'

/**
 * JSON lines on stdout. Levels are written as string labels (`"level":"warn"`) because
 * Loki and most log pipelines read only strings; `time` is ISO 8601.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { name: 'oomwatch' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  }
  return destination ? pino(options, destination) : pino(options)
}

const LEVEL: Record<OomwatchEvent['type'], 'info' | 'warn' | 'error'> = {
  hello: 'info',
  error: 'warn',
  process: 'info',
  risk: 'warn',
  incident: 'error',
  exit: 'info',
  'oom-kill': 'error',
  'group-kill': 'error',
  action: 'warn',
  flamegraph: 'info',
}

/**
 * A sink that writes one log line per event. The event's own fields are the line's
 * fields (pid, reason, culprit, rlimits, ...), so the log stack can index them; the
 * message is the event's summary in words.
 */
export function logSink(logger: Logger): (event: OomwatchEvent) => void {
  return event => {
    // One error line per OOM kill: a process killed with its container is told by the group-kill's.
    const level = event.type === 'exit' && event.oomKilled ? (event.killedWith ? 'warn' : 'error') : LEVEL[event.type]
    logger[level](event, describe(event))
  }
}

function describe(event: OomwatchEvent): string {
  switch (event.type) {
    case 'incident':
      return event.summary
    case 'risk':
      return `pid ${event.pid}: ${event.message}`
    case 'process':
      return `watching pid ${event.pid} (${event.cmdline.join(' ')}), memory limit ${event.memory.limit.bytes} bytes from ${event.memory.limit.source}`
    case 'exit':
      return event.postMortem?.summary ?? (event.oomKilled ? `pid ${event.pid} was OOM-killed by the kernel` : `pid ${event.pid} exited`)
    case 'oom-kill':
    case 'group-kill':
      return event.summary
    case 'hello':
      return 'hello'
    case 'error':
      return event.message
    case 'flamegraph':
      return event.url
        ? `flame graph of incident ${event.incidentId} at ${event.url}`
        : `no flame graph for incident ${event.incidentId}: ${event.error?.message}`
    case 'action':
      return `${event.action} pid ${event.pid}: ${event.result}${event.detail ? ` (${event.detail})` : ''}; ${event.reason}`
  }
}
