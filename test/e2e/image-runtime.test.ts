import { execFileSync, spawn } from 'node:child_process'
import { copyFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { q, readOnlyRoot } from '../helpers/pod.js'

// Replays docker/Dockerfile's runtime stage's file set (the build output, production
// dependencies only, package.json) and runs it on this Node with a read-only root: on
// CI's second pass that Node is the image's. test/unit/dockerfile.test.ts checks the
// Dockerfile and the project agree.
const REPO = fileURLToPath(new URL('../..', import.meta.url))
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> }
const binName = Object.keys(pkg.bin)[0]!
const binPath = pkg.bin[binName]!

t.test("the runtime stage's files run on this Node with a read-only root", async t => {
  if (process.getuid?.() !== 0)
    throw new Error('this test needs root: it runs the agent in a private mount namespace with a read-only root')
  const image = t.testdir()
  // The build stage: npm run build, into the image tree.
  execFileSync(
    process.execPath,
    [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', join(REPO, 'tsconfig.build.json'), '--outDir', join(image, 'dist')],
    { stdio: 'pipe' },
  )
  // and the live page (package.json's build script): its module for the browser, its HTML and CSS.
  const web = join(image, 'dist/page/web')
  execFileSync(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', join(REPO, 'tsconfig.page.json'), '--outDir', web], {
    stdio: 'pipe',
  })
  for (const file of ['index.html', 'page.css']) copyFileSync(join(REPO, 'src/page', file), join(web, file))
  // The deps stage: production dependencies only.
  copyFileSync(join(REPO, 'package.json'), join(image, 'package.json'))
  copyFileSync(join(REPO, 'package-lock.json'), join(image, 'package-lock.json'))
  execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], {
    cwd: image,
    stdio: 'pipe',
  })
  const cli = join(image, binPath)

  // The image's environment, none of the test runner's: its spawn hook puts a loader that
  // writes under .tap in every child's NODE_OPTIONS, so the shell unsets it.
  const inReadOnlyRoot = (command: string[]) => [
    'unshare',
    '--mount',
    '--',
    'sh',
    '-c',
    `${readOnlyRoot([])}\nunset NODE_OPTIONS\nexec ${command.map(q).join(' ')}`,
  ]
  const env = { PATH: process.env.PATH, NODE_ENV: 'production', OOMWATCH_PYSPY: join(REPO, '.venv/bin/py-spy') }
  const [bin, ...args] = inReadOnlyRoot([process.execPath, cli, '--version'])
  t.equal(execFileSync(bin!, args, { encoding: 'utf8', env }).trim(), pkg.version, `${binName} --version prints the package version`)

  const [agentBin, ...agentArgs] = inReadOnlyRoot([process.execPath, cli])
  const child = spawn(agentBin!, agentArgs, {
    env: { ...env, OOMWATCH_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => void child.kill('SIGKILL'))
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', chunk => (stderr += chunk))
  const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
    child.stdout.on('data', chunk => {
      stdout += chunk
      const line = stdout.split('\n').find(l => l.includes('"port"') && l.includes('listening'))
      if (line) resolve(JSON.parse(line) as Record<string, unknown>)
    })
    child.on('close', code => reject(new Error(`the agent exited (${code}) before listening; stdout: ${stdout}; stderr: ${stderr}`)))
  })
  const live = await fetch(`http://127.0.0.1:${listening.port as number}/livez`)
  t.equal(live.status, 200, 'the agent starts and answers /livez')
  const page = await fetch(`http://127.0.0.1:${listening.port as number}/page/app/main.js`)
  t.equal(page.status, 200, 'and serves the live page from its own files')
  const exited = new Promise<number | null>(resolve => child.on('close', code => resolve(code)))
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'and stops cleanly on SIGTERM')
  t.notMatch(stdout + stderr, /EROFS|read-only file system/i, 'without trying to write anywhere')
})
