#!/usr/bin/env node
// Checks the shape of src/: the import graph has no cycle, data flows one way (a file never
// imports from a higher layer), the sinks do not import each other, the protocol is a leaf,
// every file has a layer, and no file is over MAX_LINES lines. Plain Node, no dependencies:
// imports are found with regular expressions over the text (tsc has already checked that
// they resolve), which is fast and good enough for code that prettier keeps in one shape.
//
// Usage: node scripts/check-architecture.mjs [root]   (root holds src/; default: the repo)
// Exit 0 with a one-line summary when clean; exit 1 listing every offender as
// `file:line  rule  message`.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The layers, lowest first. A file belongs to the first layer with a matching prefix (a prefix
 * ending in `/` is a folder, otherwise one file). A file may import its own layer or lower ones.
 * Place a new area here on purpose: a file that matches no prefix is an error.
 */
export const LAYERS = [
  { name: 'protocol', prefixes: ['src/protocol/'] },
  { name: 'shared', prefixes: ['src/quantity.ts', 'src/format/', 'src/types.ts', 'src/config.ts', 'src/config/'] },
  { name: 'readers', prefixes: ['src/proc/', 'src/cgroup/', 'src/limit.ts', 'src/self-usage.ts', 'src/exec/'] },
  { name: 'detect', prefixes: ['src/detect/'] },
  { name: 'capture+act', prefixes: ['src/capture/', 'src/act/'] },
  { name: 'watch', prefixes: ['src/watch/'] },
  { name: 'hub', prefixes: ['src/hub.ts', 'src/status.ts'] },
  // Each sink is its own area: they all read the hub and never each other, so any one can go.
  { name: 'sinks', prefixes: ['src/journal/', 'src/log.ts', 'src/stream/', 'src/metrics/', 'src/page/'], isolatedAreas: true },
  { name: 'agent', prefixes: ['src/agent.ts', 'src/agent/'] },
  { name: 'inject', prefixes: ['src/inject/'] },
  { name: 'cli', prefixes: ['src/cli.ts'] },
]

/**
 * Imports allowed between two areas of an isolated layer. The stream server serves the page
 * and may name the page's types (the shape of what it serves); the page's content itself is
 * handed to the server by the agent, so a change to the page never reaches into the server.
 */
export const SINK_EXCEPTIONS = [{ from: 'src/stream/', to: 'src/page/', typeOnly: true }]

/** The folder whose files import nothing outside it (not even packages or Node built-ins). */
export const LEAF = 'src/protocol/'

/** Longest source file allowed, in lines. */
export const MAX_LINES = 350

// `import … from '…'` and `export … from '…'`, the clause limited to the shapes an import can
// take so that a lazy match never runs from one statement into the next.
const CLAUSE = String.raw`(?:[\w$]+\s*,\s*)?(?:\{[^}]*\}|\*(?:\s+as\s+[\w$]+)?|[\w$]+)`
const FROM = new RegExp(String.raw`^[ \t]*(import|export)\s+(type\s+)?(${CLAUSE})\s*from\s*['"]([^'"\n]+)['"]`, 'gm')
const BARE = /^[ \t]*import\s*['"]([^'"\n]+)['"]/gm
const DYNAMIC = /(typeof\s+)?\bimport\(\s*['"]([^'"\n]+)['"]\s*\)/g

