// Every operation kind the CLI knows, as lazy imports: a worker loads the kinds it runs, a command
// loads its own. A capability adds one line here for its kind (the module calls defineOperation).

import {type AnyOperationKind, registeredOperation} from '../registry.js'

export const OPERATION_MODULES: Record<string, () => Promise<unknown>> = {
  noop: () => import('./noop.js'),
  snapshot_generate: () => import('../../lib/snapshot/jobs.js'),
  snapshot_apply: () => import('../../lib/snapshot/jobs.js'),
  merge_run: () => import('../../lib/merge/job.js'),
  node_init: () => import('../../lib/node/jobs.js'),
  node_prepare: () => import('../../lib/node/jobs.js'),
  node_reinit: () => import('../../lib/node/jobs.js'),
}

export const knownOperations = (): string[] => Object.keys(OPERATION_MODULES).sort()

/** The kind registered under name, importing its module first; undefined when unknown. */
export async function loadOperation(name: string): Promise<AnyOperationKind | undefined> {
  const load = OPERATION_MODULES[name]
  if (!load) return registeredOperation(name)
  await load()
  return registeredOperation(name)
}
