/**
 * The environment a child of the agent (py-spy, prlimit, getconf) runs with: the agent's own
 * without its settings. `OOMWATCH_TOKEN` is the secret there; the others are left out too, so
 * that a setting added later with a secret in it cannot leak by being forgotten here. No
 * child needs them: each gets what it needs as arguments.
 */
export function childEnvironment(extra: Readonly<Record<string, string>> = {}, from: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(from)) if (!name.startsWith('OOMWATCH_')) env[name] = value
  return { ...env, ...extra }
}
