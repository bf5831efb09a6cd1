import { Writable } from 'node:stream'
import { Agent } from '../../src/agent.js'
import { loadConfig, type Config } from '../../src/config.js'
import { createLogger } from '../../src/log.js'

/** An agent running in the test process, with its JSON log lines kept for assertions. */
export interface TestAgent {
  agent: Agent
  port: number
  logs: Record<string, unknown>[]
  stop(): Promise<void>
}

/** Starts the agent with its defaults (port 0), plus `env` as OOMWATCH_* variables would set them. */
export async function startAgent(env: Record<string, string> = {}): Promise<TestAgent> {
  const config = loadConfig([], { OOMWATCH_PORT: '0', ...env }) as Config
  const logs: Record<string, unknown>[] = []
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
  const agent = await Agent.start(config, createLogger(config.logLevel, sink))
  return { agent, port: agent.port, logs, stop: () => agent.stop() }
}
