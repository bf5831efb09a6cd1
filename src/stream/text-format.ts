import { formatBytes } from '../format/bytes.js'
import { commandName } from '../format/command-name.js'
import { escapeControls } from '../format/escape-controls.js'
import { formatPercent, formatRlimitValue, formatSeconds } from '../format/figures.js'
import { frameText, threadHeader } from '../format/stack.js'
import type { PyThread, Rlimit, RlimitTable } from '../protocol/values.js'
import type { IncidentPayload, OomwatchEvent, ProcessInfo } from '../protocol/events.js'

/** The rlimits an incident shows in text: the ones that size memory, and any a risk names. */
const MEMORY_RLIMITS = ['NOFILE', 'AS', 'DATA']
/** Frames shown per thread; a recursion thousands deep is cut, with a count of the rest. */
const MAX_FRAMES = 40

/**
 * One event as a short block of text for people at a terminal (`wscat -c
 * 'ws://HOST:PORT/?format=text'`): a headline with the seq and time, then the figures.
 * An incident's stack is laid out as `py-spy dump` prints it, with the culprit marked
 * `-->`. Pure: the server renders each event once for every text client.
 *
 * Every line goes through {@link lines}, which escapes control characters: command lines,
 * paths, function, file and thread names and error messages are the watched program's, and
 * none of them can start a line, forge one, or send a terminal an escape sequence.
 */
export function formatText(event: OomwatchEvent): string {
  const stamp = `(#${event.seq} ${event.ts})`
  switch (event.type) {
    case 'hello': {
      const pyspy =
        'path' in event.pyspy
          ? `py-spy ${event.pyspy.version} at ${event.pyspy.path}`
          : `py-spy missing: ${event.pyspy.error}; incidents will carry no stack`
      const replay = event.replay
        ? [
            `replaying ${event.replay.count} events after #${event.replay.since}${event.replay.missed > 0 ? ` (${event.replay.missed} missed)` : ''}`,
            ...(event.replay.truncated ? [`a page of a longer replay: reconnect with ?since=${event.replay.next} for more`] : []),
          ]
        : []
      return lines(
        `oomwatch ${event.version} ${stamp}`,
        pyspy,
        `watching ${event.watching.length} Python ${event.watching.length === 1 ? 'process' : 'processes'}${event.watching.length > 0 ? ':' : ''}`,
        ...event.watching.map(p => `  ${processLine(p)}`),
        ...replay,
      )
    }
    case 'process':
      return lines(
        `PROCESS pid ${event.pid} ${commandName(event.cmdline)} ${stamp}`,
        `  ${processLine(event)}`,
        `  ${event.cmdline.join(' ')}`,
      )
    case 'risk':
      return lines(`RISK pid ${event.pid} ${commandName(event.cmdline)}: ${event.rule} ${stamp}`, `  ${event.message}`)
    case 'incident':
      return formatIncident(event, stamp)
    case 'flamegraph':
      return event.url !== undefined
        ? lines(
            `FLAME GRAPH of incident ${event.incidentId} (pid ${event.pid}) ${stamp}`,
            `  ${event.url} (recorded ${formatSeconds(event.durationMs ?? 0)})`,
          )
        : lines(
            `NO FLAME GRAPH for incident ${event.incidentId} (pid ${event.pid}) ${stamp}`,
            `  ${event.error?.code}: ${event.error?.message}`,
          )
    case 'exit': {
      const what = event.killedWith ? 'KILLED WITH ITS CONTAINER' : event.oomKilled ? 'OOM-KILLED' : 'EXIT'
      const detail =
        event.postMortem?.summary ?? `exited; peak RSS ${event.peakRssBytes === undefined ? 'unknown' : formatBytes(event.peakRssBytes)}`
      return lines(`${what} pid ${event.pid} ${commandName(event.cmdline)} ${stamp}`, `  ${detail}`)
    }
    case 'oom-kill':
      return lines(
        `OOM-KILLED ${event.kills === 1 ? 'a process' : `${event.kills} processes`} oomwatch did not watch ${stamp}`,
        `  ${event.summary}`,
      )
    case 'group-kill':
      return lines(
        `OOM-KILLED CONTAINER: pid ${event.runaway.pid} ${commandName(event.runaway.cmdline)} ran away, ${event.killed.length} killed ${stamp}`,
        `  ${event.summary}`,
      )
    case 'action':
      return lines(
        `ACTION ${event.action} pid ${event.pid} ${commandName(event.cmdline)}: ${event.result} ${stamp}`,
        `  ${event.reason}${event.detail ? ` (${event.detail})` : ''}`,
        ...(event.remedy ? [`  remedy: ${event.remedy}`] : []),
      )
    case 'error':
      return lines(`ERROR ${event.code} ${stamp}`, `  ${event.message}`)
  }
}

