import { isMap, isSeq, type Document, type Scalar, type YAMLMap, type YAMLSeq } from 'yaml'
import { CONTAINER_NAME_VARIABLE } from '../protocol/values.js'
import {
  INJECTED_ANNOTATION,
  INJECTED_LABEL,
  JOURNAL_VOLUME,
  SIDECAR_NAME,
  sidecarContainer,
  sidecarVolumes,
  TOKEN_VOLUME,
  type SidecarOptions,
} from './sidecar.js'

/** A manifest the injector will not change, with what to do about it: exit 2. */
export class InjectError extends Error {}

/** Where a pod template's spec and metadata are in a document. */
export interface TemplatePaths {
  spec: (string | number)[]
  metadata: (string | number)[]
}

/** What the user chose; `container` unset: the template's first container is the app. */
export type InjectOptions = Omit<SidecarOptions, 'appContainer'> & { container?: string | undefined; version: string }

type Named = { name?: unknown }
const COMMENT = ' oomwatch, injected: see "Run it in Kubernetes" in its README. Fail-open: no startup or readiness probe.'

/**
 * Adds the sidecar to the pod template at `paths` in `doc`, in place, keeping every other
 * node (comments and key order with it). Idempotent: what an earlier injection added (the
 * template carries its annotation) is replaced, so injecting twice gives the same text.
 *
 * @throws {InjectError} on a template it must not change (`where` names it in the message)
 */
export function injectTemplate(doc: Document, paths: TemplatePaths, where: string, options: InjectOptions): void {
  const spec = doc.getIn(paths.spec, true)
  if (!isMap(spec)) throw new InjectError(`${where}: no pod spec at ${paths.spec.join('.')}`)
  const plain = spec.toJSON() as { hostPID?: unknown; shareProcessNamespace?: unknown; containers?: Named[] }
  if (plain.hostPID === true)
    throw new InjectError(`${where}: hostPID is true; oomwatch watches one pod's processes, not the node's. Remove hostPID to inject it`)
  if (plain.shareProcessNamespace === false)
    throw new InjectError(`${where}: shareProcessNamespace is false, and the sidecar needs it true; remove that line to let inject set it`)
  const names = (plain.containers ?? []).map(c => String(c.name))
  if (names.length === 0) throw new InjectError(`${where}: no container to watch`)
  const app = options.container ?? names.find(name => name !== SIDECAR_NAME) ?? names[0]!
  if (!names.includes(app)) throw new InjectError(`${where}: no container named "${app}" (--container); it has ${names.join(', ')}`)
  const injected = doc.getIn([...paths.metadata, 'annotations', INJECTED_ANNOTATION]) !== undefined

  // What an earlier injection added goes; the same name not added by it is someone else's.
  for (const key of ['initContainers', 'containers'])
    removeNamed(spec, key, [SIDECAR_NAME], injected, `${where}: a container named "${SIDECAR_NAME}"`)
  removeNamed(spec, 'volumes', [JOURNAL_VOLUME, TOKEN_VOLUME], injected, `${where}: a volume named oomwatch-*`)

  const sidecarOptions = { ...options, appContainer: app }
  spec.set('shareProcessNamespace', true)
  const container = doc.createNode(sidecarContainer(sidecarOptions))
  container.commentBefore = COMMENT
  const list = seqAt(doc, spec, options.native ? 'initContainers' : 'containers')
  // A native sidecar first among the init containers: it then watches those after it too.
  if (options.native) list.items.unshift(container)
  else list.items.push(container)
  const volumes = seqAt(doc, spec, 'volumes')
  for (const volume of sidecarVolumes(sidecarOptions)) volumes.items.push(doc.createNode(volume))
  nameAppContainers(doc, spec)
  // Quoted: an annotation is a string, and a version such as 1.0 would read as a number.
  doc.setIn([...paths.metadata, 'annotations', INJECTED_ANNOTATION], quoted(doc, options.version))
  doc.setIn([...paths.metadata, 'labels', INJECTED_LABEL], quoted(doc, 'true'))
}

function quoted(doc: Document, text: string): Scalar {
  const node = doc.createNode(text) as Scalar
  node.type = 'QUOTE_DOUBLE'
  return node
}

/**
 * Each app container gets its own name in its environment: the kernel knows a process's
 * cgroup but not its container's name, and the agent labels metrics with it.
 */
function nameAppContainers(doc: Document, spec: YAMLMap): void {
  const containers = spec.get('containers', true)
  if (!isSeq(containers)) return
  for (const container of containers.items) {
    if (!isMap(container)) continue
    const name = String(container.get('name'))
    if (name === SIDECAR_NAME) continue
    const env = seqAt(doc, container, 'env')
    const ours = env.items.find(item => isMap(item) && item.get('name') === CONTAINER_NAME_VARIABLE)
    if (isMap(ours)) ours.set('value', name)
    else env.items.push(doc.createNode({ name: CONTAINER_NAME_VARIABLE, value: name }))
  }
}

/** Removes the items of `spec[key]` with one of `names`, when `injected`; otherwise such an item is a conflict. */
function removeNamed(spec: YAMLMap, key: string, names: string[], injected: boolean, conflict: string): void {
  const list = spec.get(key, true)
  if (!isSeq(list)) return
  const ours = (item: unknown) => isMap(item) && names.includes(String(item.get('name')))
  if (!list.items.some(ours)) return
  if (!injected) throw new InjectError(`${conflict} is already there, not added by oomwatch inject; rename it, or remove it to inject`)
  list.items = list.items.filter(item => !ours(item))
  // The sidecar's comment, when it was first in the list, is read back as the list's own.
  if (list.commentBefore?.includes(COMMENT)) list.commentBefore = withoutLine(list.commentBefore, COMMENT)
  if (list.items.length === 0) spec.delete(key)
}

function withoutLine(comment: string, line: string): string | undefined {
  const kept = comment.split('\n').filter(l => l !== line)
  return kept.length > 0 ? kept.join('\n') : undefined
}

/** The sequence at `map[key]`, made when there is none. */
function seqAt(doc: Document, map: YAMLMap, key: string): YAMLSeq {
  const found = map.get(key, true)
  if (isSeq(found)) return found
  const made = doc.createNode([]) as YAMLSeq
  map.set(key, made)
  return made
}
