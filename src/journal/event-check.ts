/**
 * Whether a value read back from the journal is an event the sinks can take: pure, one
 * small check per event type over the fields the stream's text mode, the live page and the
 * metrics read. The journal is a file on a shared volume: a line that parses as JSON may
 * still be anything (a crash, a hand edit, another writer), and one event without its
 * `cmdline` must not end the agent when a client replays it.
 */
import type { OomwatchEvent } from '../protocol/events.js'

/** A check of one value; true when it has the shape. */
type Check = (value: unknown) => boolean

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)
const str: Check = value => typeof value === 'string'
const num: Check = value => typeof value === 'number' && Number.isFinite(value)
const bool: Check = value => typeof value === 'boolean'
const int: Check = value => Number.isSafeInteger(value)
const nullable =
  (check: Check): Check =>
  value =>
    value === null || check(value)
const oneOf =
  (...allowed: readonly string[]): Check =>
  value =>
    typeof value === 'string' && allowed.includes(value)
const arrayOf =
  (check: Check): Check =>
  value =>
    Array.isArray(value) && value.every(check)
const recordOf =
  (check: Check): Check =>
  value =>
    isObject(value) && Object.values(value).every(check)

/** Required fields as `name`, optional ones as `name?` (absent or undefined is fine). */
function shape(fields: Record<string, Check>): Check {
  const entries = Object.entries(fields).map(([key, check]) => ({ key: key.replace(/\?$/, ''), optional: key.endsWith('?'), check }))
  return value =>
    isObject(value) && entries.every(({ key, optional, check }) => (optional && value[key] === undefined) || check(value[key]))
}

const rlimitValue: Check = value => value === 'unlimited' || num(value)
const rlimitTable = recordOf(shape({ soft: rlimitValue, hard: rlimitValue, units: str }))
const cmdline = arrayOf(str)
const problem = shape({ code: str, message: str, remedy: str })
const frame = { function: str, file: str, line: num }
const risk = shape({ rule: str, rlimit: str, value: rlimitValue, threshold: num, message: str })

const processEvent = shape({
  pid: int,
  'ppid?': int,
  'startTime?': num,
  cmdline,
  'exe?': str,
  'python?': shape({ via: str, detail: str }),
  rlimits: rlimitTable,
  memory: shape({
    'rssBytes?': num,
    limit: shape({ bytes: num, source: str, 'path?': str }),
    'cgroup?': isObject,
  }),
})

const incident = shape({
  id: str,
  pid: int,
  cmdline,
  reason: str,
  summary: str,
  memory: shape({
    'rssBytes?': num,
    usageBytes: num,
    limitBytes: num,
    limitSource: str,
    fractionOfLimit: num,
    growthBytesPerSec: num,
    secondsToLimit: nullable(num),
  }),
  process: isObject,
  rlimits: rlimitTable,
  risks: arrayOf(risk),
  threads: arrayOf(shape({ id: num, 'osThreadId?': num, 'name?': str, 'active?': bool, 'ownsGil?': bool, frames: arrayOf(shape(frame)) })),
  'culprit?': shape({ ...frame, threadId: num, why: str }),
  capture: shape({ triggerToStackMs: num, pyspyMs: num, 'error?': problem }),
})

const exit = shape({
  pid: int,
  cmdline,
  oomKilled: bool,
  'lastIncidentId?': str,
  'peakRssBytes?': num,
  'livedMs?': num,
  'postMortem?': shape({ summary: str, peakRssBytes: num, limitBytes: num, livedMs: num }),
  'killedWith?': shape({ pid: int, cmdline, 'incidentId?': str }),
})

const groupKill = shape({
  cgroup: shape({ version: int, dir: str }),
  limit: shape({ bytes: num, source: str }),
  runaway: shape({ pid: int, cmdline, peakRssBytes: num, 'incidentId?': str, 'culprit?': shape(frame) }),
  killed: arrayOf(int),
  'groupKills?': int,
  summary: str,
})

const oomKill = shape({
  kills: int,
  cgroup: shape({ version: int, dir: str }),
  limit: shape({ bytes: num, source: str }),
  'peakUsageSeenBytes?': num,
  survivors: arrayOf(int),
  'lastExit?': shape({ pid: int, cmdline, agoMs: num }),
  summary: str,
})

const action = shape({
  action: str,
  pid: int,
  cmdline,
  reason: str,
  result: oneOf('done', 'refused', 'failed', 'skipped'),
  'detail?': str,
  'remedy?': str,
  'incidentId?': str,
})

const flamegraph = shape({ incidentId: str, pid: int, 'url?': str, 'durationMs?': num, 'error?': problem })

/**
 * The checks of the journaled event types. `hello` and `error` are per client and never
 * journaled: a line claiming to be one is not valid either.
 */
const BY_TYPE = new Map<string, Check>([
  ['process', processEvent],
  ['risk', value => risk(value) && shape({ pid: int, cmdline })(value)],
  ['incident', incident],
  ['exit', exit],
  ['oom-kill', oomKill],
  ['group-kill', groupKill],
  ['action', action],
  ['flamegraph', flamegraph],
])

/**
 * True when `value` is a journaled event the sinks can take: a positive integer `seq`, a
 * string `ts`, a known `type`, and that type's fields.
 */
export function isJournalEvent(value: unknown): value is OomwatchEvent {
  if (!isObject(value)) return false
  const { seq, ts, type } = value
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1 || typeof ts !== 'string' || typeof type !== 'string') return false
  const check = BY_TYPE.get(type)
  return check !== undefined && check(value)
}
