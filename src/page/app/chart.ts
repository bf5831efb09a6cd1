import { svg } from './dom.js'
import { bytesText, spanText } from './figures.js'
import type { PageState } from './state.js'

const W = 600
const H = 110

/**
 * One process's memory over the span ending at `end`, against its limit (dashed), with a
 * mark at each of its incidents. Scaled to the higher of the limit and the peak.
 */
export function chart(state: PageState, pid: number, limit: number, end: number, spanMs: number): SVGElement {
  const box = svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img' })
  const points = (state.memory.get(pid)?.points ?? []).filter(p => end - p[0] <= spanMs)
  const top = Math.max(limit, ...points.map(p => p[1])) * 1.08 || 1
  const x = (t: number) => ((t - (end - spanMs)) / spanMs) * W
  const y = (b: number) => H - (b / top) * H
  box.appendChild(svg('rect', { x: 0, y: 0, width: W, height: H, fill: '#fafbfd', stroke: '#e3e7ee' }))
  const limitLine = { x1: 0, x2: W, y1: y(limit), y2: y(limit), stroke: '#c8372d', 'stroke-width': 1.5, 'stroke-dasharray': '6 4' }
  box.appendChild(svg('line', limitLine))
  const label = svg('text', { x: 6, y: y(limit) < 20 ? y(limit) + 13 : y(limit) - 4, fill: '#c8372d', 'font-size': 11 })
  label.textContent = `limit ${bytesText(limit)}`
  box.appendChild(label)
  for (const incident of state.incidents) {
    if (incident.pid !== pid) continue
    const at = Date.parse(incident.ts)
    if (end - at > spanMs || at > end) continue
    box.appendChild(svg('line', { x1: x(at), x2: x(at), y1: 0, y2: H, stroke: '#c8372d', 'stroke-opacity': 0.6, 'stroke-width': 1 }))
  }
  const first = points[0]
  const last = points[points.length - 1]
  if (first && last) {
    const line = points.map(p => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ')
    const area = `${x(first[0]).toFixed(1)},${H} ${line} ${x(last[0]).toFixed(1)},${H}`
    box.appendChild(svg('polygon', { points: area, fill: 'rgba(47,111,219,.12)' }))
    const stroke = { fill: 'none', stroke: '#2f6fdb', 'stroke-width': 2, 'vector-effect': 'non-scaling-stroke' }
    box.appendChild(svg('polyline', { points: line, ...stroke }))
  }
  const axis = svg('text', { x: W - 6, y: H - 5, fill: '#8a93a3', 'font-size': 10, 'text-anchor': 'end' })
  axis.textContent = spanText(spanMs)
  box.appendChild(axis)
  return box
}
