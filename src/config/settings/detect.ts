/** Settings: how often the agent looks, when it captures, and what a capture records. */
import { boolean, integer, milliseconds, positiveNumber } from '../parse.js'
import { withDefault } from '../setting.js'
import { DEFAULT_REDACT, REDACT_OFF, redactPatternProblem } from '../../format/redact-secrets.js'

/** Rows of the settings table, in help-text order: ticks, triggers, captures and risks. */
export const DETECT_SETTINGS = {
  intervalMs: withDefault({
    flag: 'interval',
    env: 'OOMWATCH_INTERVAL_MS',
    arg: '<ms>',
    describe: "Quiet tick: reads the last pid allocated (births) and each container's memory usage.",
    default: 100,
    parse: milliseconds(1),
  }),
  fastIntervalMs: withDefault({
    flag: 'fast-interval',
    env: 'OOMWATCH_FAST_INTERVAL_MS',
    arg: '<ms>',
    describe: 'Tick after a birth, while a process starts, and while memory grows or nears the limit; at most --interval.',
    default: 20,
    parse: milliseconds(1),
  }),
  refreshMs: withDefault({
    flag: 'refresh',
    env: 'OOMWATCH_REFRESH_MS',
    arg: '<ms>',
    describe: 'How often per-process detail is read when nothing moves.',
    default: 5000,
    parse: milliseconds(1),
  }),
  scanMs: withDefault({
    flag: 'scan-interval',
    env: 'OOMWATCH_SCAN_MS',
    arg: '<ms>',
    describe: 'How often procfs is scanned for new Python processes where births cannot be seen (a procfs root of another PID namespace).',
    default: 500,
    parse: milliseconds(1),
  }),
  windowMs: withDefault({
    flag: 'window',
    env: 'OOMWATCH_WINDOW_MS',
    arg: '<ms>',
    describe: 'Window over which the growth rate is measured.',
    default: 2000,
    parse: milliseconds(1),
  }),
  triggerFraction: withDefault({
    flag: 'trigger-fraction',
    env: 'OOMWATCH_TRIGGER_FRACTION',
    arg: '<fraction>',
    describe: 'Fraction of the limit that, while memory grows, triggers a capture (0 < x <= 1).',
    default: 0.9,
    parse: positiveNumber(1),
  }),
  triggerSeconds: withDefault({
    flag: 'trigger-seconds',
    env: 'OOMWATCH_TRIGGER_SECONDS',
    arg: '<seconds>',
    describe: 'Predicted seconds to the limit that trigger a capture (> 0, may be fractional).',
    default: 3,
    parse: positiveNumber(),
  }),
  cooldownMs: withDefault({
    flag: 'cooldown',
    env: 'OOMWATCH_COOLDOWN_MS',
    arg: '<ms>',
    describe: 'At most one incident per process and trigger reason in this time; 0 for no limit.',
    default: 60000,
    parse: milliseconds(0),
  }),
  pyspyTimeoutMs: withDefault({
    flag: 'pyspy-timeout',
    env: 'OOMWATCH_PYSPY_TIMEOUT_MS',
    arg: '<ms>',
    describe: 'How long one py-spy dump may take before it is killed.',
    default: 5000,
    parse: milliseconds(1),
  }),
  flamegraph: withDefault({
    flag: 'flamegraph',
    env: 'OOMWATCH_FLAMEGRAPH',
    arg: '<true|false>',
    describe:
      'After an incident, if the process is still alive, record a short flame graph of it (py-spy record), ' +
      'served at /incidents/<id>/flamegraph.svg.',
    default: true,
    parse: boolean,
  }),
  flamegraphSeconds: withDefault({
    flag: 'flamegraph-seconds',
    env: 'OOMWATCH_FLAMEGRAPH_SECONDS',
    arg: '<seconds>',
    describe: 'How long py-spy record samples for a flame graph (one at a time).',
    default: 5,
    parse: integer(1, 60, 'a whole number of seconds'),
  }),
  flamegraphMax: withDefault({
    flag: 'flamegraph-max',
    env: 'OOMWATCH_FLAMEGRAPH_MAX',
    arg: '<count>',
    describe: 'Flame graphs kept on disk (next to the journal, else in a temporary directory); the oldest are removed.',
    default: 20,
    parse: integer(1, 10000),
  }),
  nofileRisk: withDefault({
    flag: 'nofile-risk',
    env: 'OOMWATCH_NOFILE_RISK',
    arg: '<count>',
    describe: 'NOFILE hard limit above which a risk is reported (code sized by it allocates per fd).',
    default: 1048576,
    parse: integer(1, Number.MAX_SAFE_INTEGER),
  }),
  redact: withDefault({
    flag: 'redact',
    env: 'OOMWATCH_REDACT',
    arg: `<regexp|${REDACT_OFF}>`,
    describe:
      'Secrets hidden (as ***) in command lines before they are journaled, logged or streamed: the value of an ' +
      'argument (--name value, --name=value, NAME=value) whose name has a word (split at - _ . and case changes) ' +
      'that this regular expression matches whole, ignoring case, and the password of a URL (scheme://user:***@host); ' +
      `${REDACT_OFF} shows command lines whole.`,
    default: DEFAULT_REDACT,
    parse: text => {
      const problem = redactPatternProblem(text)
      return problem === undefined ? { value: text } : { reason: problem }
    },
  }),
}
