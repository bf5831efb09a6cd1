import { execFileSync } from 'node:child_process'
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import type { Sink } from '../hub.js'
import { Journal } from '../journal/journal.js'

/** Thrown by `Agent.start` for a setting that cannot work; the CLI exits 2 on it. */
export class AgentConfigError extends Error {
  readonly code = 'AGENT_CONFIG'
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
    return Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim()) || 4096
  } catch {
    /* c8 ignore next */ return 4096 // getconf is part of libc-bin; absent only on exotic images
  }
}
