// The node operation kinds, queued on the target database: node_init, node_prepare, node_reinit. Params name the source by a
// password-free reference (toConnRef); the executor resolves it (a direct run uses the
// connection the command resolved, password included).

import path from 'node:path'
import {z} from 'zod'
import {connRefSchema} from '../../direct/params.js'
import {defineOperation} from '../../direct/registry.js'
import {COMPRESSIONS} from '../snapshot/codec.js'
import {jobReporter} from '../snapshot/jobs.js'
import {initNode, type InitResult} from './init.js'
import {clearLostInitAttempt, type ReinitResult, reinitNode} from './maintenance.js'
import {type PrepareResult, runPrepare} from './prepare.js'
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
  // A retry (after a lost executor or a connection failure) removes what the earlier attempt left
  // and starts over: the copy restarts from a new slot, as a resumed copy could not be consistent.
  maxAttempts: 2,
  leaseSeconds: 60,
  title: (p) => `node init ${p.nodeId} from ${p.fromNodeId}`,
  async handler(ctx): Promise<InitResult> {
    const p = ctx.params
    const source = await ctx.resolveConnection(p.source)
    if (ctx.job.attempt > 1) await clearLostInitAttempt(ctx.db, source, p.nodeId, ctx.job.id, ctx.job.attempt, (m) => ctx.log(m))
    return initNode({
      target: ctx.db,
      source,
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

export const prepareParams = z
  .object({
    nodeId: z.string().regex(NODE_ID_RE),
    fromNodeId: z.string().regex(NODE_ID_RE),
    source: connRefSchema,
    snapshotId: z.string().regex(/^[A-Za-z0-9_-]{1,100}$/),
    output: z.string().min(1).refine((p) => path.isAbsolute(p), {message: 'must be an absolute path (on the executor host)'}),
    parallel: z.number().int().min(1).max(64).default(4),
    compression: z.enum(COMPRESSIONS).default('zstd'),
    level: z.number().int().optional(),
    schemas: z.array(z.string().min(1)).default([]),
    tables: z.array(z.string().min(1)).default([]),
    excludeTables: z.array(z.string().min(1)).default([]),
    splitLargerThan: z.number().int().min(0).optional(),
  })
  .strict()

export const nodePrepare = defineOperation({
  name: 'node_prepare',
  summary: 'First step of the two-step init: a snapshot of the source with a kept slot, recorded on the target node.',
  params: prepareParams,
  // A retry would find the node preparing and the directory written: start again by hand (node cancel first).
  maxAttempts: 1,
  leaseSeconds: 60,
  title: (p) => `node prepare ${p.nodeId} from ${p.fromNodeId} → ${p.output}`,
  async handler(ctx): Promise<PrepareResult> {
    const p = ctx.params
    return runPrepare(ctx, {
      nodeId: p.nodeId,
      fromNodeId: p.fromNodeId,
      source: await ctx.resolveConnection(p.source),
      output: p.output,
      snapshotId: p.snapshotId,
      parallel: p.parallel,
      compression: p.compression,
      level: p.level,
      selection: {schemas: p.schemas, tables: p.tables, excludeTables: p.excludeTables},
      splitLargerThan: p.splitLargerThan,
      jobId: ctx.job.id,
    })
  },
})

export const reinitParams = z
  .object({
    nodeId: z.string().regex(NODE_ID_RE),
    source: connRefSchema,
    full: z.boolean().default(false),
    tables: z.array(z.string().min(1)).default([]),
    schema: z.string().min(1).optional(),
    timeoutSeconds: z.number().int().min(1).default(600),
  })
  .strict()
  .refine((p) => [p.full, p.tables.length > 0, Boolean(p.schema)].filter(Boolean).length === 1, {message: 'exactly one of full, tables or schema'})

const REINIT_PHASES = [
  {name: 'prepare', weight: 2},
  {name: 'truncate', weight: 3},
  {name: 'copy', weight: 95},
]

export const nodeReinit = defineOperation({
  name: 'node_reinit',
  summary: 'Copy tables of a replicating node again through table synchronization, or reset it (full).',
  params: reinitParams,
  // A retry after a lost executor finds the node reinitializing: run the reinit again by hand.
  maxAttempts: 1,
  leaseSeconds: 60,
  title: (p) => `node reinit ${p.nodeId}${p.full ? ' (full)' : p.schema ? ` schema ${p.schema}` : ` ${p.tables.join(', ')}`}`,
  async handler(ctx): Promise<ReinitResult> {
    const p = ctx.params
    return reinitNode({
      target: ctx.db,
      source: await ctx.resolveConnection(p.source),
      nodeId: p.nodeId,
      mode: p.full ? {full: true} : p.schema ? {schema: p.schema} : {tables: p.tables},
      timeoutMs: p.timeoutSeconds * 1000,
      // --full empties the tables and stops: no copy phase.
      reporter: jobReporter(ctx.progress, p.full ? REINIT_PHASES.filter((ph) => ph.name !== 'copy') : REINIT_PHASES),
      signal: ctx.signal,
      log: (m) => ctx.log(m),
      jobId: ctx.job.id,
    })
  },
})
