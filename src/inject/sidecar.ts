/** What the injected sidecar is made of: the user's choices, with defaults. */
export interface SidecarOptions {
  image: string
  /** The Secret whose `token` key is the stream's bearer token, mounted as a file. */
  tokenSecret: string
  /** The app container whose `limits.memory` the Downward API gives the agent (its fallback limit). */
  appContainer: string
  /** A native sidecar (an init container with `restartPolicy: Always`, Kubernetes 1.29+), else a plain container. */
  native: boolean
}

export const SIDECAR_NAME = 'oomwatch'
export const JOURNAL_VOLUME = 'oomwatch-journal'
export const TOKEN_VOLUME = 'oomwatch-token'
/** Set on every pod template the injector wrote to: what it may rewrite on a second run. */
export const INJECTED_ANNOTATION = 'oomwatch.io/injected'
const PORT = 9642
/** `/metrics` and the probes, without the token: what Prometheus and the kubelet reach. */
export const METRICS_PORT = 9643
/** Its container port's name (15 characters at most), which the PodMonitor in deploy/ scrapes. */
export const METRICS_PORT_NAME = 'oomwatch-prom'
/** The pod label the injector sets, which the PodMonitor selects on. */
export const INJECTED_LABEL = 'oomwatch.io/injected'
const TOKEN_DIR = '/var/run/secrets/oomwatch'
const JOURNAL_DIR = '/var/lib/oomwatch'

/**
 * The sidecar container, as sidecar.yaml explains it field by field. Fail-open: no startup or
 * readiness probe, so a sidecar that cannot start (an image pull, a bad setting) never holds
 * the app's start nor takes the pod out of its Service; the liveness probe restarts the
 * sidecar alone.
 */
export function sidecarContainer(options: SidecarOptions): Record<string, unknown> {
  return {
    name: SIDECAR_NAME,
    image: options.image,
    imagePullPolicy: 'IfNotPresent',
    ...(options.native && { restartPolicy: 'Always' }),
    env: [
      // Every interface, so that the kubelet's probes (sent to the pod IP) reach it; the stream needs the token.
      { name: 'OOMWATCH_HOST', value: '0.0.0.0' },
      { name: 'OOMWATCH_PORT', value: String(PORT) },
      { name: 'OOMWATCH_TOKEN_FILE', value: `${TOKEN_DIR}/token` },
      {
        name: 'OOMWATCH_MEMORY_LIMIT',
        valueFrom: { resourceFieldRef: { containerName: options.appContainer, resource: 'limits.memory', divisor: '1' } },
      },
      { name: 'OOMWATCH_JOURNAL_DIR', value: JOURNAL_DIR },
      { name: 'OOMWATCH_METRICS_PORT', value: String(METRICS_PORT) },
      // A start that cannot finish (a bad setting, an unreadable token) stays up and says why
      // in its log, /readyz and oomwatch_degraded, rather than exiting into a crash loop.
      { name: 'OOMWATCH_FAIL_OPEN', value: 'true' },
    ],
    ports: [
      { name: 'oomwatch', containerPort: PORT, protocol: 'TCP' },
      { name: METRICS_PORT_NAME, containerPort: METRICS_PORT, protocol: 'TCP' },
    ],
    livenessProbe: { httpGet: { path: '/livez', port: METRICS_PORT_NAME }, periodSeconds: 10, failureThreshold: 3 },
    resources: { requests: { cpu: '20m', memory: '96Mi' }, limits: { cpu: '500m', memory: '192Mi' } },
    securityContext: {
      // UID 0: Kubernetes puts added capabilities in the effective set of root only.
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      // py-spy and /proc/<pid>/root need ptrace rights over a process that is not a child.
      capabilities: { drop: ['ALL'], add: ['SYS_PTRACE'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [
      { name: JOURNAL_VOLUME, mountPath: JOURNAL_DIR },
      { name: TOKEN_VOLUME, mountPath: TOKEN_DIR, readOnly: true },
    ],
  }
}

/** The pod-level volumes the sidecar mounts. */
export function sidecarVolumes(options: SidecarOptions): Record<string, unknown>[] {
  return [
    { name: JOURNAL_VOLUME, emptyDir: { sizeLimit: '128Mi' } },
    // 0400: readable by the sidecar (UID 0) only, not by the app's user. Optional: a Secret not
    // created yet must not hold the pod (and the app) at ContainerCreating; the sidecar runs
    // degraded until it appears, then restarts in full.
    { name: TOKEN_VOLUME, secret: { secretName: options.tokenSecret, defaultMode: 0o400, optional: true } },
  ]
}
