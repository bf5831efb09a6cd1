// Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by file/package.
// Usage: node bench/lib/cpuprofile-top.mjs FILE.cpuprofile [top=25] [skip-seconds=0]
// skip-seconds leaves out the start (module loading, first scan) to see the steady state.
import { readFileSync } from 'node:fs'

const [file, topArg] = process.argv.slice(2)
const top = Number(topArg ?? 25)
const skipUs = Number(process.argv[4] ?? 0) * 1e6
const profile = JSON.parse(readFileSync(file, 'utf8'))
const byId = new Map(profile.nodes.map(node => [node.id, node]))
const self = new Map()
let elapsed = 0
for (let i = 0; i < profile.samples.length; i++) {
  const dt = profile.timeDeltas[i] ?? 0
  elapsed += dt
  if (elapsed < skipUs) continue
  self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + dt)
}
const total = [...self.values()].reduce((a, b) => a + b, 0)
const fnTotals = new Map()
const fileTotals = new Map()
for (const [id, us] of self) {
  const { callFrame } = byId.get(id)
  const where =
    callFrame.url
      .replace(/^file:\/\//, '')
      .replace(/.*\/node_modules\/([^/]+)\/.*/, 'node_modules/$1')
      .replace(/.*\/dist\//, 'dist/') || '(native/idle)'
  const fn = `${callFrame.functionName || '(anonymous)'} ${where}${callFrame.url ? `:${callFrame.lineNumber + 1}` : ''}`
  fnTotals.set(fn, (fnTotals.get(fn) ?? 0) + us)
  fileTotals.set(where, (fileTotals.get(where) ?? 0) + us)
}
const busy = total - (fnTotals.get('(idle) (native/idle)') ?? 0)
const show = (title, map) => {
  console.log(`\n${title} (ms; % of non-idle ${(busy / 1000).toFixed(0)} ms over ${(total / 1e6).toFixed(1)} s)`)
  for (const [name, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(`${(us / 1000).toFixed(1).padStart(9)}  ${((us / busy) * 100).toFixed(1).padStart(5)}%  ${name}`)
}
show('self time by function', fnTotals)
show('self time by file', fileTotals)
