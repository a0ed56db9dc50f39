// The node operation kinds, queued on the target database: node_init. Params name the source by a
// password-free reference (toConnRef); the executor resolves it (a direct run uses the
// connection the command resolved, password included).

import {z} from 'zod'
import {connRefSchema} from '../../direct/params.js'
import {defineOperation} from '../../direct/registry.js'
import {jobReporter} from '../snapshot/jobs.js'
import {initNode, type InitResult} from './init.js'
import {NODE_ID_RE} from './state.js'

export const initParams = z
  .object({
    nodeId: z.string().regex(NODE_ID_RE),
    fromNodeId: z.string().regex(NODE_ID_RE),
    source: connRefSchema,
    parallel: z.number().int().min(1).max(64).default(4),
    schemaSync: z.enum(['strict', 'auto', 'manual']).default('strict'),
    schemas: z.array(z.string().min(1)).default([]),
    tables: z.array(z.string().min(1)).default([]),
    excludeTables: z.array(z.string().min(1)).default([]),
    splitLargerThan: z.number().int().min(0).optional(),
    maxLagBytes: z.number().int().min(0).optional(),
    catchupTimeoutSeconds: z.number().int().min(1).optional(),
  })
  .strict()

const INIT_PHASES = [
  {name: 'prepare', weight: 2},
  {name: 'schema', weight: 3},
  {name: 'data', weight: 70},
  {name: 'sequences', weight: 1},
  {name: 'post-data', weight: 15},
  {name: 'analyze', weight: 3},
  {name: 'catch-up', weight: 6},
]

export const nodeInit = defineOperation({
  name: 'node_init',
  summary: 'Clone a source database into this one and hand over to logical replication at the slot LSN.',
  params: initParams,
  // A retry after a lost executor would find the node failed and its slot gone: start again by hand.
  maxAttempts: 1,
  leaseSeconds: 60,
  title: (p) => `node init ${p.nodeId} from ${p.fromNodeId}`,
  async handler(ctx): Promise<InitResult> {
    const p = ctx.params
    return initNode({
      target: ctx.db,
      source: await ctx.resolveConnection(p.source),
      nodeId: p.nodeId,
      fromNodeId: p.fromNodeId,
      parallel: p.parallel,
      schemaSync: p.schemaSync,
      selection: {schemas: p.schemas, tables: p.tables, excludeTables: p.excludeTables},
      splitLargerThan: p.splitLargerThan,
      maxLagBytes: p.maxLagBytes,
      catchupTimeoutMs: p.catchupTimeoutSeconds ? p.catchupTimeoutSeconds * 1000 : undefined,
      reporter: jobReporter(ctx.progress, INIT_PHASES),
      signal: ctx.signal,
      log: (m) => ctx.log(m),
      jobId: ctx.job.id,
    })
  },
})
