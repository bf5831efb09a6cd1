import { Document, isMap, isSeq, parseAllDocuments } from 'yaml'
import { injectTemplate, InjectError, type InjectOptions, type TemplatePaths } from './pod-template.js'

const IN_SPEC: TemplatePaths = { spec: ['spec', 'template', 'spec'], metadata: ['spec', 'template', 'metadata'] }

/** Where each workload kind keeps its pod template; other kinds pass through unchanged. */
const TEMPLATES: Record<string, TemplatePaths> = {
  Pod: { spec: ['spec'], metadata: ['metadata'] },
  Deployment: IN_SPEC,
  StatefulSet: IN_SPEC,
  DaemonSet: IN_SPEC,
  ReplicaSet: IN_SPEC,
  ReplicationController: IN_SPEC,
  Job: IN_SPEC,
  CronJob: {
    spec: ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
    metadata: ['spec', 'jobTemplate', 'spec', 'template', 'metadata'],
  },
}

/**
 * Kubernetes manifests in (YAML, one or many documents, or JSON), the same out with the
 * sidecar added to every pod template: YAML keeps its comments and key order, JSON comes
 * back as JSON. A `List` (what `kubectl get -o yaml` prints for several objects) is walked.
 *
 * @throws {InjectError} on input that is not YAML or JSON, or a template it must not change
 */
export function injectManifests(text: string, options: InjectOptions, source = 'stdin'): string {
  if (/^\s*[{[]/.test(text)) {
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch (error) {
      throw new InjectError(`${source}: not valid JSON: ${(error as Error).message}`)
    }
    const doc = new Document(value)
    injectDocument(doc, `${source}`, options)
    return `${JSON.stringify(doc.toJS(), null, 2)}\n`
  }
  const docs = parseAllDocuments(text)
  if (!Array.isArray(docs)) return text // only comments: nothing to inject into
  docs.forEach((doc, at) => {
    const error = doc.errors[0]
    if (error) throw new InjectError(`${source}, document ${at + 1}: not valid YAML: ${error.message}`)
    injectDocument(doc, `${source}, document ${at + 1}`, options)
  })
  // No folding of long lines, no padding inside [ ]: what was not injected stays as written.
  return docs.map(doc => doc.toString({ lineWidth: 0, flowCollectionPadding: false })).join('')
}

function injectDocument(doc: Document, where: string, options: InjectOptions): void {
  if (!isMap(doc.contents)) return
  const kind = doc.get('kind')
  if (kind === 'List') {
    const items = doc.get('items', true)
    if (!isSeq(items)) return
    items.items.forEach((item, at) => {
      if (isMap(item)) injectObject(doc, ['items', at], String(item.get('kind')), `${where}, item ${at + 1}`, options)
    })
    return
  }
  if (typeof kind === 'string') injectObject(doc, [], kind, where, options)
}

function injectObject(doc: Document, at: (string | number)[], kind: string, where: string, options: InjectOptions): void {
  const paths = TEMPLATES[kind]
  if (!paths) return
  const name = doc.getIn([...at, 'metadata', 'name'])
  const label = `${where} (${kind}${typeof name === 'string' ? ` ${name}` : ''})`
  injectTemplate(doc, { spec: [...at, ...paths.spec], metadata: [...at, ...paths.metadata] }, label, options)
}

export { InjectError }
