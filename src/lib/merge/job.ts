// merge run as a job: the kind `merge_run`, queued on node A (which keeps the merge record and
// audit). Node B is a connection reference in the params (a config name, node:<id>, or a string
// without password), resolved by the executor; a direct run uses the command's own resolution.

import {z} from 'zod'
import {defineOperation} from '../../direct/registry.js'
import {connRefSchema} from '../../direct/params.js'
import {type MergeResult, runMerge} from './run.js'
import {STRATEGIES} from './strategy.js'

export const mergeParams = z
  .object({
    nodeB: connRefSchema,
    tables: z.array(z.object({schema: z.string().min(1), name: z.string().min(1)}).strict()).min(1),
    strategy: z.enum(STRATEGIES),
    dryRun: z.boolean().default(false),
    timestampColumn: z.string().min(1).optional(),
    batchRows: z.number().int().min(1).optional(),
    blockRows: z.number().int().min(1).optional(),
    leafRows: z.number().int().min(1).optional(),
    fanout: z.number().int().min(2).optional(),
    mergeId: z.string().uuid().optional(),
  })
  .strict()

export const mergeRun = defineOperation({
  name: 'merge_run',
  summary: 'Make two nodes agree on tables (the queue database is node A).',
  params: mergeParams,
  // Retried only after a lost attempt (executor killed, lease expired) or a connection failure:
  // each table commits on B then A, and the retry re-analyses from the data, reuses the merge id and
  // leaves the tables the lost attempt merged (those with audit rows) as they are.
  maxAttempts: 2,
  title: (p) => `merge ${p.tables.map((t) => `${t.schema}.${t.name}`).join(', ')} (${p.strategy}${p.dryRun ? ', dry run' : ''})`,
  async handler(ctx): Promise<MergeResult> {
    const p = ctx.params
    return runMerge({
      nodeA: ctx.db,
      nodeB: await ctx.resolveConnection(p.nodeB),
      tables: p.tables,
      strategy: p.strategy,
      dryRun: p.dryRun,
      timestampColumn: p.timestampColumn,
      batchRows: p.batchRows,
      blockRows: p.blockRows,
      leafRows: p.leafRows,
      fanout: p.fanout,
      mergeId: p.mergeId,
      jobId: Number(ctx.job.id),
      signal: ctx.signal,
      progress: ctx.progress,
    })
  },
})
