import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { injectManifests, InjectError } from './inject.js'

const USAGE = `Usage: oomwatch inject --token-secret NAME [--container NAME] [--classic]
                       [--image IMAGE] [FILE ...]

Reads Kubernetes manifests (YAML, one or many documents, or JSON) from the
FILEs, or from standard input without one or for "-", and writes them to
standard output with the oomwatch sidecar added to every pod template: Pod,
Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job,
CronJob (and the items of a List). The rest, comments and key order included,
is left as it was; injecting twice changes nothing.

  kubectl get deploy/x -o yaml \\
    | oomwatch inject --token-secret oomwatch-token | kubectl apply -f -

  --token-secret NAME  the Secret whose "token" key is the stream's bearer token
                       (required), made with for example:
                       kubectl create secret generic NAME \\
                         --from-literal=token="$(openssl rand -hex 32)"
  --container NAME     the app container whose limits.memory the sidecar reads
                       (default: the first)
  --native             a native sidecar: an init container that restarts on its
                       own, Kubernetes 1.29 or later (the default)
  --classic            a plain container, for clusters before 1.29
  --image IMAGE        the sidecar's image (default: oomwatch:VERSION)
`

/** Standard input and output, as `inject` uses them: passed in, so that tests need no process. */
export interface InjectIo {
  readStdin: () => string
  stdout: (text: string) => void
  stderr: (text: string) => void
}

/**
 * `oomwatch inject ARGS`: exit 0 with the manifests written; 2, with the reason on standard
 * error and nothing on standard output, for a bad argument, an unreadable file or a manifest
 * it must not change (a half-injected stream piped to `kubectl apply` would be worse).
 */
export function runInject(argv: string[], version: string, io: InjectIo): number {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'token-secret': { type: 'string' },
        container: { type: 'string' },
        native: { type: 'boolean' },
        classic: { type: 'boolean' },
        image: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (error) {
    return fail(io, `${(error as Error).message} (see oomwatch inject --help)`)
  }
  const { values, positionals } = parsed
  if (values.help) return (io.stdout(USAGE), 0)
  if (values.native && values.classic) return fail(io, '--native and --classic exclude each other: choose one')
  const tokenSecret = values['token-secret']
  if (!tokenSecret)
    return fail(io, '--token-secret NAME is required: the sidecar listens beyond loopback (for its probes) and needs a token')
  const options = {
    tokenSecret,
    container: values.container,
    native: !values.classic,
    image: values.image ?? `oomwatch:${version}`,
    version,
  }
  const sources = positionals.length === 0 ? ['-'] : positionals
  const out: string[] = []
  try {
    for (const source of sources) {
      const text = source === '-' ? io.readStdin() : readFileSync(source, 'utf8')
      const injected = injectManifests(text, options, source === '-' ? 'stdin' : source)
      out.push(out.length > 0 && !injected.startsWith('---') ? `---\n${injected}` : injected)
    }
  } catch (error) {
    if (error instanceof InjectError) return fail(io, error.message)
    const code = (error as NodeJS.ErrnoException).code
    if (code !== undefined) return fail(io, `cannot read ${(error as { path?: string }).path ?? 'the input'}: ${code}`)
    throw error
  }
  io.stdout(out.join(''))
  return 0
}

function fail(io: InjectIo, message: string): number {
  io.stderr(`oomwatch inject: ${message}\n`)
  return 2
}
