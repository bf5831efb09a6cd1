#!/usr/bin/env -S node --no-opt --no-maglev --no-sparkplug --optimize-for-size
// V8 without its compilers and sized for memory: the agent waits on syscalls, and its JS runs
// as fast as it needs interpreted. Peak RSS at 200 watched processes 12 MiB lower on Node 20,
// 20 MiB on Node 24, CPU within noise (BENCHMARKS.md). --lite-mode saves the same but turns
// WebAssembly off, with a warning on Node 20. The image's `oomwatch` and npm start run this line.
import { readFileSync } from 'node:fs'
import type { Logger } from 'pino'
import { Agent, AgentConfigError, VERSION, type DegradeReason } from './agent.js'
import { runDegraded } from './agent/degraded.js'
import { ConfigError, DEFAULTS, helpText, loadConfig, startWarnings, type Config } from './config.js'
import { createLogger } from './log.js'

const STOP_DEADLINE_MS = 1800

/** Exit codes: 0 ok (and after SIGTERM/SIGINT), 2 bad configuration, 1 anything unexpected. */
async function main(): Promise<number | undefined> {
  if (process.argv[2] === 'inject') {
    // Loaded only for this command: the agent itself never holds the YAML library.
    const { runInject } = await import('./inject/command.js')
    const io = {
      readStdin: () => readFileSync(0, 'utf8'),
      stdout: (text: string) => process.stdout.write(text),
      stderr: (text: string) => process.stderr.write(text),
    }
    return runInject(process.argv.slice(3), VERSION, io)
  }
  let loaded
  try {
    loaded = loadConfig(process.argv.slice(2), process.env)
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    process.stderr.write(`oomwatch: ${error.message}\nRun oomwatch --help for every setting.\n`)
    return error.parsed.failOpen === true ? degrade('config', error.problems.join('; '), error.parsed) : 2
  }
  if ('help' in loaded) return (void process.stdout.write(helpText()), 0)
  if ('version' in loaded) return (void process.stdout.write(`${VERSION}\n`), 0)
  const logger = createLogger(loaded.logLevel)
  for (const warning of startWarnings(process.argv.slice(2))) logger.warn(warning)
  let agent: Agent
  try {
    agent = await Agent.start(loaded, logger)
  } catch (error) {
    if (!(error instanceof AgentConfigError)) throw error
    process.stderr.write(`oomwatch: ${error.message}\n`)
    return loaded.failOpen ? degrade(error.reason, error.message, loaded) : 2
  }
  stopOnSignals(logger, () => agent.stop())
  return undefined
}

/** `--fail-open`: a start that could not finish serves its probes, degraded, instead of exiting 2. */
async function degrade(reason: DegradeReason, message: string, parsed: Partial<Config>): Promise<undefined> {
  const logger = createLogger(parsed.logLevel ?? DEFAULTS.logLevel)
  const port = parsed.metricsPort ?? parsed.port ?? DEFAULTS.port
  const degraded = await runDegraded({
    reason,
    message,
    version: VERSION,
    host: parsed.host ?? DEFAULTS.host,
    port,
    logger,
    // A setting is fixed by a restart with another one, but a token file can appear (a Secret created after the pod).
    recovered: reason === 'config' || reason === 'token' ? () => configLoads() : undefined,
    onRecovered: () => {
      logger.flush()
      process.exit(0)
    },
  })
  stopOnSignals(logger, () => degraded.stop())
  return undefined
}

function configLoads(): boolean {
  try {
    loadConfig(process.argv.slice(2), process.env)
    return true
  } catch {
    return false
  }
}

function stopOnSignals(logger: Logger, stopAll: () => Promise<void>): void {
  const stop = (signal: NodeJS.Signals) => {
    logger.info({ signal }, `stopping on ${signal}`)
    // Kubernetes waits terminationGracePeriodSeconds, but a sidecar should not make it wait:
    // every part stops at once (py-spy is killed, not awaited); this is only a backstop.
    setTimeout(() => {
      logger.warn('stop took over 1.8 s; exiting anyway')
      logger.flush()
      process.exit(0)
    }, STOP_DEADLINE_MS).unref()
    void stopAll().then(() => process.exit(0))
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}

main().then(
  code => {
    if (code !== undefined) process.exitCode = code
  },
  (error: Error) => {
    process.stderr.write(`oomwatch: unexpected failure: ${error.stack ?? error.message}\n`)
    process.exitCode = 1
  },
)
