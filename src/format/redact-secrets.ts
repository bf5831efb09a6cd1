/**
 * Secrets taken out of command lines before they leave the core (the journal, the log and
 * the stream all get the redacted copy). Pure and free of Node APIs.
 *
 * A key is split into words at `-`, `_`, `.` and case changes (`DB_PASSWORD` is `DB`,
 * `PASSWORD`; `apiKey` is `api`, `Key`); it names a secret when one of its words matches the
 * pattern whole, ignoring case. Whole words keep `--keyboard-layout`, `--max-keys 5`,
 * `--tokenizer bert` and `--bypass-cache` readable while `--api-key`, `AWS_SECRET_ACCESS_KEY`
 * and `PGPASSWORD` are hidden.
 */

/** What a hidden value is replaced by. */
export const REDACTED = '***'

/** The setting's value that turns redaction off. */
export const REDACT_OFF = 'off'

/**
 * The default pattern of secret key words: words ending in secret, token or key (`apikey`),
 * password spellings (`PGPASSWORD`), and words starting with cred or auth (`credentials`,
 * `authorization`). Short enough for one line of `--help`. To extend it, append
 * alternatives: `OOMWATCH_REDACT='<this>|session|cookie'`.
 */
export const DEFAULT_REDACT = String.raw`\w*(secret|token|key)|\w*pass(wd|word|phrase)|pass|pwd|cred\w*|auth\w*`

/** Hides secrets in a command line and in single strings; the identity when redaction is off. */
export interface Redactor {
  /** The command line with secret values replaced by {@link REDACTED}. */
  cmdline(args: readonly string[]): string[]
  /** One string (an executable path, a process title): URL passwords and embedded `key=value` pairs. */
  text(value: string): string
}

/** `--password=x`, `-pass=x`, `DB_PASSWORD=x`, `db.password=x`: a whole argument that is one pair. */
const WHOLE_PAIR = /^(-{0,2}([A-Za-z_][\w.-]*)=)([\s\S]+)$/
/** `--password`, `-pass`: an option whose value is the next argument. */
const OPTION = /^--?([A-Za-z][\w.-]*)$/
/** `password=x` inside a longer text: a DSN (`host=h password=x`), a query string (`?token=x&a=1`), a title. */
const EMBEDDED_PAIR = /(^|[\s?&;,])(-{0,2}([A-Za-z_][\w.-]*)=)([^\s&;,]+)/g
/** `scheme://user:password@host`; the password runs to the authority's last `@`, as a URL parser reads it. */
const URL_PASSWORD = /\b([A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s/?#:@]*):([^\s/?#]+)@/g
/** Word boundaries of a key: separators, lower-to-upper, and the end of an acronym (`PGPassword`). */
const WORD_BREAK = /[-_.]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])/

/**
 * Checks a pattern as the setting gives it: {@link REDACT_OFF}, or a JavaScript regular
 * expression of secret key words. Returns why it is refused, else undefined.
 */
export function redactPatternProblem(pattern: string): string | undefined {
  if (pattern === REDACT_OFF) return undefined
  if (pattern === '') return `expected a regular expression of secret key words, or ${REDACT_OFF}`
  try {
    new RegExp(pattern)
    return undefined
  } catch (err) {
    return `expected a regular expression of secret key words, or ${REDACT_OFF} (${(err as Error).message})`
  }
}

/** The redactor of a pattern checked by {@link redactPatternProblem}; {@link REDACT_OFF} changes nothing. */
export function secretRedactor(pattern: string): Redactor {
  if (pattern === REDACT_OFF) return { cmdline: args => [...args], text: value => value }
  const word = new RegExp(`^(?:${pattern})$`, 'i')
  const isSecret = (key: string) => key.split(WORD_BREAK).some(part => part !== '' && word.test(part))
  const text = (value: string) =>
    value
      .replace(URL_PASSWORD, (_all, before: string) => `${before}:${REDACTED}@`)
      .replace(EMBEDDED_PAIR, (all, lead: string, head: string, key: string) => (isSecret(key) ? `${lead}${head}${REDACTED}` : all))
  return {
    text,
    cmdline(args) {
      let valueNext = false
      return args.map(arg => {
        // Options never start with a dash as values: argparse refuses `--password -x`, so a dash means the value was left out.
        if (valueNext && !arg.startsWith('-')) {
          valueNext = false
          return REDACTED
        }
        valueNext = false
        const pair = WHOLE_PAIR.exec(arg)
        if (pair && isSecret(pair[2]!)) return `${pair[1]!}${REDACTED}`
        const option = OPTION.exec(arg)
        if (option && isSecret(option[1]!)) {
          valueNext = true
          return arg
        }
        return text(arg)
      })
    },
  }
}
