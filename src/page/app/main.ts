/**
 * The live page's script, loaded by index.html as a module (deferred: the document is
 * parsed when it runs). It connects to the agent's own WebSocket (`?memory=1&since=N`: the
 * kept events, then the live stream and a memory frame every second) and draws each
 * watched process's memory against its limit, the risks, and the latest incidents with
 * their stacks and flame graphs. Nothing is fetched from elsewhere, nothing runs inline:
 * the CSP allows scripts and styles from the agent only.
 */
import { renderAgent, renderIncidents, renderProcesses, renderRisks } from './render.js'
import { handle, newState, type PageMessage } from './state.js'

/** The subprotocol the server picks for the page; `bearer.<token>` beside it carries the token. */
const PROTOCOL = 'oomwatch'
const RECONNECT_MS = 2000

// The token comes in the page's own URL (`/?token=...`): a browser cannot set headers on a WebSocket.
const token = new URLSearchParams(location.search).get('token')
const state = newState()

function withToken(url: string): string {
  return token ? `${url}?token=${encodeURIComponent(token)}` : url
}

let pending = false
/** Draws once per animation frame, however many messages arrived. */
function render(): void {
  if (pending) return
  pending = true
  requestAnimationFrame(() => {
    pending = false
    renderAgent(state, location.host)
    renderProcesses(state)
    renderRisks(state)
    renderIncidents(state, withToken)
  })
}

function setStatus(text: string, kind: string): void {
  const status = document.getElementById('status')
  if (!status) return
  status.textContent = text
  status.className = kind
}

function connect(): void {
  const since = state.lastSeq ?? 0
  const url = `${location.protocol === 'https:' ? 'wss://' : 'ws://'}${location.host}/?memory=1&since=${since}`
  const ws = new WebSocket(url, token ? [PROTOCOL, `bearer.${token}`] : [PROTOCOL])
  ws.onopen = () => setStatus('live', 'live')
  ws.onmessage = (message: MessageEvent<string>) => {
    const event = JSON.parse(message.data) as PageMessage
    handle(state, event)
    render()
  }
  ws.onclose = close => {
    setStatus(`disconnected${close.reason ? `: ${close.reason}` : ''}; retrying`, 'down')
    setTimeout(connect, RECONNECT_MS)
  }
}

render()
connect()
