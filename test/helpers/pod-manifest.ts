import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor'
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule'
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet'
import { Deployment } from 'kubernetes-models/apps/v1/Deployment'
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet'
import { CronJob } from 'kubernetes-models/batch/v1/CronJob'
import { Job } from 'kubernetes-models/batch/v1/Job'
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap'
import { Namespace } from 'kubernetes-models/v1/Namespace'
import { Pod } from 'kubernetes-models/v1/Pod'
import { Secret } from 'kubernetes-models/v1/Secret'
import { Service } from 'kubernetes-models/v1/Service'
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount'

/*
 * Offline validation of Kubernetes manifests against the API's OpenAPI schema, as
 * compiled by kubernetes-models. Its validators catch wrong types and missing required
 * fields but, like the schema, accept unknown keys, and a misspelled key is an unknown
 * key (`readOnlyRootFileSystem: true` is silently ignored by the API server too, unless
 * it runs strict field validation). So each document is validated a second time through
 * a proxy that records which keys the validator looks up: a compiled validator reads
 * every property its schema declares, so a key it never read is one the schema does not
 * know. Objects the validator enumerates are maps (labels, resource lists) and accept
 * any key; objects it reads nothing of have no schema (free-form) and are not judged.
 */

type Validatable = { validate(): void }
type ModelClass = { new (data: never): Validatable; prototype: Validatable }

const MODELS: Record<string, ModelClass> = {
  'v1/Namespace': Namespace,
  'v1/Secret': Secret,
  'v1/ConfigMap': ConfigMap,
  'v1/ServiceAccount': ServiceAccount,
  'v1/Pod': Pod,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'apps/v1/DaemonSet': DaemonSet,
  'batch/v1/Job': Job,
  'batch/v1/CronJob': CronJob,
  // The Prometheus Operator's CRDs, as compiled by @kubernetes-models/prometheus-operator.
  'monitoring.coreos.com/v1/PodMonitor': PodMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
}

/** What one document's checks found; empty arrays mean it is valid. */
export interface ManifestProblems {
  /** Schema errors (types, required fields), as kubernetes-models words them. */
  schema: string[]
  /** Keys the schema does not declare, as JSON pointers (`/spec/template/spec/shareProcessNamespaces`). */
  unknownKeys: string[]
}

/**
 * Validates one parsed document. Throws for a kind this helper has no model for, so a
 * document added to a manifest cannot go unchecked.
 */
export function checkManifest(doc: unknown): ManifestProblems {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return { schema: ['the document is not an object'], unknownKeys: [] }
  const { apiVersion, kind } = doc as { apiVersion?: unknown; kind?: unknown }
  const Model = MODELS[`${String(apiVersion)}/${String(kind)}`]
  if (Model === undefined) throw new Error(`no schema model for apiVersion ${String(apiVersion)} kind ${String(kind)}: add it to MODELS`)
  try {
    new Model(doc as never).validate()
  } catch (error) {
    return { schema: [(error as Error).message], unknownKeys: [] }
  }
  const seen = new Map<object, Visit>()
  // The prototype's validate runs the compiled validator on `this`, here the recording proxy.
  Model.prototype.validate.call(record(doc, '', seen))
  return { schema: [], unknownKeys: unknownKeys(seen) }
}

interface Visit {
  path: string
  read: Set<string>
  enumerated: boolean
}

function record(value: object, path: string, seen: Map<object, Visit>): object {
  const visit: Visit = { path, read: new Set(), enumerated: false }
  seen.set(value, visit)
  const proxies = new Map<string, object>()
  return new Proxy(value, {
    get(target, key, receiver) {
      const child: unknown = Reflect.get(target, key, receiver)
      if (typeof key !== 'string') return child
      visit.read.add(key)
      if (typeof child !== 'object' || child === null || !Object.hasOwn(target, key)) return child
      let proxy = proxies.get(key)
      if (proxy === undefined) {
        proxy = record(child, `${path}/${key}`, seen)
        proxies.set(key, proxy)
      }
      return proxy
    },
    has(target, key) {
      if (typeof key === 'string') visit.read.add(key)
      return Reflect.has(target, key)
    },
    ownKeys(target) {
      visit.enumerated = true
      return Reflect.ownKeys(target)
    },
  })
}

function unknownKeys(seen: Map<object, Visit>): string[] {
  const unknown: string[] = []
  for (const [value, visit] of seen) {
    if (Array.isArray(value) || visit.enumerated || visit.read.size === 0) continue
    for (const key of Object.keys(value)) if (!visit.read.has(key)) unknown.push(`${visit.path}/${key}`)
  }
  return unknown.sort()
}
