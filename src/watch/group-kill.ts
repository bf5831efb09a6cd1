import { formatBytes } from '../format/bytes.js'
import { commandName } from '../format/command-name.js'
import type { Decision } from './decisions.js'
import { exitOf } from './post-mortem.js'
import type { Watched } from './watched.js'
import type { GroupKillPayload } from '../protocol/events.js'

/** How long after a group kill's first exit the others are still told as part of it: they are found within a tick or two. */
const GROUP_KILL_WINDOW_MS = 5000

/**
 * The decisions for a watched process that is gone. An OOM kill of a cgroup the kernel kills
 * as a whole (v2's `memory.oom.group`, the kubelet's setting) is one story: at its first exit,
 * a `group-kill` that names the runaway; then each exit, the collateral ones linked to it
 * (`killedWith`) rather than each told "no stack was caught". Elsewhere (v1, the setting off)
 * an exit is told as before.
 *
 * @param membersOf - the group's other members still watched, as the step knows them: looked up only for a group kill
 */
export function exitDecisions(w: Watched, oomKilled: boolean, membersOf: () => Watched[], now: number): Decision[] {
  const group = w.group
  if (group.groupKill && now - group.groupKill.at > GROUP_KILL_WINDOW_MS) group.groupKill = undefined
  const decisions: Decision[] = []
  const groupKill = oomKilled && !group.groupKill ? group.readGroupKill() : undefined
  if (groupKill) {
    const killed = [w, ...membersOf().filter(m => m !== w)]
    const runaway = runawayOf(killed)
    const last = runaway.lastIncident
    group.groupKill = {
      at: now,
      runaway: { pid: runaway.info.pid, cmdline: runaway.info.cmdline, ...(last && { incidentId: last.id }) },
    }
    decisions.push({ kind: 'group-kill', groupKill: groupKillOf(runaway, killed, groupKill.groupKills) })
  }
  const record = oomKilled ? group.groupKill : undefined
  const killedWith = record && record.runaway.pid !== w.info.pid ? record.runaway : undefined
  decisions.push({ kind: 'exit', exit: exitOf(w, oomKilled, now, killedWith) })
  return decisions
}

/**
 * The process that ran the container out of memory: of those with an incident (caught
 * running away), else of all, the largest (the kernel's own choice of victim, by its badness
 * score, is the largest too).
 */
function runawayOf(killed: readonly Watched[]): Watched {
  const caught = killed.filter(w => w.lastIncident !== undefined)
  return (caught.length > 0 ? caught : killed).reduce((a, b) => (b.peakRss > a.peakRss ? b : a))
}

function groupKillOf(runaway: Watched, killed: readonly Watched[], groupKills: number | undefined): GroupKillPayload {
  const group = runaway.group
  const last = runaway.lastIncident
  const culprit = last?.culprit && { function: last.culprit.function, file: last.culprit.file, line: last.culprit.line }
  const others = killed.filter(w => w !== runaway)
  const what = culprit
    ? `${culprit.function} (${culprit.file}:${culprit.line}) was growing memory, incident ${last?.id}`
    : last
      ? `incident ${last.id}, without a stack`
      : `the largest, at ${formatBytes(runaway.peakRss)}; no stack was caught before the kill`
  const withIt =
    others.length === 0
      ? 'no other watched process was in it'
      : `killed with it: ${others.map(w => `pid ${w.info.pid} (${commandName(w.info.cmdline)})`).join(', ')}`
  return {
    type: 'group-kill',
    cgroup: { version: group.cgroup?.version ?? 2, dir: group.cgroup?.dir ?? '' },
    limit: group.limit,
    runaway: {
      pid: runaway.info.pid,
      cmdline: runaway.info.cmdline,
      peakRssBytes: runaway.peakRss,
      ...(last && { incidentId: last.id }),
      ...(culprit && { culprit }),
    },
    killed: killed.map(w => w.info.pid),
    ...(groupKills !== undefined && { groupKills }),
    summary:
      `the kernel OOM-killed the container ${group.cgroup?.dir ?? ''} as a whole (memory.oom.group), ` +
      `limit ${formatBytes(group.limit.bytes)} (${group.limit.source}): pid ${runaway.info.pid} ` +
      `(${commandName(runaway.info.cmdline)}) ran away: ${what}; ${withIt}`,
  }
}
