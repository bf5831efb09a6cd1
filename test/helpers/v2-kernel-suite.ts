import { extname, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import t from 'tap'

// The test files named in OOMWATCH_V2_KERNEL_FILES, run in this ONE process, for
// test/e2e/v2-kernel.test.ts inside the cgroup v2 guest. Under emulation each node process spends
// some 20 to 45 s loading ts-node and tap and compiling src/ before its first test: one process
// pays that once. Each file's tests follow a marker test named `v2-kernel file <path>`, which
// is how the outer test tells the files' results apart.

const files = (process.env.OOMWATCH_V2_KERNEL_FILES ?? '').split(/\s+/).filter(Boolean)
if (files.length === 0) throw new Error('OOMWATCH_V2_KERNEL_FILES names no test file (space-separated paths, relative to the cwd)')

// Held open while the files load: the root must not end (idle) between two imports, and every
// test a file queues lands behind its marker.
let loaded!: () => void
const allLoaded = new Promise<void>(done => (loaded = done))
t.test('v2-kernel: loading the test files', async t => {
  await allLoaded
  t.pass(`${files.length} files loaded`)
})
for (const file of files) {
  t.test(`v2-kernel file ${file}`, async t => t.pass('the tests below are this file'))
  // Compiled to .js in the guest, as this file is (test/helpers/v2-kernel-build.ts).
  await import(pathToFileURL(resolve(file.replace(/\.ts$/, extname(import.meta.url)))).href)
}
loaded()
