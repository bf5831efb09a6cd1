import { createServer } from 'node:net'
import t from 'tap'
import { runCli } from './helpers/cli.js'

t.test('a bad value exits 2 and names the setting, the value and what is accepted', async t => {
  const { code, stderr, stdout } = await runCli(['--trigger-fraction', '1.5'], { OOMWATCH_PORT: 'abc' }).done
  t.equal(code, 2)
  t.match(stderr, /OOMWATCH_PORT="abc"/)
  t.match(stderr, /0 to 65535/)
  t.match(stderr, /--trigger-fraction "1\.5"/)
  t.notMatch(stderr, /\n\s+at /, 'no stack trace')
  t.equal(stdout, '')
})

t.test('an unknown flag exits 2', async t => {
  const { code, stderr } = await runCli(['--prot', '80']).done
  t.equal(code, 2)
  t.match(stderr, /--prot/)
})

t.test('a configured py-spy that is not there exits 2 and says how to fix it', async t => {
  const { code, stderr } = await runCli([], { OOMWATCH_PORT: '0', OOMWATCH_PYSPY: '/nonexistent/py-spy' }).done
  t.equal(code, 2)
  t.match(stderr, /OOMWATCH_PYSPY=\/nonexistent\/py-spy/)
  t.match(stderr, /pip install py-spy/)
})

t.test('a port in use exits 2 and names the setting', async t => {
  const busy = createServer()
  await new Promise<void>(resolve => busy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => busy.close())
  const port = (busy.address() as { port: number }).port
  const { code, stderr } = await runCli([], { OOMWATCH_PORT: String(port) }).done
  t.equal(code, 2)
  t.match(stderr, /EADDRINUSE/)
  t.match(stderr, /--port \/ OOMWATCH_PORT/)
})

t.test('--help and --version exit 0', async t => {
  const help = await runCli(['--help']).done
  t.equal(help.code, 0)
  t.match(help.stdout, /OOMWATCH_MEMORY_LIMIT/)
  const version = await runCli(['--version']).done
  t.equal(version.code, 0)
  t.match(version.stdout, /^\d+\.\d+\.\d+\n$/)
})

t.test('it logs JSON with string levels, and SIGTERM stops it with exit 0', async t => {
  const run = runCli(['--port', '0'])
  const listening = await run.line(line => typeof line.port === 'number')
  t.equal(listening.level, 'info', 'the level is a string label')
  t.match(listening.msg, /listening on ws:\/\/127\.0\.0\.1:\d+\//)
  t.ok(listening.time && !Number.isNaN(Date.parse(String(listening.time))), 'time is ISO 8601')
  run.child.kill('SIGTERM')
  const { code } = await run.done
  t.equal(code, 0)
})