/** Every `*.ts` file under `dir`, as paths relative to `root` with `/` separators. */
function listTs(root, dir) {
  const out = []
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`
    if (entry.isDirectory()) out.push(...listTs(root, path))
    else if (entry.isFile() && entry.name.endsWith('.ts')) out.push(path)
  }
  return out
}

/** The 1-based line of character `index` in `text`. */
function lineAt(text, index) {
  let line = 1
  for (let i = text.indexOf('\n'); i !== -1 && i < index; i = text.indexOf('\n', i + 1)) line++
  return line
}

/** True when every specifier of a `{ … }` clause is marked `type` (so the import is erased). */
function allNamedAreTypes(clause) {
  const braces = /^\{([^}]*)\}$/.exec(clause.trim())
  if (!braces) return false
  const names = braces[1]
    .split(',')
    .map(s => s.trim())
    .filter(Boolean)
  return names.length > 0 && names.every(s => s.startsWith('type '))
}

/** The imports of one file: `{ specifier, line, typeOnly }`. */
export function findImports(text) {
  const found = []
  for (const m of text.matchAll(FROM)) {
    found.push({ specifier: m[4], line: lineAt(text, m.index), typeOnly: Boolean(m[2]) || allNamedAreTypes(m[3]) })
  }
  for (const m of text.matchAll(BARE)) found.push({ specifier: m[1], line: lineAt(text, m.index), typeOnly: false })
  for (const m of text.matchAll(DYNAMIC)) found.push({ specifier: m[2], line: lineAt(text, m.index), typeOnly: Boolean(m[1]) })
  return found.sort((a, b) => a.line - b.line)
}

/** The repo-relative `.ts` file a relative specifier names, or undefined when there is none. */
function resolveImport(root, from, specifier) {
  const target = relative(root, resolve(root, dirname(from), specifier))
    .split(sep)
    .join('/')
  const candidates = [target.replace(/\.js$/, '.ts'), target.replace(/\.mjs$/, '.mts'), target, `${target}.ts`, `${target}/index.ts`]
  return candidates.find(c => existsSync(join(root, c)))
}

/** The layer index of a file and its area (the matching prefix), or undefined. */
function placeOf(file) {
  for (const [index, layer] of LAYERS.entries()) {
    const prefix = layer.prefixes.find(p => (p.endsWith('/') ? file.startsWith(p) : file === p))
    if (prefix) return { index, area: prefix }
  }
  return undefined
}

/** One cycle through `start` inside its strongly connected component, as a list of edges. */
function cycleFrom(start, edges, component) {
  const path = []
  const seen = new Set()
  const walk = node => {
    for (const edge of edges.get(node) ?? []) {
      if (!component.has(edge.to)) continue
      path.push(edge)
      if (edge.to === start) return true
      if (!seen.has(edge.to)) {
        seen.add(edge.to)
        if (walk(edge.to)) return true
      }
      path.pop()
    }
    return false
  }
  walk(start)
  return path
}

/** Strongly connected components (Tarjan), each a Set of files; only those that hold a cycle. */
function cyclicComponents(files, edges) {
  const index = new Map()
  const low = new Map()
  const stack = []
  const onStack = new Set()
  const out = []
  let next = 0
  const connect = node => {
    index.set(node, next)
    low.set(node, next++)
    stack.push(node)
    onStack.add(node)
    for (const { to } of edges.get(node) ?? []) {
      if (!index.has(to)) {
        connect(to)
        low.set(node, Math.min(low.get(node), low.get(to)))
      } else if (onStack.has(to)) low.set(node, Math.min(low.get(node), index.get(to)))
    }
    if (low.get(node) !== index.get(node)) return
    const component = new Set()
    let member
    do {
      member = stack.pop()
      onStack.delete(member)
      component.add(member)
    } while (member !== node)
    const selfLoop = (edges.get(node) ?? []).some(e => e.to === node)
    if (component.size > 1 || selfLoop) out.push(component)
  }
  for (const file of files) if (!index.has(file)) connect(file)
  return out
}

/** Checks the tree under `root`; returns `{ problems, files, imports }`. */
export function check(root) {
  const problems = []
  const report = (file, line, rule, message) => problems.push({ file, line, rule, message })
  const files = existsSync(join(root, 'src')) ? listTs(root, 'src').sort() : []
  const edges = new Map()
  let imports = 0

  for (const file of files) {
    const text = readFileSync(join(root, file), 'utf8')
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0)
    if (lines > MAX_LINES) report(file, lines, 'max-lines', `${lines} lines, over ${MAX_LINES}`)
    const place = placeOf(file)
    if (!place) report(file, 1, 'no-layer', 'matches no layer: add its folder to LAYERS in scripts/check-architecture.mjs')
    const out = []
    edges.set(file, out)
    for (const { specifier, line, typeOnly } of findImports(text)) {
      imports++
      const relativeSpecifier = specifier.startsWith('.')
      if (file.startsWith(LEAF) && !(relativeSpecifier && resolveImport(root, file, specifier)?.startsWith(LEAF))) {
        report(file, line, 'leaf', `${LEAF} imports nothing outside itself, but imports '${specifier}'`)
        continue
      }
      if (!relativeSpecifier) continue
      const target = resolveImport(root, file, specifier)
      if (!target) {
        report(file, line, 'unresolved', `'${specifier}' names no file`)
        continue
      }
      if (!target.startsWith('src/') || !target.endsWith('.ts')) continue
      out.push({ to: target, line })
      const to = placeOf(target)
      if (!place || !to) continue
      const [from, into] = [LAYERS[place.index], LAYERS[to.index]]
      if (to.index > place.index) {
        report(file, line, 'upward', `${from.name} imports ${into.name}: ${target}`)
      } else if (to.index === place.index && from.isolatedAreas && to.area !== place.area) {
        const exception = SINK_EXCEPTIONS.find(x => place.area.startsWith(x.from) && to.area.startsWith(x.to))
        if (!exception || (exception.typeOnly && !typeOnly)) {
          const why = exception ? ' (only its types may be imported)' : ''
          report(file, line, 'cross-sink', `the ${place.area} sink imports another sink: ${target}${why}`)
        }
      }
    }
  }

  for (const component of cyclicComponents(files, edges)) {
    const start = [...component].sort()[0]
    const cycle = cycleFrom(start, edges, component)
    const chain = [start, ...cycle.map(e => e.to)].join(' -> ')
    let from = start
    for (const edge of cycle) {
      report(from, edge.line, 'cycle', chain)
      from = edge.to
    }
  }
  return { problems, files: files.length, imports }
}

const self = fileURLToPath(import.meta.url)
if (process.argv[1] && resolve(process.argv[1]) === self) {
  const root = resolve(process.argv[2] ?? join(dirname(self), '..'))
  const { problems, files, imports } = check(root)
  if (problems.length === 0) {
    console.log(`check-architecture: OK, ${files} files, ${imports} imports, ${LAYERS.length} layers, none over ${MAX_LINES} lines`)
  } else {
    for (const p of problems) console.error(`${p.file}:${p.line}  ${p.rule}  ${p.message}`)
    console.error(`check-architecture: ${problems.length} problem(s) in ${files} files`)
    process.exitCode = 1
  }
}
