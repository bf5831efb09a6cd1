/**
 * The live page, served at `GET /` to browsers: one HTML document with its style and
 * script inline, no framework and nothing fetched from elsewhere. It connects to the
 * agent's own WebSocket (`?memory=1&since=0`: the kept events, then the live stream and
 * a memory frame every second) and draws each watched process's memory against its limit,
 * the risks, and the latest incidents with their stacks and flame graphs. Everything
 * from the stream goes into the page as text nodes, never as markup: command lines and
 * function names are the watched program's.
 *
 * A TypeScript string rather than an .html file so that `tsc` alone ships it in dist/.
 * The script avoids backticks and dollar-brace: this is a template literal.
 */
export const PAGE_HTML = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>oomwatch</title>
<link rel="icon" href="data:,">
<style>
  :root { --fg: #1d2330; --muted: #5d6677; --line: #d9dee7; --bg: #f5f7fa; --card: #fff; --mem: #2f6fdb; --limit: #c8372d; --warn: #a15c00; --ok: #1f7a3d; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; align-items: baseline; gap: 16px; padding: 10px 20px; background: #1d2330; color: #fff; }
  header h1 { margin: 0; font-size: 18px; }
  header .meta { color: #b9c2d3; font-size: 13px; }
  #status { margin-left: auto; font-size: 13px; padding: 2px 10px; border-radius: 10px; background: #5d6677; }
  #status.live { background: var(--ok); }
  #status.down { background: var(--limit); }
  main { display: grid; grid-template-columns: minmax(380px, 1fr) minmax(460px, 1.25fr); gap: 20px; padding: 16px 20px; }
  @media (max-width: 1000px) { main { grid-template-columns: 1fr; } }
  h2 { font-size: 15px; margin: 0 0 8px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
  section + section { margin-top: 18px; }
  .card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; margin-bottom: 10px; }
  .card.gone { opacity: .6; }
  .card.killed { opacity: 1; border-color: var(--limit); }
  .title { display: flex; gap: 8px; align-items: baseline; flex-wrap: wrap; }
  .title b { font-size: 15px; }
  .muted { color: var(--muted); }
  .small { font-size: 12px; }
  .badge { font-size: 11px; font-weight: 600; padding: 1px 7px; border-radius: 9px; background: #e8ecf3; color: var(--muted); }
  .badge.red { background: #fbe3e1; color: var(--limit); }
  .badge.amber { background: #fdf0d9; color: var(--warn); }
  .cmd { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; color: var(--muted); overflow-wrap: anywhere; }
  svg.chart { display: block; width: 100%; height: 110px; margin: 6px 0 2px; }
  .figures { font-size: 13px; }
  .risk { color: var(--warn); font-size: 13px; margin-top: 4px; }
  .summary { margin: 6px 0; font-weight: 500; }
  pre.stack { margin: 6px 0; padding: 8px 10px; background: #f1f3f7; border-radius: 4px; font: 12px/1.5 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; overflow-x: auto; white-space: pre; }
  pre.stack .culprit { display: inline-block; background: #fbe3e1; color: #8c1d15; font-weight: 700; border-radius: 3px; padding: 0 4px; margin-left: -4px; }
  .empty { color: var(--muted); font-style: italic; }
  a { color: var(--mem); }
</style>
</head>
<body>
<header>
  <h1>oomwatch</h1>
  <span class="meta" id="agent">connecting to the agent&hellip;</span>
  <span id="status">connecting</span>
</header>
<main>
  <div>
    <section>
      <h2>Watched processes</h2>
      <div id="processes"></div>
    </section>
    <section>
      <h2>Risks</h2>
      <div id="risks"></div>
    </section>
  </div>
  <div>
    <section>
      <h2>Latest incidents</h2>
      <div id="incidents"></div>
    </section>
  </div>
</main>
<script>
(function () {
  'use strict';
  var WINDOW_MS = 5 * 60 * 1000;
  var MAX_INCIDENTS = 10;
  var MAX_GONE = 6;
  var token = new URLSearchParams(location.search).get('token');
  var state = { hello: null, lastSeq: null, processes: new Map(), memory: new Map(), risks: new Map(), incidents: [], flamegraphs: new Map(), exits: new Map() };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined || child === false) return;
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    });
    return node;
  }
  function svg(tag, attrs) {
    var node = document.createElementNS('http://www.w3.org/2000/svg', tag);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    return node;
  }
  function bytes(n) {
    if (n === undefined || n === null) return '?';
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    var i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (Math.round(n * 10) / 10) + ' ' + units[i];
  }
  function name(cmdline) {
    var exe = (cmdline[0] || '').split('/').pop();
    if (!/^(python|pypy)[\d.]*$/.test(exe)) return exe || 'unknown';
    for (var i = 1; i < cmdline.length; i++) {
      if (cmdline[i] === '-m') return cmdline[i + 1] || exe;
      if (cmdline[i] === '-c') return exe + ' -c';
      if (cmdline[i].charAt(0) !== '-') return cmdline[i].split('/').pop();
    }
    return exe;
  }
  function time(ts) { return new Date(ts).toLocaleTimeString(); }
  function withToken(url) { return token ? url + '?token=' + encodeURIComponent(token) : url; }

  function handle(event) {
    if (typeof event.seq === 'number' && event.type !== 'memory') state.lastSeq = event.seq;
    switch (event.type) {
      case 'hello':
        state.hello = event;
        // After a reconnect: what the agent no longer lists is gone.
        state.processes.forEach(function (p, pid) { if (!event.watching.some(function (w) { return w.pid === pid; })) p.gone = true; });
        event.watching.forEach(function (p) { state.processes.set(p.pid, { info: p, gone: false }); });
        break;
      case 'process':
        state.processes.set(event.pid, { info: event, gone: false });
        state.exits.delete(event.pid);
        break;
      case 'exit':
        state.exits.set(event.pid, event);
        var known = state.processes.get(event.pid);
        if (known) known.gone = true;
        break;
      case 'risk':
        state.risks.set(event.pid + ' ' + event.rule, event);
        break;
      case 'incident':
        state.incidents = [event].concat(state.incidents.filter(function (i) { return i.id !== event.id; })).slice(0, MAX_INCIDENTS);
        break;
      case 'flamegraph':
        state.flamegraphs.set(event.incidentId, event);
        break;
      case 'memory':
        event.processes.forEach(function (p) {
          var kept = state.memory.get(p.pid) || { limit: p.limitBytes, points: [] };
          kept.limit = p.limitBytes;
          kept.points = kept.points.concat(p.points);
          var newest = kept.points[kept.points.length - 1];
          if (newest) kept.points = kept.points.filter(function (point) { return newest[0] - point[0] <= WINDOW_MS; });
          state.memory.set(p.pid, kept);
        });
        break;
    }
  }

  function latestTime() {
    var latest = 0;
    state.memory.forEach(function (m) { var last = m.points[m.points.length - 1]; if (last && last[0] > latest) latest = last[0]; });
    return latest || Date.now();
  }

  /** The charts' time span: since the oldest point kept, at least a minute, at most WINDOW_MS. */
  function span(end) {
    var oldest = end;
    state.memory.forEach(function (m) { if (m.points[0] && m.points[0][0] < oldest) oldest = m.points[0][0]; });
    return Math.min(WINDOW_MS, Math.max(60 * 1000, end - oldest));
  }

  function chart(pid, limit, end, spanMs) {
    var W = 600, H = 110;
    var box = svg('svg', { 'class': 'chart', viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', role: 'img' });
    var m = state.memory.get(pid);
    var points = (m ? m.points : []).filter(function (p) { return end - p[0] <= spanMs; });
    var top = limit;
    points.forEach(function (p) { if (p[1] > top) top = p[1]; });
    top = top * 1.08 || 1;
    var x = function (t) { return ((t - (end - spanMs)) / spanMs) * W; };
    var y = function (b) { return H - (b / top) * H; };
    box.appendChild(svg('rect', { x: 0, y: 0, width: W, height: H, fill: '#fafbfd', stroke: '#e3e7ee' }));
    box.appendChild(svg('line', { x1: 0, x2: W, y1: y(limit), y2: y(limit), stroke: '#c8372d', 'stroke-width': 1.5, 'stroke-dasharray': '6 4' }));
    var label = svg('text', { x: 6, y: y(limit) < 20 ? y(limit) + 13 : y(limit) - 4, fill: '#c8372d', 'font-size': 11 });
    label.textContent = 'limit ' + bytes(limit);
    box.appendChild(label);
    state.incidents.forEach(function (incident) {
      if (incident.pid !== pid) return;
      var at = Date.parse(incident.ts);
      if (end - at > spanMs || at > end) return;
      box.appendChild(svg('line', { x1: x(at), x2: x(at), y1: 0, y2: H, stroke: '#c8372d', 'stroke-opacity': 0.6, 'stroke-width': 1 }));
    });
    if (points.length > 0) {
      var line = points.map(function (p) { return x(p[0]).toFixed(1) + ',' + y(p[1]).toFixed(1); }).join(' ');
      var first = points[0], last = points[points.length - 1];
      box.appendChild(svg('polygon', { points: x(first[0]).toFixed(1) + ',' + H + ' ' + line + ' ' + x(last[0]).toFixed(1) + ',' + H, fill: 'rgba(47,111,219,.12)' }));
      box.appendChild(svg('polyline', { points: line, fill: 'none', stroke: '#2f6fdb', 'stroke-width': 2, 'vector-effect': 'non-scaling-stroke' }));
    }
    var axis = svg('text', { x: W - 6, y: H - 5, fill: '#8a93a3', 'font-size': 10, 'text-anchor': 'end' });
    axis.textContent = 'last ' + (spanMs >= 120 * 1000 ? Math.round(spanMs / 60000) + ' min' : Math.round(spanMs / 1000) + ' s');
    box.appendChild(axis);
    return box;
  }

  function nofile(info) {
    var row = info.rlimits && info.rlimits.NOFILE;
    return row ? 'NOFILE hard ' + row.hard : null;
  }

  function renderProcesses() {
    var root = document.getElementById('processes');
    var end = latestTime();
    var spanMs = span(end);
    var live = [], gone = [];
    state.processes.forEach(function (p) { (p.gone ? gone : live).push(p); });
    gone = gone.slice(-MAX_GONE);
    var cards = live.concat(gone).map(function (p) {
      var info = p.info, exit = state.exits.get(info.pid), m = state.memory.get(info.pid);
      var last = m && m.points.length ? m.points[m.points.length - 1][1] : info.memory.rssBytes;
      var limit = (m && m.limit) || info.memory.limit.bytes;
      var risks = [];
      state.risks.forEach(function (r) { if (r.pid === info.pid) risks.push(r); });
      var badges = [
        exit && exit.oomKilled ? el('span', { 'class': 'badge red' }, ['OOM-killed']) : exit ? el('span', { 'class': 'badge' }, ['exited']) : el('span', { 'class': 'badge' }, ['running']),
        risks.length ? el('span', { 'class': 'badge amber' }, [risks.length + (risks.length === 1 ? ' risk' : ' risks')]) : null,
      ];
      return el('div', { 'class': 'card' + (p.gone ? ' gone' : '') + (exit && exit.oomKilled ? ' killed' : ''), 'data-pid': String(info.pid) }, [
        el('div', { 'class': 'title' }, [el('b', {}, [name(info.cmdline)]), el('span', { 'class': 'muted' }, ['pid ' + info.pid])].concat(badges)),
        el('div', { 'class': 'cmd' }, [info.cmdline.join(' ')]),
        chart(info.pid, limit, end, spanMs),
        el('div', { 'class': 'figures' }, [
          'RSS ' + bytes(last) + ' of ' + bytes(limit) + ' (' + Math.round((last / limit) * 100) + '%, ' + info.memory.limit.source + ')',
          nofile(info) ? ' \u00b7 ' + nofile(info) : '',
          exit && !exit.oomKilled && exit.peakRssBytes ? ' \u00b7 peak ' + bytes(exit.peakRssBytes) : '',
        ]),
        exit && exit.postMortem ? el('div', { 'class': 'risk' }, [exit.postMortem.summary]) : null,
      ]);
    });
    root.replaceChildren.apply(root, cards.length ? cards : [el('p', { 'class': 'empty' }, ['No Python process seen yet. oomwatch scans for new ones every half second: start one where the agent can see it and it appears here.'])]);
  }

  function renderRisks() {
    var root = document.getElementById('risks');
    var items = [];
    state.risks.forEach(function (r) {
      items.push(el('div', { 'class': 'card' }, [
        el('div', { 'class': 'title' }, [el('b', {}, [r.rule]), el('span', { 'class': 'muted' }, ['pid ' + r.pid + ' ' + name(r.cmdline)])]),
        el('div', { 'class': 'risk' }, [r.message]),
      ]));
    });
    root.replaceChildren.apply(root, items.length ? items.slice(-12) : [el('p', { 'class': 'empty' }, ['No risky rlimit found (a NOFILE limit far too high, a finite address-space limit).'])]);
  }

  function stack(incident) {
    var lines = [];
    incident.threads.forEach(function (thread, index) {
      if (index > 0) lines.push('\n');
      var status = thread.ownsGil ? 'active+gil' : thread.active ? 'active' : 'idle';
      lines.push('Thread ' + (thread.osThreadId || thread.id) + ' (' + status + ')' + (thread.name ? ': "' + thread.name + '"' : '') + '\n');
      thread.frames.forEach(function (frame, at) {
        var text = frame.function + ' (' + frame.file + ':' + frame.line + ')';
        var isCulprit = incident.culprit && incident.culprit.threadId === thread.id && at === 0;
        lines.push(isCulprit ? el('span', { 'class': 'culprit', title: incident.culprit.why }, ['\u25b6 ' + text + '   \u2190 culprit']) : '    ' + text);
        lines.push('\n');
      });
    });
    return el('pre', { 'class': 'stack' }, lines);
  }

  function rlimits(incident) {
    var names = ['NOFILE', 'AS', 'DATA'];
    incident.risks.forEach(function (r) { if (names.indexOf(r.rlimit) < 0) names.push(r.rlimit); });
    return names.filter(function (n) { return incident.rlimits[n]; }).map(function (n) {
      var row = incident.rlimits[n];
      var show = function (v) { return v === 'unlimited' ? 'unlimited' : row.units === 'bytes' ? bytes(v) : String(v); };
      return n + ' ' + (row.soft === row.hard ? show(row.hard) : show(row.soft) + ' / ' + show(row.hard));
    }).join(' \u00b7 ');
  }

  function flamegraph(incident) {
    var fg = state.flamegraphs.get(incident.id);
    if (fg && fg.url) return el('div', { 'class': 'small' }, [el('a', { href: withToken(fg.url), target: '_blank', rel: 'noopener', 'class': 'flamegraph' }, ['Flame graph']), ' (' + ((fg.durationMs || 0) / 1000).toFixed(1) + ' s of samples after the incident)']);
    if (fg && fg.error) return el('div', { 'class': 'small muted' }, ['No flame graph: ' + fg.error.message]);
    if (incident.capture.error || !state.hello || state.hello.config.flamegraph === false) return null;
    return el('div', { 'class': 'small muted' }, ['Recording a flame graph\u2026']);
  }

  function renderIncidents() {
    var root = document.getElementById('incidents');
    var cards = state.incidents.map(function (incident) {
      var m = incident.memory;
      var killed = false;
      state.exits.forEach(function (exit) { if (exit.lastIncidentId === incident.id && exit.oomKilled) killed = true; });
      return el('div', { 'class': 'card', 'data-incident': incident.id }, [
        el('div', { 'class': 'title' }, [
          el('b', {}, [name(incident.cmdline)]), el('span', { 'class': 'muted' }, ['pid ' + incident.pid + ' \u00b7 ' + time(incident.ts)]),
          el('span', { 'class': 'badge red' }, [incident.reason]), killed ? el('span', { 'class': 'badge red' }, ['then OOM-killed']) : null,
        ]),
        el('div', { 'class': 'figures' }, [
          bytes(m.usageBytes) + ' of ' + bytes(m.limitBytes) + ' (' + Math.round(m.fractionOfLimit * 100) + '%, ' + m.limitSource + ')' +
          ' \u00b7 +' + bytes(m.growthBytesPerSec) + '/s' + (m.secondsToLimit === null ? '' : ' \u00b7 limit in ' + m.secondsToLimit + ' s'),
        ]),
        incident.capture.error
          ? el('div', { 'class': 'risk' }, ['No stack: ' + incident.capture.error.code + ': ' + incident.capture.error.message + '. ' + incident.capture.error.remedy])
          : stack(incident),
        el('div', { 'class': 'small' }, ['rlimits: ' + (rlimits(incident) || 'not read')]),
        incident.risks.length ? el('div', { 'class': 'risk' }, ['Likely cause: ' + incident.risks[0].message]) : null,
        flamegraph(incident),
      ]);
    });
    root.replaceChildren.apply(root, cards.length ? cards : [el('p', { 'class': 'empty' }, ['No incident yet. When a process races toward its memory limit, its Python stack appears here, with the culprit frame marked, before the kernel OOM killer fires.'])]);
  }

  function renderAgent() {
    var hello = state.hello;
    if (!hello) return;
    var pyspy = hello.pyspy.path ? 'py-spy ' + hello.pyspy.version : 'py-spy missing: incidents carry no stack';
    document.getElementById('agent').textContent = 'agent ' + hello.version + ' \u00b7 ' + pyspy + ' \u00b7 ' + location.host + (state.lastSeq !== null ? ' \u00b7 event #' + state.lastSeq : '');
  }

  var pending = false;
  function render() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () {
      pending = false;
      renderAgent();
      renderProcesses();
      renderRisks();
      renderIncidents();
    });
  }

  function setStatus(text, kind) {
    var status = document.getElementById('status');
    status.textContent = text;
    status.className = kind || '';
  }

  function connect() {
    var since = state.lastSeq === null ? 0 : state.lastSeq;
    var ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/?memory=1&since=' + since, token ? ['oomwatch', 'bearer.' + token] : ['oomwatch']);
    ws.onopen = function () { setStatus('live', 'live'); };
    ws.onmessage = function (message) { handle(JSON.parse(message.data)); render(); };
    ws.onclose = function (close) {
      setStatus('disconnected' + (close.reason ? ': ' + close.reason : '') + '; retrying', 'down');
      setTimeout(connect, 2000);
    };
  }

  render();
  connect();
})();
</script>
</body>
</html>
`
