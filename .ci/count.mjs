// Reads tap's TAP output on stdin, passes it through, and ends with the plain line CI
// reads: "N passed, N failed" over every leaf assertion. A subtest's own summary point
// (the `ok` that follows its indented body) is not counted again; SKIP and TODO are
// counted apart. Line-based on purpose: tap-parser's `flat` mode does not flatten
// TAP 14's indented subtests.
import { createInterface } from 'node:readline'

const counts = { passed: 0, failed: 0, skipped: 0 }
let previousIndent = -1
let yamlIndent = -1
for await (const line of createInterface({ input: process.stdin })) {
  process.stdout.write(`${line}\n`)
  const indent = line.length - line.trimStart().length
  const text = line.trim()
  if (yamlIndent >= 0) {
    if (text === '...' && indent === yamlIndent) yamlIndent = -1
    continue
  }
  if (text === '---') {
    yamlIndent = indent
    continue
  }
  if (text === '') continue
  const point = /^(not )?ok\b/.exec(text)
  if (point && previousIndent <= indent) {
    if (/#\s*(SKIP|TODO)\b/i.test(text)) counts.skipped++
    else if (point[1]) counts.failed++
    else counts.passed++
  }
  previousIndent = indent
}
const { passed, failed, skipped } = counts
process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`)
