/** The usage text, generated from the settings table so that it cannot drift from it. */
import { ACTIONS, ROWS } from './table.js'

const HELP_WIDTH = 80
const DESCRIBE_INDENT = '      '

/** Greedy word wrap; the help text is read in terminals and `kubectl logs`. */
function wrap(text: string, indent: string): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line !== '' && indent.length + line.length + 1 + word.length > HELP_WIDTH) {
      lines.push(indent + line)
      line = word
    } else {
      line = line === '' ? word : `${line} ${word}`
    }
  }
  lines.push(indent + line)
  return lines
}

/** Usage text: every flag with its environment variable and default, generated from {@link SETTINGS}. */
export function helpText(): string {
  const lines = [
    'Usage: oomwatch [options]',
    '       oomwatch inject --token-secret NAME [FILE ...]   (see inject --help)',
    '',
    ...wrap(
      "Watches Python processes' memory and streams their stacks and rlimits over WebSocket " +
        'before the kernel OOM killer fires. Every option is also an environment variable (shown ' +
        'beside it); a flag wins over the environment, and an empty variable counts as unset.',
      '',
    ),
    '',
    'Options:',
  ]
  const heads = ROWS.map(([, s]) => `  --${s.flag} ${s.arg}`)
  const column = Math.max(...heads.map(h => h.length)) + 2
  ROWS.forEach(([, setting], i) => {
    lines.push(`${(heads[i] as string).padEnd(column)}${setting.env}`)
    const fallback = setting.default === undefined ? `Unset: ${String(setting.unset)}.` : `Default: ${shown(setting.default)}.`
    lines.push(...wrap(`${setting.describe} ${fallback}`, DESCRIBE_INDENT))
  })
  for (const action of ACTIONS) {
    lines.push(`  ${action.short === undefined ? '' : `-${action.short}, `}--${action.flag}`)
    lines.push(...wrap(action.describe, DESCRIBE_INDENT))
  }
  return lines.join('\n') + '\n'
}

/** A default as the help shows it: a list comma-separated, as `String` joins it. */
function shown(value: unknown): string {
  if (Array.isArray(value)) return value.map(shown).join(',')
  return typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value)
}
