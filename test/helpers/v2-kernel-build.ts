import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import ts from 'typescript'

/*
 * The kernel tests as JavaScript, for the cgroup v2 guest (test/e2e/v2-kernel.test.ts): under
 * emulation, ts-node and its compile of src/ cost some 25 s per node process there, here
 * about one. Each .ts file is transpiled alone (ts-node's transpile-only does the same) with
 * an inline source map, to the same path under `dir`; what the tests read beside their code
 * (fixtures, dist/, .venv/, node_modules/, package.json) is symlinked.
 */

/** What a compiled file's relative paths may reach, symlinked as it is. */
const LINKED = ['package.json', 'node_modules', 'dist', '.venv']

/** Every .ts file below `rel` (a file or a folder of `repo`), relative to `repo`. */
function tsFiles(repo: string, rel: string): string[] {
  if (!statSync(join(repo, rel)).isDirectory()) return [rel]
  return readdirSync(join(repo, rel), { recursive: true, encoding: 'utf8' })
    .filter(name => name.endsWith('.ts') && !name.endsWith('.d.ts'))
    .map(name => join(rel, name))
}

/** `rel` (a folder) in `dir`: its entries symlinked, but folders holding a compiled file made again. */
function mirror(repo: string, dir: string, rel: string, compiled: Set<string>): void {
  mkdirSync(join(dir, rel), { recursive: true })
  for (const entry of readdirSync(join(repo, rel), { withFileTypes: true })) {
    const path = join(rel, entry.name)
    if (compiled.has(path)) continue
    if (entry.isDirectory() && [...compiled].some(file => file.startsWith(`${path}/`))) mirror(repo, dir, path, compiled)
    else symlinkSync(join(repo, path), join(dir, path))
  }
}

/**
 * Transpiles `sources` (files or folders of .ts, relative to `repo`) into `dir`, and links what
 * they read; `fixtures` (folders) are mirrored with their own .ts files compiled. Returns `dir`'s remover.
 */
export function buildJs(repo: string, dir: string, sources: string[], fixtures: string[]): () => void {
  rmSync(dir, { recursive: true, force: true })
  const compiled = new Set([...sources, ...fixtures].flatMap(rel => tsFiles(repo, rel)))
  const tsconfig = JSON.parse(readFileSync(join(repo, 'tsconfig.json'), 'utf8')) as { compilerOptions: object }
  const { options, errors } = ts.convertCompilerOptionsFromJson({ ...tsconfig.compilerOptions, inlineSourceMap: true }, repo)
  if (errors.length > 0) throw new Error(`tsconfig.json: ${ts.flattenDiagnosticMessageText(errors[0]?.messageText, '\n')}`)
  // ES modules, as the package is ("type": "module"): alone, a file under nodenext would come out CommonJS.
  Object.assign(options, { module: ts.ModuleKind.ES2022, moduleResolution: ts.ModuleResolutionKind.Bundler, sourceMap: false })
  for (const rel of compiled) {
    const fileName = join(repo, rel)
    const out = ts.transpileModule(readFileSync(fileName, 'utf8'), { compilerOptions: options, fileName })
    mkdirSync(dirname(join(dir, rel)), { recursive: true })
    writeFileSync(join(dir, rel.replace(/\.ts$/, '.js')), out.outputText)
  }
  for (const rel of fixtures) mirror(repo, dir, rel, compiled)
  for (const rel of LINKED) symlinkSync(join(repo, rel), join(dir, rel))
  return () => rmSync(dir, { recursive: true, force: true })
}
