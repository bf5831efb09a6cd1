/** Settings: what the agent keeps and how it serves it (clients, log, journal). */
import { statSync } from 'node:fs'
import { boolean, bytesAtLeast, integer, milliseconds, nonEmpty } from '../parse.js'
import { optional, withDefault } from '../setting.js'

/** The log levels pino knows, quietest last. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const
/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number]

/** Rows of the settings table, in help-text order: heartbeat, log, journal and clients. */
export const SERVE_SETTINGS = {
  heartbeatMs: withDefault({
    flag: 'heartbeat',
    env: 'OOMWATCH_HEARTBEAT_MS',
    arg: '<ms>',
    describe: 'WebSocket ping interval; a client that misses one pong is dropped.',
    default: 30000,
    parse: milliseconds(1),
  }),
  logLevel: withDefault({
    flag: 'log-level',
    env: 'OOMWATCH_LOG_LEVEL',
    arg: '<level>',
    describe: `Log level, one of ${LOG_LEVELS.join(', ')} (any case).`,
    default: 'info',
    parse: text => {
      // LOG_LEVEL=INFO is common in manifests; accepting it costs nothing.
      const level = LOG_LEVELS.find(l => l === text.toLowerCase())
      return level === undefined ? { reason: `expected one of ${LOG_LEVELS.join(', ')}` } : { value: level }
    },
  }),
  journalDir: optional({
    flag: 'journal-dir',
    env: 'OOMWATCH_JOURNAL_DIR',
    arg: '<dir>',
    describe: "Directory where events are journaled (the pod's emptyDir), so a restarted agent replays them and seq goes on.",
    unset: 'events kept in memory only',
    parse: nonEmpty('a directory'),
    verify: dir => {
      try {
        return statSync(dir).isDirectory() ? undefined : 'expected a directory, found another kind of file'
      } catch {
        return undefined // created at start
      }
    },
  }),
  journalMaxBytes: withDefault({
    flag: 'journal-max-bytes',
    env: 'OOMWATCH_JOURNAL_MAX_BYTES',
    arg: '<bytes>',
    describe: 'Disk the journal may use, bytes or a quantity (64Mi); the oldest events rotate away.',
    default: 64 * 1024 * 1024,
    parse: bytesAtLeast(1024 * 1024, '1Mi'),
  }),
  maxClients: withDefault({
    flag: 'max-clients',
    env: 'OOMWATCH_MAX_CLIENTS',
    arg: '<count>',
    describe: 'WebSocket clients at once; more are refused with 503.',
    default: 64,
    parse: integer(1, 10000),
  }),
  maxConnections: withDefault({
    flag: 'max-connections',
    env: 'OOMWATCH_MAX_CONNECTIONS',
    arg: '<count>',
    describe:
      'Open connections at once (HTTP and WebSocket), at most half the soft NOFILE limit (the rest is kept for the watch); ' +
      'at the cap a new one closes the oldest that has not yet sent its request.',
    default: 256,
    parse: integer(1, 100000),
  }),
  requestTimeoutMs: withDefault({
    flag: 'request-timeout',
    env: 'OOMWATCH_REQUEST_TIMEOUT_MS',
    arg: '<ms>',
    describe: 'Time a connection has to send its request (else 408); a connection idle twice as long is closed.',
    default: 10000,
    parse: milliseconds(100),
  }),
  allowedHosts: optional({
    flag: 'allowed-hosts',
    env: 'OOMWATCH_ALLOWED_HOSTS',
    arg: '<names>',
    describe:
      'Without a token: comma-separated host names (oomwatch.internal) requests may be addressed to besides localhost ' +
      'and IP addresses; others get 421 (a guard against DNS rebinding).',
    unset: 'localhost and IP addresses only',
    parse: text => {
      const names = text.split(',').map(name => name.trim().toLowerCase())
      const bad = names.find(name => !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(name))
      if (bad === undefined) return { value: names }
      return { reason: `expected host names without port or scheme (oomwatch.internal), separated by commas; "${bad}" is not one` }
    },
  }),
  metricsPid: withDefault({
    flag: 'metrics-pid',
    env: 'OOMWATCH_METRICS_PID',
    arg: '<true|false>',
    describe:
      'Label per-process metrics by pid too: one series per process, and a new one at each worker restart. ' +
      'Off: one series per container and command.',
    default: false,
    parse: boolean,
  }),
  failOpen: withDefault({
    flag: 'fail-open',
    env: 'OOMWATCH_FAIL_OPEN',
    arg: '<true|false>',
    describe:
      'A start that cannot finish (a bad setting, an unreadable token or /proc) leaves the agent up, degraded: ' +
      'it says why in the log, /readyz and oomwatch_degraded, instead of exiting 2. For sidecars.',
    default: false,
    parse: boolean,
  }),
  clientBufferBytes: withDefault({
    flag: 'client-buffer',
    env: 'OOMWATCH_CLIENT_BUFFER_BYTES',
    arg: '<bytes>',
    describe: 'Unsent bytes a client may lag behind before it is closed as too slow (it can reconnect with ?since=SEQ).',
    default: 8 * 1024 * 1024,
    parse: bytesAtLeast(64 * 1024, '64Ki'),
  }),
}
