import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { loadPageAssets, PageAssetsError } from '../../src/page/assets.js'

t.test('the built page, keyed by URL path: / is index.html', async t => {
  const dir = t.testdir({
    'index.html': '<!doctype html>',
    'page.css': 'body {}',
    page: { app: { 'main.js': 'export {}' } },
    'notes.txt': 'not served',
  })
  const assets = loadPageAssets(dir)
  t.same([...assets.keys()].sort(), ['/', '/page.css', '/page/app/main.js'], 'html, css and js only; nothing else in the directory')
  t.equal(assets.get('/')?.contentType, 'text/html; charset=utf-8')
  t.equal(assets.get('/')?.body.toString(), '<!doctype html>')
  t.equal(assets.get('/page.css')?.contentType, 'text/css; charset=utf-8')
  t.equal(assets.get('/page/app/main.js')?.contentType, 'text/javascript; charset=utf-8')
})

t.test('a page that was not built: an error that says how to build it', async t => {
  const dir = t.testdir({ 'page.css': '' })
  t.throws(() => loadPageAssets(dir), { code: 'PAGE_NOT_BUILT', message: /no index\.html in .*npm run build/ })
  const missing = join(dir, 'absent')
  t.throws(() => loadPageAssets(missing), new PageAssetsError(`the live page is not built in ${missing}: run npm run build`))
  mkdirSync(join(dir, 'sub'))
  writeFileSync(join(dir, 'sub', 'index.html'), '')
  t.throws(() => loadPageAssets(dir), { code: 'PAGE_NOT_BUILT' }, 'an index.html below the top is not the page')
})

t.test('the default: the repository build (npm test builds it first)', async t => {
  const assets = loadPageAssets()
  t.match(assets.get('/')?.body.toString(), /<script type="module" src="\/page\/app\/main\.js"><\/script>/)
  for (const path of ['/page/app/main.js', '/page.css', '/format/bytes.js']) {
    t.ok(assets.has(path), `${path}: the script, its style, the shared formatters`)
  }
})
