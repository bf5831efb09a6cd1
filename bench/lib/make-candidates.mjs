// Builds patched copies of this checkout's dist/ that try the cost fixes proposed in
// BENCHMARKS.md, so that they can be measured side by side with agent-variants.mjs
// before anyone edits src/. Each copy is DIR/<name>/{dist,package.json,node_modules,.venv}.
// Usage: npm run build && node bench/lib/make-candidates.mjs DIR
// Then:  node bench/lib/agent-variants.mjs base=@ all=@DIR/all/dist/cli.js ...
// A patch whose anchor is no longer in dist/ stops the script: re-derive it from src/.
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from './common.mjs'

const out = process.argv[2]
if (!out) throw new Error('usage: node bench/lib/make-candidates.mjs DIR')

/** Replaces `anchor` in dist/`file` (which must contain it once) by what `replace` makes of it. */
function patch(dir, file, anchor, replace) {
  const path = join(dir, 'dist', file)
  const text = readFileSync(path, 'utf8')
  if (text.split(anchor).length !== 2) throw new Error(`${file}: anchor not found once: ${anchor.slice(0, 80)}`)
  writeFileSync(path, text.replace(anchor, replace(anchor)))
}

const PATCHES = {
  // ProcReader.stat through one descriptor per pid, read with pread at offset 0: no path
  // walk, open or close per read (the descriptor reads ESRCH once the process is gone).
  pread: dir => {
    patch(dir, 'proc/reader.js', "import { readdirSync, readFileSync, readlinkSync } from 'node:fs';", () => "import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, readSync } from 'node:fs';")
    patch(dir, 'proc/reader.js', "        const text = this.text(pid, 'stat');\n        return text === undefined ? undefined : parseStat(text);", () =>
      `        this.statFds ??= new Map();
        this.statBuf ??= Buffer.alloc(1024);
        let fd = this.statFds.get(pid);
        try {
            if (fd === undefined) {
                fd = openSync(this.path(pid, 'stat'), 'r');
                this.statFds.set(pid, fd);
            }
            return parseStat(this.statBuf.toString('latin1', 0, readSync(fd, this.statBuf, 0, this.statBuf.length, 0)));
        }
        catch (err) {
            if (fd !== undefined) {
                closeSync(fd);
                this.statFds.delete(pid);
            }
            if (VANISHED.has(errnoOf(err))) return undefined;
            throw new ProcReadError(this.path(pid, 'stat'), err);
        }`)
  },
  // V8's lite mode (no optimizing compiler, lazy feedback vectors), set before the agent's
  // modules load: the entry sets the flag, then imports the real CLI.
  lite: dir => {
    renameSync(join(dir, 'dist/cli.js'), join(dir, 'dist/cli-main.js'))
    writeFileSync(join(dir, 'dist/cli.js'), "#!/usr/bin/env node\nimport { setFlagsFromString } from 'node:v8'\nsetFlagsFromString('--lite-mode')\nawait import('./cli-main.js')\n")
  },
  // The host's memory from os.totalmem() (the same MemTotal) instead of systeminformation.
  'no-si': dir => {
    patch(dir, 'agent.js', "import si from 'systeminformation';", () => "import { totalmem } from 'node:os';")
    patch(dir, 'agent.js', '(await si.mem()).total', () => 'totalmem()')
  },
  // ws loaded with require(): importing it as ESM goes through its wrapper.mjs and the
  // CJS export lexer for each of its files.
  'ws-require': dir => {
    patch(dir, 'stream/server.js', "import { WebSocket, WebSocketServer } from 'ws';", () => "import { createRequire } from 'node:module';\nconst { WebSocket, WebSocketServer } = createRequire(import.meta.url)('ws');")
  },
}
const CANDIDATES = { ...Object.fromEntries(Object.keys(PATCHES).map(name => [name, [name]])), all: Object.keys(PATCHES) }

mkdirSync(out, { recursive: true })
for (const [name, patches] of Object.entries(CANDIDATES)) {
  const dir = join(out, name)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir)
  cpSync(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true })
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'))
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
  if (existsSync(join(ROOT, '.venv'))) symlinkSync(join(ROOT, '.venv'), join(dir, '.venv'))
  for (const p of patches) PATCHES[p](dir)
  console.log(`${name}: ${join(dir, 'dist/cli.js')}`)
}
