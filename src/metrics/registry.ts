import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { OomwatchEvent } from '../protocol/events.js'
import type { AgentStatus } from '../status.js'
import { registerWatchedGauges } from './watched-gauges.js'

/** The stream's counts, as the metrics read them at each scrape. */
export interface StreamStats {
  /** WebSocket clients connected now. */
  readonly clients: number
  /** Events not delivered to a client because it was cut for slowness (it can replay them). */
  readonly droppedEvents: number
  /** Connections closed because the cap on open connections was reached. */
  readonly refusedConnections: number
}

/** What the metrics read at each scrape, besides the events they count. */
export interface MetricsSources {
  version: string
  /** True when py-spy was found at start; undefined when it was not looked for (a degraded start). */
  pyspyFound: boolean | undefined
  /** The processes and containers watched now. */
  status: Pick<AgentStatus, 'processes' | 'containers'>
  /** Label per-process series by pid too (one series per process). */
  pidLabels?: boolean
  /** Why the agent runs degraded, if it does: `oomwatch_degraded{reason}`. */
  degraded?: () => readonly string[]
  /** The stream server's counts. */
  stream: StreamStats
}

/** Trigger-to-stack times are tens of ms when py-spy is quick, seconds when it stalls. */
const CAPTURE_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/**
 * oomwatch's Prometheus metrics (prom-client, its own registry): the default process and
 * Node.js metrics, and `oomwatch_*` ones. Counters follow the event stream (subscribe
 * {@link Metrics.sink} to the hub with `subscribe`: memory frames are not events); the
 * gauges of what is watched are read from the agent's status at each scrape.
 */
export class Metrics {
  readonly registry = new Registry()
  readonly #incidents: Counter<'reason'>
  readonly #risks: Counter<'rule'>
  readonly #captureSeconds: Histogram
  readonly #pyspyFailures: Counter<'code' | 'run'>
  readonly #oomKills: Counter<'watched'>
  readonly #actions: Counter

  constructor(sources: MetricsSources) {
    const registers = [this.registry]
    // 1 s, not prom-client's 10 ms: the event-loop histogram's timer wakes the agent at that rate (each wake-up of Node costs ~0.15 ms of CPU here).
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 1000 })
    new Gauge({
      name: 'oomwatch_build_info',
      help: 'Always 1; the agent and Node.js versions are labels.',
      labelNames: ['version', 'node'],
      registers,
    }).set({ version: sources.version, node: process.version }, 1)
    if (sources.pyspyFound !== undefined) {
      new Gauge({
        name: 'oomwatch_pyspy_available',
        help: '1 when py-spy was found at start (else incidents carry no stack).',
        registers,
      }).set(sources.pyspyFound ? 1 : 0)
    }
    new Gauge({
      name: 'oomwatch_degraded',
      help: 'Present, at 1, for each reason the agent runs degraded: a start that could not finish (see /readyz and the log).',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset()
        for (const reason of sources.degraded?.() ?? []) this.set({ reason }, 1)
      },
    })
    registerWatchedGauges(this.registry, sources.status, sources.pidLabels ?? false)
    this.#incidents = new Counter({
      name: 'oomwatch_incidents_total',
      help: 'Runaways caught, by trigger reason.',
      labelNames: ['reason'],
      registers,
    })
    this.#risks = new Counter({
      name: 'oomwatch_risks_total',
      help: 'Risky rlimits found on watched processes, by rule.',
      labelNames: ['rule'],
      registers,
    })
    this.#captureSeconds = new Histogram({
      name: 'oomwatch_capture_duration_seconds',
      help: "From an incident's trigger to its parsed stack, seconds.",
      buckets: CAPTURE_BUCKETS,
      registers,
    })
    this.#pyspyFailures = new Counter({
      name: 'oomwatch_pyspy_failures_total',
      help: 'py-spy runs that failed, by error code and run (dump for the stack, record for a flame graph).',
      labelNames: ['code', 'run'],
      registers,
    })
    this.#oomKills = new Counter({
      name: 'oomwatch_oom_kills_total',
      help: 'OOM kills in watched containers: of a watched process (watched="true"), or of one oomwatch did not watch (watched="false", an oom-kill event).',
      labelNames: ['watched'],
      registers,
    })
    this.#actions = new Counter({
      name: 'oomwatch_actions_total',
      help: 'Actions taken (when enabled), by action and result.',
      labelNames: ['action', 'result'],
      registers,
    })
    new Gauge({
      name: 'oomwatch_websocket_clients',
      help: 'WebSocket clients connected now.',
      registers,
      collect() {
        this.set(sources.stream.clients)
      },
    })
    new Counter({
      name: 'oomwatch_events_dropped_total',
      help: 'Events not sent to a client because it was closed as too slow (it can reconnect with ?since=SEQ to replay them).',
      registers,
      collect() {
        // A count kept by the server: mirrored, never counted twice.
        this.reset()
        this.inc(sources.stream.droppedEvents)
      },
    })
    new Counter({
      name: 'oomwatch_connections_refused_total',
      help: 'Connections closed because --max-connections were open (a flood, or clients that never finish their request).',
      registers,
      collect() {
        this.reset()
        this.inc(sources.stream.refusedConnections)
      },
    })
  }

  /** Counts what the events say; subscribe it to the hub. */
  readonly sink = (event: OomwatchEvent): void => {
    switch (event.type) {
      case 'incident':
        this.#incidents.inc({ reason: event.reason })
        this.#captureSeconds.observe(event.capture.triggerToStackMs / 1000)
        if (event.capture.error) this.#pyspyFailures.inc({ code: event.capture.error.code, run: 'dump' })
        break
      case 'risk':
        this.#risks.inc({ rule: event.rule })
        break
      case 'flamegraph':
        // FLAMEGRAPH_* codes say why py-spy was not run at all.
        if (event.error && !event.error.code.startsWith('FLAMEGRAPH_')) {
          this.#pyspyFailures.inc({ code: event.error.code, run: 'record' })
        }
        break
      case 'exit':
        if (event.oomKilled) this.#oomKills.inc({ watched: 'true' })
        break
      case 'oom-kill':
        this.#oomKills.inc({ watched: 'false' }, event.kills)
        break
      case 'action':
        this.#actions.inc({ action: event.action, result: event.result })
        break
      case 'hello':
      case 'process':
      case 'error':
      case 'group-kill': // its processes' kills are counted by their exits
        break // counted elsewhere (watched processes are a gauge) or not at all
    }
  }

  /** The exposition, in Prometheus text format. */
  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() }
  }
}
