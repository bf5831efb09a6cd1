import t from 'tap'
import { scanArgs } from '../../src/config/argv.js'

t.test('flags are paired with their values, by flag name; the last of a repeated flag wins', async t => {
  const scanned = scanArgs(['--port', '1', '--host=localhost', '--port=2', '--match', '-v'])
  t.strictSame(Object.fromEntries(scanned.flags), { port: '2', host: 'localhost' })
  t.strictSame(scanned.problems, [
    '--match: missing value, expected <regexp>; a value starting with "-" is written --match=VALUE (setting --match / OOMWATCH_MATCH)',
  ])
  t.notOk('action' in scanned)
})

t.test('the first action given wins, and problems are still collected beside it', async t => {
  const scanned = scanArgs(['--prot', '1', '--version', '-h'])
  t.equal(scanned.action, 'version')
  t.strictSame(scanned.problems, ['unknown option --prot (see --help)'])
})

t.test('after --, everything is a stray argument', async t => {
  t.strictSame(scanArgs(['--', '--port', '1']).problems, [
    'unexpected argument "--port" (oomwatch takes no arguments; see --help)',
    'unexpected argument "1" (oomwatch takes no arguments; see --help)',
  ])
  t.equal(scanArgs(['--', '--port', '1']).flags.size, 0)
})

t.test('the value of an unknown option is never echoed', async t => {
  const scanned = scanArgs(['--tokn', 'hunter2'])
  t.strictSame(scanned.problems, ['unknown option --tokn (see --help)'])
  t.equal(scanned.flags.size, 0)
})
