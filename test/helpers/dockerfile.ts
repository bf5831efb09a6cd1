import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

// docker/Dockerfile read as instructions, for the tests that check it agrees with the project;
// no Docker engine is needed.

export const REPO = fileURLToPath(new URL('../..', import.meta.url))
export const DOCKERFILE = join(REPO, 'docker/Dockerfile')

export interface Instruction {
  keyword: string
  args: string
  line: number
}
export interface Stage {
  /** The image, with ARGs from before the first FROM expanded. */
  image: string
  /** The --platform flag as written, if any. */
  platform?: string
  name?: string
  instructions: Instruction[]
}

/** Dockerfile instructions with continuation lines joined and comments dropped; ARGs before the first FROM apart. */
export function parseDockerfile(source: string): { globalArgs: Record<string, string>; stages: Stage[] } {
  const instructions: Instruction[] = []
  let pending: Instruction | undefined
  source.split('\n').forEach((raw, index) => {
    const line = raw.trim()
    if (pending === undefined && (line === '' || line.startsWith('#'))) return
    if (pending !== undefined && line.startsWith('#')) return
    const body = line.endsWith('\\') ? line.slice(0, -1).trim() : line
    if (pending === undefined) {
      const [keyword = '', ...rest] = body.split(/\s+/)
      pending = { keyword: keyword.toUpperCase(), args: rest.join(' '), line: index + 1 }
    } else {
      pending.args = `${pending.args} ${body}`.trim()
    }
    if (!line.endsWith('\\')) {
      instructions.push(pending)
      pending = undefined
    }
  })
  const globalArgs: Record<string, string> = {}
  const stages: Stage[] = []
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const platform = /--platform=(\S+)/.exec(ins.args)?.[1]
      const [image = '', as, name] = ins.args.replace(/--platform=\S+\s+/, '').split(/\s+/)
      const expanded = image.replace(/\$\{(\w+)\}/g, (_, arg: string) => globalArgs[arg] ?? '')
      stages.push({
        image: expanded,
        ...(platform && { platform }),
        ...(as?.toUpperCase() === 'AS' && name && { name }),
        instructions: [],
      })
    } else if (stages.length === 0) {
      if (ins.keyword === 'ARG') {
        const [name = '', ...value] = ins.args.split('=')
        globalArgs[name] = value.join('=')
      }
    } else {
      stages.at(-1)!.instructions.push(ins)
    }
  }
  return { globalArgs, stages }
}

/** A COPY's flags and its sources (the last word is the destination). */
export function copyOf(ins: Instruction): { from?: string; sources: string[]; dest: string } {
  const words = ins.args.split(/\s+/)
  const from = words.find(w => w.startsWith('--from='))?.slice('--from='.length)
  const paths = words.filter(w => !w.startsWith('--'))
  return { ...(from && { from }), sources: paths.slice(0, -1), dest: paths.at(-1) ?? '' }
}

/** The ARGs a stage declares, with their defaults ('' when none). */
export function stageArgs(stage: Stage): Record<string, string> {
  const args: Record<string, string> = {}
  for (const ins of stage.instructions.filter(i => i.keyword === 'ARG')) {
    const [name = '', ...value] = ins.args.split('=')
    args[name] = value.join('=')
  }
  return args
}

/** A LABEL instruction's key="value" pairs (double-quoted values, as docker/Dockerfile writes them). */
export function labelsOf(stage: Stage): Record<string, string> {
  const labels: Record<string, string> = {}
  for (const ins of stage.instructions.filter(i => i.keyword === 'LABEL')) {
    for (const [, key = '', value = ''] of ins.args.matchAll(/([\w.-]+)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value
  }
  return labels
}

/** The text of docker/Dockerfile. */
export const readDockerfile = (): string => readFileSync(DOCKERFILE, 'utf8')
