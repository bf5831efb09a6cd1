// The race's cells: how fast the daemon leaks, whether it double-forks, how long it lives
// normally first, and the memory limit of its cgroup. Shared by race.mjs and race-pod.mjs.
//
// A cell is written RATE:MODE:DELAY:LIMIT, e.g. `40M:plain:1:256Mi` or `0:daemon:0:1Gi`:
//   RATE   bytes per second, with an optional decimal k/M/G suffix; 0 = as fast as CPython goes
//   MODE   plain (run directly) or daemon (double-forked: --daemonize)
//   DELAY  seconds of normal life before the leak; 0 = from the first instant
//   LIMIT  the cgroup's memory limit: bytes, or with a binary Ki/Mi/Gi suffix
// `--cells` takes a comma-separated list of cells and of these presets:
//   paced          the first six: 40M, 200M and 0 (unthrottled), plain and daemon, delay 1, 256Mi
//   first-instant  unthrottled from the first instant, plain and daemon, at 256Mi and at 1Gi
//   default        paced, then first-instant
// Without `--cells`, `--rates`, `--modes`, `--delays` (or `--delay`) and `--limits`, when
// any is given, make the grid of every combination (defaults 40M,200M,0 / plain,daemon /
// 1 / 256Mi); with none of them the cells are `default`.
import { option } from './common.mjs'

const MiB = 1 << 20
const DECIMAL = { '': 1, k: 1e3, K: 1e3, M: 1e6, G: 1e9 }
const BINARY = { '': 1, Ki: 1 << 10, Mi: 1 << 20, Gi: 1 << 30 }

export const PRESETS = {
  paced: ['40M:plain:1:256Mi', '40M:daemon:1:256Mi', '200M:plain:1:256Mi', '200M:daemon:1:256Mi', '0:plain:1:256Mi', '0:daemon:1:256Mi'],
  'first-instant': ['0:plain:0:256Mi', '0:daemon:0:256Mi', '0:plain:0:1Gi', '0:daemon:0:1Gi'],
}
PRESETS.default = [...PRESETS.paced, ...PRESETS['first-instant']]

function quantity(text, units, what) {
  const match = /^(\d+(?:\.\d+)?)([A-Za-z]*)$/.exec(String(text).trim())
  if (!match || !(match[2] in units))
    throw new Error(
      `bad ${what} '${text}': a number${Object.keys(units).filter(Boolean).length ? ` with an optional ${Object.keys(units).filter(Boolean).join('/')} suffix` : ''}`,
    )
  return Math.round(Number(match[1]) * units[match[2]])
}

export const parseRate = text => quantity(text, DECIMAL, 'rate')
export const parseLimit = text => quantity(text, BINARY, 'limit')

/** One cell from `RATE:MODE:DELAY:LIMIT`. */
export function parseCell(spec) {
  const [rate, mode, delay, limit, extra] = spec.split(':')
  if (limit === undefined || extra !== undefined) throw new Error(`bad cell '${spec}': RATE:MODE:DELAY:LIMIT, e.g. 0:daemon:0:256Mi`)
  if (mode !== 'plain' && mode !== 'daemon') throw new Error(`bad cell '${spec}': mode is plain or daemon`)
  const seconds = Number(delay)
  if (!(seconds >= 0)) throw new Error(`bad cell '${spec}': delay is seconds, 0 or more`)
  return { rate: parseRate(rate), mode, delay: seconds, limit: parseLimit(limit) }
}

/** The cells the options ask for (see the top of this file), duplicates dropped, in order. */
export function cellsFrom(args, fallback = 'default') {
  const list = option(args, 'cells', undefined)
  let specs
  if (list !== undefined) {
    specs = list
      .split(',')
      .filter(Boolean)
      .flatMap(item => PRESETS[item] ?? [item])
  } else if (['rates', 'modes', 'delays', 'delay', 'limits'].some(name => option(args, name, undefined) !== undefined)) {
    const rates = option(args, 'rates', '40M,200M,0').split(',')
    const modes = option(args, 'modes', 'plain,daemon').split(',')
    const delays = option(args, 'delays', option(args, 'delay', '1')).split(',')
    const limits = option(args, 'limits', '256Mi').split(',')
    specs = limits.flatMap(limit => delays.flatMap(delay => rates.flatMap(rate => modes.map(mode => `${rate}:${mode}:${delay}:${limit}`))))
  } else {
    specs = PRESETS[fallback]
  }
  const cells = specs.map(parseCell)
  return cells.filter((cell, i) => cells.findIndex(other => sameCell(other, cell)) === i)
}

export const sameCell = (a, b) => a.rate === b.rate && a.mode === b.mode && a.delay === b.delay && a.limit === b.limit

/** A cell's name in file and cgroup names. */
export const cellId = ({ rate, mode, delay, limit }) => `${rate}-${mode}-d${delay}-L${limit}`

export const formatLimit = bytes =>
  bytes % (1 << 30) === 0 ? `${bytes / (1 << 30)} GiB` : bytes % MiB === 0 ? `${bytes / MiB} MiB` : `${bytes} B`

/** The leak, as the tables name it: rate and mode (delay and limit have their own columns). */
export const leakLabel = ({ rate, mode }) =>
  `${rate ? `${rate / 1e6} MB/s` : 'unthrottled'}, ${mode === 'daemon' ? 'daemonized' : 'direct'}`

/** The whole cell in words, for progress lines. */
export const cellLabel = cell => `${leakLabel(cell)}, delay ${cell.delay} s, ${formatLimit(cell.limit)}`

/** From the first instant: no normal life before an unthrottled leak. */
export const firstInstant = ({ rate, delay }) => rate === 0 && delay === 0

/**
 * The share of runs oomwatch must win in a cell: a leak from the first instant into 256 MiB
 * or less fills it in 200-300 ms, 19 of 20 runs; at a larger limit, and in every other
 * cell, every run.
 */
export function target(cell) {
  if (firstInstant(cell) && cell.limit <= 256 * MiB) return { share: 19 / 20, text: '≥ 19/20 (95%)' }
  return { share: 1, text: 'every run' }
}

/** `met` / `MISSED` for `wins` of `runs` against the cell's target. */
export function verdict(cell, wins, runs) {
  const { share, text } = target(cell)
  const met = runs > 0 && wins >= share * runs - 1e-9
  return {
    met,
    line: `${cellLabel(cell)}: oomwatch won ${wins}/${runs}, target ${text}: ${met ? 'met' : 'MISSED'}${runs > 0 && runs < 20 && share < 1 ? ` (on ${runs} run${runs === 1 ? '' : 's'}: at 95% that is every run; the target is set on 20)` : ''}`,
  }
}

/** Entries of the leaking table: enough to go far past `limit` (10 million is ~700 MB of set, for 256 MiB). */
export const entriesFor = limit => String(10_000_000 * Math.max(1, Math.ceil(limit / (256 * MiB))))
