/**
 * A configuration that cannot be used; the CLI exits 2 on it. `problems` lists every one,
 * each naming its flag and variable.
 */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID'
  readonly problems: string[]
  /** The settings that did parse: what a fail-open start (`--fail-open`) serves its probes with. */
  readonly parsed: Readonly<Record<string, unknown>>

  constructor(problems: string[], parsed: Readonly<Record<string, unknown>> = {}) {
    super(
      `invalid configuration (${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}):\n` +
        problems.map(p => `  ${p}`).join('\n'),
    )
    this.name = 'ConfigError'
    this.problems = problems
    this.parsed = parsed
  }
}
