/** Settings: where the agent listens, who may connect, which processes it watches and with what. */
import { statSync } from 'node:fs'
import { isIP } from 'node:net'
import { bytes, integer, nonEmpty } from '../parse.js'
import { optional, withDefault } from '../setting.js'

const portNumber = integer(0, 65535)

/** Rows of the settings table, in help-text order: the server, the target and its tools. */
export const TARGET_SETTINGS = {
  port: withDefault({
    flag: 'port',
    env: 'OOMWATCH_PORT',
    arg: '<port>',
    describe: 'Port of the WebSocket server (ws://HOST:PORT/); 0 picks any free port.',
    default: 9642,
    parse: text => {
      const parsed = portNumber(text)
      // A Service named "oomwatch" makes Kubernetes inject OOMWATCH_PORT=tcp://IP:PORT.
      if ('reason' in parsed && text.startsWith('tcp://')) {
        return {
          reason:
            `${parsed.reason}; this looks like the service link Kubernetes injects for a Service ` +
            'named "oomwatch": set enableServiceLinks: false in the pod spec, or pass --port',
        }
      }
      return parsed
    },
  }),
  host: withDefault({
    flag: 'host',
    env: 'OOMWATCH_HOST',
    arg: '<address>',
    describe: 'Address to listen on; 0.0.0.0 for every interface (set a token then).',
    default: '127.0.0.1',
    parse: text =>
      isIP(text) !== 0 || /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/.test(text)
        ? { value: text }
        : { reason: 'expected a host name or an IP address, such as 127.0.0.1, 0.0.0.0 or ::' },
  }),
  metricsPort: optional({
    flag: 'metrics-port',
    env: 'OOMWATCH_METRICS_PORT',
    arg: '<port>',
    describe:
      'A second port, on the same address, that serves /metrics, /livez and /readyz without the token ' +
      '(for Prometheus and the kubelet); the stream stays on --port.',
    unset: '/metrics on --port, behind the token',
    parse: portNumber,
  }),
  pyspy: optional({
    flag: 'pyspy',
    env: 'OOMWATCH_PYSPY',
    arg: '<path>',
    describe: 'Path to the py-spy executable.',
    unset: 'found automatically',
    parse: nonEmpty('a path to the py-spy executable'),
  }),
  memoryLimit: optional({
    flag: 'memory-limit',
    env: 'OOMWATCH_MEMORY_LIMIT',
    arg: '<bytes>',
    describe:
      'Memory limit used when no cgroup limit is found: bytes or a Kubernetes quantity ' +
      '(512Mi, 1G); feed it from the Downward API (resourceFieldRef limits.memory).',
    unset: 'the cgroup limit, else host memory',
    parse: bytes,
  }),
  token: optional({
    flag: 'token',
    env: 'OOMWATCH_TOKEN',
    arg: '<token>',
    describe:
      'Bearer token; when set, clients without it are refused. Prefer OOMWATCH_TOKEN or --token-file: ' +
      "a flag's value is readable by any process of the pod in /proc/<pid>/cmdline.",
    unset: 'no authentication',
    secret: true,
    parse: nonEmpty('a non-empty token'),
  }),
  tokenFile: optional({
    flag: 'token-file',
    env: 'OOMWATCH_TOKEN_FILE',
    arg: '<path>',
    describe:
      'File that holds the bearer token (a mounted Secret; a trailing newline is ignored). ' +
      'Re-read when it changes: a rotated Secret takes effect at the next connection.',
    unset: 'no token file',
    parse: nonEmpty('a path to the file that holds the token'),
  }),
  procRoot: withDefault({
    flag: 'proc',
    env: 'OOMWATCH_PROC',
    arg: '<dir>',
    describe: 'Root of procfs (tests point it at fixtures).',
    default: '/proc',
    parse: nonEmpty('a directory'),
    verify: dir => {
      // Not throwIfNoEntry: Node 24 also returns undefined for ENOTDIR, which hides the cause.
      try {
        return statSync(dir).isDirectory() ? undefined : 'expected an existing directory; it is not a directory'
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'expected an existing directory; it does not exist'
        return `expected an existing directory (${(err as Error).message})`
      }
    },
  }),
  match: optional({
    flag: 'match',
    env: 'OOMWATCH_MATCH',
    arg: '<regexp>',
    describe: 'Watch only processes whose command line (arguments joined by spaces) matches this JavaScript regular expression.',
    unset: 'every Python process',
    parse: text => {
      if (text === '') return { reason: 'expected a non-empty regular expression' }
      try {
        return { value: new RegExp(text) }
      } catch (err) {
        return { reason: `expected a regular expression (${(err as Error).message})` }
      }
    },
  }),
}
