// Runs inside the cgroup v2 guest (bench/psi.mjs boots it): measures what memory.pressure (PSI)
// costs to read and how it moves, beside memory.current and memory.events. Prints JSON lines on
// stdout, one per measurement; bench/psi.mjs analyses them on the host.
// Usage (in the guest, as root): node psi-guest.mjs JSON, where JSON is
//   { python, daemon, bigFile, runs, rates: [bytes/s], limit, highFraction, highRates: [bytes/s],
//     holdSeconds, readerSeconds, reads }
// Per repetition: a leak at each rate into memory.max alone (until the OOM kill), a reader into
// memory.max alone, a leak at each highRate with memory.high = highFraction of max (killed by us
// after holdSeconds if the kernel has not), and the reader under the same memory.high.
// Every cgroup is made below /sys/fs/cgroup and removed after its run.
import { spawn } from 'node:child_process'
import { closeSync, mkdirSync, openSync, readSync, rmdirSync, writeFileSync } from 'node:fs'
import { cpus, release } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'

const CGROOT = '/sys/fs/cgroup'
const TICK_MS = 20 // the agent's fast tick: the finest it ever reads
const config = JSON.parse(process.argv[2])
const emit = record => process.stdout.write(`${JSON.stringify(record)}\n`)
const buf = Buffer.alloc(4096)

/** The whole file, read like the agent reads: pread at 0 on a descriptor kept open. */
const pread = fd => buf.toString('latin1', 0, readSync(fd, buf, 0, buf.length, 0))

/** memory.pressure's or /proc/pressure/memory's text: the stall counters, µs. */
export const parsePressure = text => {
  const some = /^some .*total=(\d+)/m.exec(text)
  const full = /^full .*total=(\d+)/m.exec(text)
  if (!some || !full) throw new Error(`not a pressure file: ${JSON.stringify(text)}`)
  return { some: Number(some[1]), full: Number(full[1]) }
}

/** memory.events' counters by name. */
const parseEvents = text =>
  Object.fromEntries(
    text
      .trim()
      .split('\n')
      .map(line => [line.split(' ')[0], Number(line.split(' ')[1])]),
  )

function makeCgroup(name, max, high) {
  const dir = join(CGROOT, name)
  mkdirSync(dir)
  writeFileSync(join(dir, 'memory.swap.max'), '0')
  writeFileSync(join(dir, 'memory.max'), String(max))
  if (high) writeFileSync(join(dir, 'memory.high'), String(high))
  return dir
}

/**
 * µs per read of each file: `n` reads each, in 20 rounds that rotate the order (drift and the
 * first file's JIT warm-up hit all alike); a discarded warm-up round first. Reports the median
 * and the fastest round.
 */
function readCost(n) {
  const dir = makeCgroup('psi-readcost', 64 << 20)
  const files = {
    'memory.current': join(dir, 'memory.current'),
    'memory.pressure': join(dir, 'memory.pressure'),
    '/proc/pressure/memory': '/proc/pressure/memory',
    'memory.events': join(dir, 'memory.events'),
    'memory.stat': join(dir, 'memory.stat'),
  }
  const fds = Object.entries(files).map(([name, path]) => [name, openSync(path, 'r')])
  const rounds = 20
  const per = Math.ceil(n / rounds)
  const perRound = Object.fromEntries(fds.map(([name]) => [name, []]))
  for (let round = -1; round < rounds; round++) {
    for (let k = 0; k < fds.length; k++) {
      const [name, fd] = fds[(k + Math.max(0, round)) % fds.length]
      const t0 = performance.now()
      for (let i = 0; i < per; i++) pread(fd)
      if (round >= 0) perRound[name].push(((performance.now() - t0) * 1000) / per)
    }
  }
  for (const [, fd] of fds) closeSync(fd)
  rmdirSync(dir)
  for (const [name, us] of Object.entries(perRound)) {
    us.sort((x, y) => x - y)
    emit({ kind: 'readcost', file: name, reads: per * rounds, usPerRead: us[Math.floor(us.length / 2)], usPerReadMin: us[0] })
  }
}

/**
 * Runs `argv` in a fresh cgroup and samples memory.current, memory.pressure and memory.events
 * every TICK_MS from its start until it exits (an OOM kill) or `seconds` pass (then it is
 * killed). Samples: [ms since start, current bytes, some µs, full µs, events.high, events.max,
 * events.oom_kill, memory.stat anon bytes, memory.stat file bytes].
 */
