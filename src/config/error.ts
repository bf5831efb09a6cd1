/**
 * A configuration that cannot be used; the CLI exits 2 on it. `problems` lists every one,
 * each naming its flag and variable.
 */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID'
  readonly problems: string[]

  constructor(problems: string[]) {
    super(
      `invalid configuration (${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}):\n` +
        problems.map(p => `  ${p}`).join('\n'),
    )
    this.name = 'ConfigError'
    this.problems = problems
  }
}
