// Reads TAP on stdin, passes it through, and ends with the plain line CI reads:
// "N passed, N failed" over every assertion (subtests flattened), skips counted apart.
import { Parser } from 'tap-parser'

const parser = new Parser({ flat: true }, results => {
  const skipped = results.skip + results.todo
  const failed = results.fail
  const passed = results.pass - skipped
  process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`)
})
process.stdin.on('data', chunk => process.stdout.write(chunk))
process.stdin.pipe(parser)
