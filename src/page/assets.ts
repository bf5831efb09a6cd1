import { readdirSync, readFileSync } from 'node:fs'
import { extname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

/** One file of the live page, as the server sends it. */
export interface PageAsset {
  contentType: string
  body: Buffer
}

/**
 * Where `npm run build` puts the page: `<repo>/dist/page/web/`. Resolved from this module,
 * which runs either as dist/page/assets.js or (tests under tap's TypeScript loader) as
 * src/page/assets.ts: from both, `../../dist/page/web/` is the same directory, the one the
 * build (and `npm test`'s pretest) wrote.
 */
export const PAGE_DIR = fileURLToPath(new URL('../../dist/page/web/', import.meta.url))

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
}

/** Thrown when the page was not built; the message says how to build it. */
export class PageAssetsError extends Error {
  readonly code = 'PAGE_NOT_BUILT'
}

/**
 * Reads the built live page into memory, keyed by URL path: `/` is index.html, every other
 * file its path under `dir` (`/page.css`, `/page/app/main.js`, `/format/bytes.js`, ...),
 * so the modules' relative imports resolve in the browser as on disk. Read once at start:
 * a few tens of KiB, served without touching the disk again.
 *
 * @param dir The built page's directory; default PAGE_DIR.
 * @throws PageAssetsError when `dir` holds no index.html (run `npm run build`).
 */
export function loadPageAssets(dir: string = PAGE_DIR): ReadonlyMap<string, PageAsset> {
  const assets = new Map<string, PageAsset>()
  let files: string[]
  try {
    files = filesUnder(dir)
  } catch (error) {
    throw new PageAssetsError(`the live page is not built in ${dir}: run npm run build`, { cause: error })
  }
  for (const file of files.sort()) {
    const contentType = CONTENT_TYPES[extname(file)]
    if (contentType === undefined) continue
    const path = `/${relative(dir, file).split(sep).join('/')}`
    assets.set(path === '/index.html' ? '/' : path, { contentType, body: readFileSync(file) })
  }
  if (!assets.has('/')) throw new PageAssetsError(`the live page is not built: no index.html in ${dir}: run npm run build`)
  return assets
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(entry => {
    const path = join(dir, entry.name)
    return entry.isDirectory() ? filesUnder(path) : entry.isFile() ? [path] : []
  })
}
