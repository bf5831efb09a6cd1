/**
 * Reads the command line: pairs every flag with its value and collects every problem
 * (unknown options, missing values, stray arguments) rather than stopping at the first.
 */
import { parseArgs } from 'node:util'
import { ACTIONS, ROWS } from './table.js'

// Node's own rule for a value that would be taken for an option, except that negative
// numbers pass so that `--port -1` gets the range message rather than "missing value".
function looksLikeOption(arg: string): boolean {
  return arg.length > 1 && arg.startsWith('-') && !/^-[\d.]/.test(arg)
}

const KNOWN_OPTIONS = new Set([
  ...ROWS.map(([, s]) => `--${s.flag}`),
  ...ACTIONS.flatMap(a => (a.short === undefined ? [`--${a.flag}`] : [`--${a.flag}`, `-${a.short}`])),
])

/** The flags given, by flag name (the last of a repeated flag wins), and what was wrong with the rest. */
export interface ScannedArgs {
  flags: Map<string, string>
  action?: 'help' | 'version'
  problems: string[]
}

/**
 * Scans command-line arguments (without `node` and the script). Values are paired with
 * their flags but not parsed here, and no flag's value appears in a problem: it may be the token.
 */
export function scanArgs(argv: string[]): ScannedArgs {
  const byFlag = new Map(ROWS.map(([, s]) => [s.flag, s]))
  // Every option is declared boolean so that parseArgs never swallows the next argument;
  // values are paired here, which lets `--port --host x` be reported rather than misread.
  const options: Record<string, { type: 'boolean'; short?: string }> = {}
  for (const [, s] of ROWS) options[s.flag] = { type: 'boolean' }
  for (const a of ACTIONS) options[a.flag] = a.short === undefined ? { type: 'boolean' } : { type: 'boolean', short: a.short }
  // strict: false so that every problem is collected rather than the first thrown.
  const { tokens } = parseArgs({ args: argv, options, strict: false, allowPositionals: true, tokens: true })
  const flags = new Map<string, string>()
  const problems: string[] = []
  const consumed = new Set<number>()
  const reported = new Set<number>()
  let action: 'help' | 'version' | undefined

  for (const token of tokens) {
    if (consumed.has(token.index) || token.kind === 'option-terminator') continue
    if (token.kind === 'positional') {
      problems.push(`unexpected argument "${token.value}" (oomwatch takes no arguments; see --help)`)
      continue
    }
    if (token.name === 'help' || token.name === 'version') {
      action ??= token.name
      continue
    }
    const setting = byFlag.get(token.name)
    let value = token.value
    const next = argv[token.index + 1]
    if (value === undefined && next !== undefined) {
      if (!looksLikeOption(next)) {
        value = next
        consumed.add(token.index + 1)
      } else if (setting !== undefined && !KNOWN_OPTIONS.has(next.split('=')[0] as string)) {
        // `--token -abc` meant -abc as the value: report the missing `=`, never the value.
        consumed.add(token.index + 1)
      }
    }
    if (setting === undefined) {
      // Its value (if any) was consumed unseen: `--tokn SECRET` must not echo the secret.
      // `-port` arrives as -p -o -r -t; one problem for the whole argument is enough.
      if (!reported.has(token.index)) {
        reported.add(token.index)
        const name = token.rawName.startsWith('--') ? token.rawName : argv[token.index]
        problems.push(`unknown option ${name} (see --help)`)
      }
    } else if (value === undefined) {
      const hint = next === undefined ? '' : `; a value starting with "-" is written --${setting.flag}=VALUE`
      problems.push(`--${setting.flag}: missing value, expected ${setting.arg}${hint} (setting --${setting.flag} / ${setting.env})`)
    } else {
      flags.set(setting.flag, value)
    }
  }
  return action === undefined ? { flags, problems } : { flags, problems, action }
}
