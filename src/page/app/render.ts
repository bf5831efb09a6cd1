import { frameText, threadHeader } from '../../format/stack.js'
import { chart } from './chart.js'
import { el, type Child } from './dom.js'
import { agentLine, flamegraphNote, incidentFigures, processFigures, processName, riskSubtitle, rlimitsLine } from './figures.js'
import { latestTime, MAX_GONE, span, type IncidentEvent, type KnownProcess, type PageState } from './state.js'
import type { RiskPayload } from '../../protocol/events.js'

/** The header: agent version, py-spy, the host and the last event's seq. */
export function renderAgent(state: PageState, host: string): void {
  if (!state.hello) return
  byId('agent').textContent = agentLine(state.hello, host, state.lastSeq)
}

/** A card per process, live ones first, then the last few gone. */
export function renderProcesses(state: PageState): void {
  const end = latestTime(state)
  const spanMs = span(state, end)
  const all = [...state.processes.values()]
  const shown = [...all.filter(p => !p.gone), ...all.filter(p => p.gone).slice(-MAX_GONE)]
  const cards = shown.map(p => processCard(state, p, end, spanMs))
  fill(
    'processes',
    cards,
    'No Python process seen yet. oomwatch scans for new ones every half second: start one where the agent can see it and it appears here.',
  )
}

function processCard(state: PageState, p: KnownProcess, end: number, spanMs: number): HTMLElement {
  const info = p.info
  const exit = state.exits.get(info.pid)
  const m = state.memory.get(info.pid)
  const newest = m?.points[m.points.length - 1]
  const rss = newest ? newest[1] : info.memory.rssBytes
  const limit = m?.limit || info.memory.limit.bytes
  const risks = [...state.risks.values()].filter(r => r.pid === info.pid)
  const badges = [
    exit?.oomKilled ? badge('badge red', 'OOM-killed') : exit ? badge('badge', 'exited') : badge('badge', 'running'),
    risks.length ? badge('badge amber', `${risks.length}${risks.length === 1 ? ' risk' : ' risks'}`) : null,
  ]
  return el('div', { class: `card${p.gone ? ' gone' : ''}${exit?.oomKilled ? ' killed' : ''}`, 'data-pid': String(info.pid) }, [
    el('div', { class: 'title' }, [
      el('b', {}, [processName(info.cmdline)]),
      el('span', { class: 'muted' }, [`pid ${info.pid}`]),
      ...badges,
    ]),
    el('div', { class: 'cmd' }, [info.cmdline.join(' ')]),
    chart(state, info.pid, limit, end, spanMs),
    el('div', { class: 'figures' }, [processFigures(info, rss, limit, exit)]),
    exit?.postMortem ? el('div', { class: 'risk' }, [exit.postMortem.summary]) : null,
  ])
}

/** The risks found, the last twelve. */
export function renderRisks(state: PageState): void {
  const items = [...state.risks.values()].map((r: RiskPayload) =>
    el('div', { class: 'card' }, [
      el('div', { class: 'title' }, [el('b', {}, [r.rule]), el('span', { class: 'muted' }, [riskSubtitle(r.pid, r.cmdline)])]),
      el('div', { class: 'risk' }, [r.message]),
    ]),
  )
  fill('risks', items.slice(-12), 'No risky rlimit found (a NOFILE limit far too high, a finite address-space limit).')
}

/** The latest incidents, newest first, each with its stack and culprit. */
export function renderIncidents(state: PageState, withToken: (url: string) => string): void {
  const cards = state.incidents.map(incident => {
    const killed = [...state.exits.values()].some(exit => exit.lastIncidentId === incident.id && exit.oomKilled)
    const error = incident.capture.error
    return el('div', { class: 'card', 'data-incident': incident.id }, [
      el('div', { class: 'title' }, [
        el('b', {}, [processName(incident.cmdline)]),
        el('span', { class: 'muted' }, [`pid ${incident.pid} \u00b7 ${new Date(incident.ts).toLocaleTimeString()}`]),
        badge('badge red', incident.reason),
        killed ? badge('badge red', 'then OOM-killed') : null,
      ]),
      el('div', { class: 'figures' }, [incidentFigures(incident.memory)]),
      error ? el('div', { class: 'risk' }, [`No stack: ${error.code}: ${error.message}. ${error.remedy}`]) : stack(incident),
      el('div', { class: 'small' }, [`rlimits: ${rlimitsLine(incident) || 'not read'}`]),
      incident.risks[0] ? el('div', { class: 'risk' }, [`Likely cause: ${incident.risks[0].message}`]) : null,
      flamegraph(state, incident, withToken),
    ])
  })
  const kills = state.unseenKills.map(kill =>
    el('div', { class: 'card killed', 'data-oom-kill': String(kill.seq) }, [
      el('div', { class: 'title' }, [
        el('b', {}, ['A process oomwatch did not watch']),
        el('span', { class: 'muted' }, [new Date(kill.ts).toLocaleTimeString()]),
        badge('badge red', 'OOM-killed'),
      ]),
      el('div', { class: 'risk' }, [kill.summary]),
    ]),
  )
  fill(
    'incidents',
    [...kills, ...cards],
    'No incident yet. When a process races toward its memory limit, its Python stack appears here, with the culprit frame marked, ' +
      'before the kernel OOM killer fires.',
  )
}

/** The stack as py-spy dump prints it, the culprit frame marked. */
function stack(incident: IncidentEvent): HTMLElement {
  const lines: Child[] = []
  const culprit = incident.culprit
  incident.threads.forEach((thread, index) => {
    if (index > 0) lines.push('\n')
    lines.push(`${threadHeader(thread)}\n`)
    thread.frames.forEach((frame, at) => {
      const text = frameText(frame)
      const isCulprit = culprit !== undefined && culprit.threadId === thread.id && at === 0
      lines.push(isCulprit ? el('span', { class: 'culprit', title: culprit.why }, [`\u25b6 ${text}   \u2190 culprit`]) : `    ${text}`)
      lines.push('\n')
    })
  })
  return el('pre', { class: 'stack' }, lines)
}

function flamegraph(state: PageState, incident: IncidentEvent, withToken: (url: string) => string): HTMLElement | null {
  const fg = state.flamegraphs.get(incident.id)
  if (fg?.url) {
    const link = el('a', { href: withToken(fg.url), target: '_blank', rel: 'noopener', class: 'flamegraph' }, ['Flame graph'])
    return el('div', { class: 'small' }, [link, flamegraphNote(fg)])
  }
  if (fg?.error) return el('div', { class: 'small muted' }, [`No flame graph: ${fg.error.message}`])
  if (incident.capture.error || !state.hello || state.hello.config.flamegraph === false) return null
  return el('div', { class: 'small muted' }, ['Recording a flame graph\u2026'])
}

function badge(className: string, text: string): HTMLElement {
  return el('span', { class: className }, [text])
}

/** Replaces a section's content, or says what to expect while it is empty. */
function fill(id: string, items: HTMLElement[], empty: string): void {
  byId(id).replaceChildren(...(items.length ? items : [el('p', { class: 'empty' }, [empty])]))
}

function byId(id: string): HTMLElement {
  const node = document.getElementById(id)
  if (!node) throw new Error(`the page has no #${id}`)
  return node
}
