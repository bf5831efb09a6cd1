import type { ProcStat } from '../types.js'
import { ProcParseError } from './errors.js'

/**
 * Parses the text of `/proc/<pid>/stat`. The command name is everything between the
 * first `(` and the last `)`: a process may name itself anything, `)` and spaces
 * included, but no field after the name can contain `)`.
 *
 * @throws {ProcParseError} when the text is truncated or a used field is not a number.
 */
export function parseStat(text: string): ProcStat {
  const open = text.indexOf('(')
  if (open < 0) throw new ProcParseError('stat', "no '(' before the command name")
  const close = text.lastIndexOf(')')
  if (close < open) throw new ProcParseError('stat', "no ')' after the command name")
  const fields = new StatFields(text.slice(close + 1))
  return {
    pid: toInt(text.slice(0, open).trim(), 'pid'),
    comm: text.slice(open + 1, close),
    state: fields.get(3, 'state'),
    ppid: toInt(fields.get(4, 'ppid'), 'ppid'),
    startTime: toInt(fields.get(22, 'starttime'), 'starttime'),
    rssPages: toInt(fields.get(24, 'rss'), 'rss'),
  }
}

/**
 * The space-separated fields after the command name, addressed by proc(5) number and
 * read in ascending order: a walk to the few fields used, without splitting all 50
 * (the agent parses every watched process's stat each second).
 */
class StatFields {
  private readonly body: string
  private position = 0
  private field = 3

  constructor(afterComm: string) {
    this.body = afterComm.trim()
  }

  /** Field `n` as numbered in proc(5), where pid is 1 and comm is 2; `n` must not decrease. */
  get(n: number, name: string): string {
    for (; this.field < n; this.field++) {
      const space = this.body.indexOf(' ', this.position)
      if (space < 0) throw truncated(n, name)
      this.position = space + 1
    }
    const space = this.body.indexOf(' ', this.position)
    const token = this.body.slice(this.position, space < 0 ? undefined : space)
    // A short read ends the text early, so a missing field means truncated input.
    if (token === '') throw truncated(n, name)
    return token
  }
}

function truncated(n: number, name: string): ProcParseError {
  return new ProcParseError('stat', `truncated: no field ${n} (${name})`)
}

function toInt(token: string, name: string): number {
  // rss is a signed long in the kernel, but a resident set is never negative.
  if (!/^\d+$/.test(token)) throw new ProcParseError('stat', `${name} is not a number: '${token}'`)
  return Number(token)
}
