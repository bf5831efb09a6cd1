import { execFileSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import type { Logger } from 'pino'
import { isLoopback, type Config } from '../config.js'
import type { Sink } from '../hub.js'
import type { Degradations, DegradeReason } from './degradations.js'
import { childEnvironment } from '../exec/child-env.js'
import { Journal } from '../journal/journal.js'
import { fixedToken, TokenFile, type TokenSource } from '../stream/token-source.js'

/** Thrown by `Agent.start` for a setting that cannot work; the CLI exits 2 on it, or (`--fail-open`) serves its probes degraded. */
export class AgentConfigError extends Error {
  readonly code = 'AGENT_CONFIG'

  constructor(
    message: string,
    readonly reason: DegradeReason,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

/** Memory kept for fast replays; the journal on disk holds more. */
const REPLAY_MEMORY_BYTES = 4 << 20

/** Every action is off unless the user enabled it. */
export function actionsEnabled(config: Config): boolean {
  return config.clampNofile !== undefined || config.onRunaway !== 'none'
}

/** Opens the journal, or says which setting to change. */
export function openJournal(config: Config): Journal {
  try {
    return new Journal({
      ...(config.journalDir !== undefined && { dir: config.journalDir }),
      maxBytes: config.journalMaxBytes,
      memoryBytes: REPLAY_MEMORY_BYTES,
    })
  } catch (error) {
    throw new AgentConfigError(
      `cannot use the journal directory ${config.journalDir} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): ` +
        'mount a writable volume there (an emptyDir), or unset --journal-dir / OOMWATCH_JOURNAL_DIR',
      'journal',
      { cause: error },
    )
  }
}

/** The journal; in a fail-open start, one in memory when the directory cannot be used (said in `degradations`). */
export function openJournalOrMemory(config: Config, degradations: Degradations): Journal {
  try {
    return openJournal(config)
  } catch (error) {
    if (!config.failOpen || !(error instanceof AgentConfigError)) throw error
    degradations.add('journal', `${error.message}; events are kept in memory meanwhile, and a restart will not replay them`)
    return openJournal({ ...config, journalDir: undefined })
  }
}

/** A listen that failed, as the setting to change: for `promise.catch`. */
export function cannotListen(host: string, port: number, setting: string): (error: NodeJS.ErrnoException) => never {
  return error => {
    throw new AgentConfigError(
      `cannot listen on ${host}:${port} (${error.code ?? error.message}): choose another ${setting} or --host / OOMWATCH_HOST`,
      'listen',
      { cause: error },
    )
  }
}

/** Nothing can be watched without listing the processes: a procfs that cannot be read ends the start. */
export function checkProcReadable(procRoot: string): void {
  try {
    readdirSync(procRoot)
  } catch (error) {
    throw new AgentConfigError(
      `cannot list processes in ${procRoot} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): ` +
        'oomwatch reads /proc to find Python processes; run it where /proc is mounted and readable',
      'proc-unreadable',
      { cause: error },
    )
  }
}

/** The journal as a sink: a failed write is logged once, and the stream and log go on. */
export function journalSink(journal: Journal, logger: Logger): Sink {
  let failed = false
  return event => {
    try {
      journal.append(event)
    } catch (error) {
      if (!failed)
        logger.error({ err: error }, 'the journal cannot be written; events still stream and log, but a restart will not replay them')
      failed = true
    }
  }
}

/** RSS in /proc/<pid>/stat is in pages; 4 KiB unless the kernel says otherwise (arm64 may use 64 KiB). */
export function pageSize(): number {
  try {
    return Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8', env: childEnvironment() }).trim()) || 4096
  } catch {
    /* c8 ignore next */ return 4096 // getconf is part of libc-bin; absent only on exotic images
  }
}

/**
 * The token the stream checks: fixed, or read from the token file at each check (a rotated
 * Secret takes effect at the next connection). The configuration has checked the file once
 * already; one that went bad since is a configuration error too.
 */
export function streamToken(config: Config, logger: Logger): TokenSource | undefined {
  if (config.tokenFile !== undefined) {
    const file = TokenFile.open({ path: config.tokenFile, beyondLoopback: !isLoopback(config.host), logger })
    if ('reason' in file) throw new AgentConfigError(`--token-file / OOMWATCH_TOKEN_FILE "${config.tokenFile}": ${file.reason}`, 'token')
    return file
  }
  return config.token === undefined ? undefined : fixedToken(config.token)
}