async function sampled(run, argv, { max, high, seconds }) {
  // The guest's page cache outlives a cgroup (pages charged to a removed one stay cached), so a
  // reader's second run would find its file cached and charge nothing: start every run cold.
  writeFileSync('/proc/sys/vm/drop_caches', '3')
  const dir = makeCgroup(`psi-${run.name}`, max, high)
  const fd = { current: openSync(join(dir, 'memory.current'), 'r'), pressure: openSync(join(dir, 'memory.pressure'), 'r') }
  fd.events = openSync(join(dir, 'memory.events'), 'r')
  fd.stat = openSync(join(dir, 'memory.stat'), 'r')
  const samples = []
  const sample = t0 => {
    const p = parsePressure(pread(fd.pressure))
    const e = parseEvents(pread(fd.events))
    const stat = pread(fd.stat)
    const anon = Number(/^anon (\d+)/m.exec(stat)[1])
    const file = Number(/^file (\d+)/m.exec(stat)[1])
    const t = Math.round((performance.now() - t0) * 10) / 10
    samples.push([t, Number(pread(fd.current)), p.some, p.full, e.high, e.max, e.oom_kill, anon, file])
  }
  // bash moves itself into the cgroup, then execs the command: every byte of it is charged there.
  const child = spawn('bash', ['-c', 'echo $$ >"$0/cgroup.procs" && exec "$@"', dir, ...argv], { stdio: ['ignore', 'pipe', 'inherit'] })
  let exit
  let readyAt
  child.on('exit', (code, signal) => (exit = { code, signal }))
  const t0 = performance.now()
  // "ready": the interpreter has started; its start-up is a rise the agent judges by other rules.
  child.stdout.setEncoding('utf8').on('data', text => {
    if (readyAt === undefined && text.includes('ready')) readyAt = Math.round((performance.now() - t0) * 10) / 10
  })
  let killedAt
  for (let k = 1; exit === undefined || samples.length === 0; k++) {
    sample(t0)
    if (killedAt === undefined && performance.now() - t0 > seconds * 1000) {
      killedAt = performance.now() - t0
      child.kill('SIGKILL')
    }
    const wait = t0 + k * TICK_MS - performance.now()
    await sleep(Math.max(0, wait))
  }
  sample(t0)
  for (const f of Object.values(fd)) closeSync(f)
  for (let i = 0; i < 50; i++) {
    try {
      rmdirSync(dir)
      break
    } catch {
      await sleep(20) // the kill's exit is seen before the cgroup empties
    }
  }
  emit({ kind: 'run', ...run, max, high: high ?? null, exit, readyAt, stoppedByUs: killedAt !== undefined, samples })
}

const leak = rate => [config.python, config.daemon, '--entries', '40000000', '--rate', String(rate), '--delay', '0.5']
// A healthy program that keeps the page cache full: reads a file larger than its memory again
// and again (a log scanner, a model loaded per request); it holds no growing heap.
const READER = `import sys
print('ready', flush=True)
while True:
    with open(sys.argv[1], 'rb') as f:
        while f.read(1 << 20):
            pass`
const reader = [config.python, '-c', READER, config.bigFile]

emit({ kind: 'guest', kernel: release(), cpus: cpus().length, node: process.version })
readCost(config.reads)
const high = Math.floor(config.limit * config.highFraction)
for (let r = 1; r <= config.runs; r++) {
  for (const rate of config.rates)
    await sampled({ name: `leak-max-${rate}-${r}`, scenario: 'leak', rate, rep: r }, leak(rate), { max: config.limit, seconds: 120 })
  await sampled({ name: `reader-max-${r}`, scenario: 'reader', rep: r }, reader, { max: config.limit, seconds: config.readerSeconds })
  for (const rate of config.highRates)
    await sampled({ name: `leak-high-${rate}-${r}`, scenario: 'leak', rate, rep: r }, leak(rate), {
      max: config.limit,
      high,
      seconds: config.holdSeconds,
    })
  await sampled({ name: `reader-high-${r}`, scenario: 'reader', rep: r }, reader, {
    max: config.limit,
    high,
    seconds: config.readerSeconds,
  })
}
emit({ kind: 'done' })
