import { ConfigError, loadConfig, type Config } from '../../src/config.js'

/** Environment variables as the configuration reader takes them. */
export type Env = Record<string, string | undefined>

/** The configuration `argv` and `env` give; throws when they ask for help or the version instead. */
export function config(argv: string[], env: Env = {}): Config {
  const result = loadConfig(argv, env)
  if ('help' in result || 'version' in result) throw new Error('expected a configuration')
  return result
}

/** The problems `argv` and `env` are refused for; throws when they are accepted. */
export function problemsOf(argv: string[], env: Env = {}): string[] {
  try {
    loadConfig(argv, env)
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify({ argv, env })}`)
}
