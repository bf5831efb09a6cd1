/** Settings: what the agent may do to a runaway, and who may reach it without a token. */
import { boolean, integer, milliseconds, oneOf } from '../parse.js'
import { optional, withDefault } from '../setting.js'

/** Rows of the settings table, in help-text order: actions, then access. */
export const ACT_SETTINGS = {
  clampNofile: optional({
    flag: 'clamp-nofile',
    env: 'OOMWATCH_CLAMP_NOFILE',
    arg: '<count>',
    describe:
      'Lower the NOFILE limits of every watched process above this to it, as soon as it is seen ' +
      '(prlimit; needs CAP_SYS_RESOURCE for processes of other users). Children forked afterwards inherit it.',
    unset: 'off',
    parse: integer(1, Number.MAX_SAFE_INTEGER),
  }),
  onRunaway: withDefault({
    flag: 'on-runaway',
    env: 'OOMWATCH_ON_RUNAWAY',
    arg: '<none|stop|freeze>',
    describe:
      'Once its stack is out, stop (SIGTERM, then SIGKILL) or freeze (SIGSTOP) a runaway still heading for the limit, ' +
      "so the container's other processes live on.",
    default: 'none',
    parse: oneOf(['none', 'stop', 'freeze']),
  }),
  stopGraceMs: withDefault({
    flag: 'stop-grace',
    env: 'OOMWATCH_STOP_GRACE_MS',
    arg: '<ms>',
    describe: 'Time between SIGTERM and SIGKILL when stopping a runaway.',
    default: 1000,
    parse: milliseconds(1),
  }),
  freezeMaxMs: withDefault({
    flag: 'freeze-max',
    env: 'OOMWATCH_FREEZE_MAX_MS',
    arg: '<ms>',
    describe: 'The longest a runaway stays frozen; then --freeze-fallback applies.',
    default: 60000,
    parse: milliseconds(1),
  }),
  freezeFallback: withDefault({
    flag: 'freeze-fallback',
    env: 'OOMWATCH_FREEZE_FALLBACK',
    arg: '<release|stop>',
    describe: 'After the longest freeze: release (SIGCONT) or stop the process.',
    default: 'release',
    parse: oneOf(['release', 'stop']),
  }),
  actOnEntrypoint: withDefault({
    flag: 'act-on-entrypoint',
    env: 'OOMWATCH_ACT_ON_ENTRYPOINT',
    arg: '<true|false>',
    describe: "Allow actions on PID 1 and on containers' entrypoints (stopping one ends its container).",
    default: false,
    parse: boolean,
  }),
  allowUnauthenticated: withDefault({
    flag: 'allow-unauthenticated',
    env: 'OOMWATCH_ALLOW_UNAUTHENTICATED',
    arg: '<true|false>',
    describe: 'Listen on an address beyond loopback without a token (anyone who reaches it reads stacks and command lines).',
    default: false,
    parse: boolean,
  }),
  allowedOrigins: optional({
    flag: 'allowed-origins',
    env: 'OOMWATCH_ALLOWED_ORIGINS',
    arg: '<origins>',
    describe: "Comma-separated browser origins (https://grafana.example) allowed to connect besides the agent's own page.",
    unset: "only the agent's own origin",
    parse: text => {
      const origins = text.split(',').map(origin => origin.trim())
      const bad = origins.find(origin => !/^https?:\/\/[^/\s]+$/.test(origin))
      if (bad === undefined) return { value: origins }
      return { reason: `expected origins like https://host:port, separated by commas; "${bad}" is not one` }
    },
  }),
}