function formatIncident(event: IncidentPayload, stamp: string): string {
  const m = event.memory
  const ttl = m.secondsToLimit === null ? '' : `, limit in ${m.secondsToLimit} s`
  const rss = m.rssBytes === undefined ? '' : `RSS ${formatBytes(m.rssBytes)}, `
  const figures =
    `${event.reason}: ${rss}${formatBytes(m.usageBytes)} of ${formatBytes(m.limitBytes)} ` +
    `(${formatPercent(m.fractionOfLimit)}, ${m.limitSource}), +${formatBytes(m.growthBytesPerSec)}/s${ttl}`
  const stack = event.capture.error
    ? [`no stack: ${event.capture.error.code}: ${event.capture.error.message}`, `  remedy: ${event.capture.error.remedy}`]
    : event.threads.flatMap(thread => ['', ...threadLines(thread, event)])
  const shown = [...new Set([...MEMORY_RLIMITS, ...event.risks.map(risk => risk.rlimit)])].filter(name => event.rlimits[name] !== undefined)
  return lines(
    `INCIDENT ${event.id} pid ${event.pid} ${commandName(event.cmdline)} ${stamp}`,
    figures,
    `Process ${event.pid}: ${event.cmdline.join(' ')}`,
    ...stack,
    '',
    `rlimits: ${shown.length > 0 ? shown.map(name => rlimitText(name, event.rlimits)).join('; ') : 'not read'}`,
    ...event.risks.slice(0, 1).map(risk => `likely cause: ${risk.message}`),
    ...(event.risks.length > 1
      ? [
          `also: ${event.risks
            .slice(1)
            .map(risk => risk.rule)
            .join(', ')}`,
        ]
      : []),
    `capture: trigger to stack ${event.capture.triggerToStackMs} ms (py-spy ${event.capture.pyspyMs} ms)`,
  )
}

/** `Thread 17600 (idle): "MainThread"` and its frames, as py-spy dump prints them. */
function threadLines(thread: PyThread, event: IncidentPayload): string[] {
  const culprit = event.culprit
  const frames = thread.frames.slice(0, MAX_FRAMES).map((frame, index) => {
    const text = frameText(frame)
    const isCulprit = culprit !== undefined && culprit.threadId === thread.id && index === 0
    return isCulprit ? `--> ${text}   <-- culprit: ${culprit.why}` : `    ${text}`
  })
  const cut = thread.frames.length > MAX_FRAMES ? [`    ... ${thread.frames.length - MAX_FRAMES} more frames`] : []
  return [threadHeader(thread), ...frames, ...cut]
}

function rlimitText(name: string, table: RlimitTable): string {
  const row = table[name] as Rlimit
  const value = (v: Rlimit['soft']) => formatRlimitValue(v, row.units)
  return row.soft === row.hard ? `${name} ${value(row.hard)}` : `${name} soft ${value(row.soft)}, hard ${value(row.hard)}`
}

/** `pid 42 worker.py: RSS 9 MiB of 256 MiB (cgroup-v2); NOFILE 1024` */
function processLine(p: ProcessInfo): string {
  const rss = p.memory.rssBytes === undefined ? '' : `RSS ${formatBytes(p.memory.rssBytes)} of `
  const nofile = p.rlimits.NOFILE ? `; ${rlimitText('NOFILE', p.rlimits)}` : ''
  return `pid ${p.pid} ${commandName(p.cmdline)}: ${rss}${formatBytes(p.memory.limit.bytes)} (${p.memory.limit.source})${nofile}`
}

/**
 * The one way out of this module: each line is escaped whole, so a value interpolated
 * anywhere in it is escaped too, and the only line breaks in a block are the ones put here.
 */
function lines(...text: string[]): string {
  return text.map(escapeControls).join('\n')
}
