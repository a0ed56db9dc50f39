// The snapshot operation kinds: snapshot_generate (queued on the source) and snapshot_apply (queued
// on the target). Params hold paths and options, never a password: a source to subscribe from is a
// connection reference that the executor resolves itself.

import {randomBytes} from 'node:crypto'
import path from 'node:path'
import {z} from 'zod'
import {defineOperation, type JobContext, type ProgressReporter} from '../../direct/registry.js'
import {connRefSchema} from '../../direct/params.js'
import {openClient} from '../connection/connect.js'
import {redact} from '../redact.js'
import {applySnapshot, type ApplyResult} from './apply.js'
import {dropSlotAndPublication} from './cleanup.js'
import {COMPRESSIONS} from './codec.js'
import {DATA_FORMAT_CHOICES, generateSnapshot, type Reporter} from './generate.js'
import {newSnapshotId} from './manifest.js'
import {recordFinish, recordStart, requireInstalled, SnapshotRowReporter, teeReporter} from './record.js'
import {SPLIT_BY} from './plan.js'
import {SLOT_NAME_RE} from './source.js'
import {VERSION} from '../version.js'


/** Adapts the engines' Reporter to the job's ProgressReporter (deltas per item). */
export function jobReporter(p: ProgressReporter, phases: Array<{name: string; weight: number}>): Reporter {
  p.plan(phases)
  const seen = new Map<string, {bytes: number; rows: number}>()
  return {
    phase(name, detail, totals) {
      if (name === 'done') {
        p.endPhase('done')
        p.message(null)
        return
      }
      p.phase(name, totals)
      p.message(detail ?? null)
    },
    part(e) {
      if (e.state === 'start') {
        seen.set(e.id, {bytes: 0, rows: 0})
        p.item(e.id, {label: e.label, bytesTotal: e.estBytes > 0 ? Math.round(e.estBytes) : null})
        return
      }
      const prev = seen.get(e.id) ?? {bytes: 0, rows: 0}
      if (e.bytes > prev.bytes || e.rows > prev.rows) p.add({bytes: e.bytes - prev.bytes, rows: e.rows - prev.rows}, e.id)
      seen.set(e.id, {bytes: e.bytes, rows: e.rows})
      if (e.state === 'done') p.itemDone(e.id)
    },
  }
}

export const generateParams = z
  .object({
    snapshotId: z.string().regex(/^[A-Za-z0-9_-]{1,100}$/).optional(),
    output: z.string().min(1).refine((p) => path.isAbsolute(p), {message: 'must be an absolute path (on the executor host)'}),
    parallel: z.number().int().min(1).max(64).default(4),
    compression: z.enum(COMPRESSIONS).default('zstd'),
    level: z.number().int().optional(),
    schemas: z.array(z.string().min(1)).default([]),
    tables: z.array(z.string().min(1)).default([]),
    excludeTables: z.array(z.string().min(1)).default([]),
    keepSlot: z.boolean().default(true),
    slotName: z.string().regex(SLOT_NAME_RE).optional(),
    splitLargerThan: z.number().int().min(0).optional(),
    splitBy: z.enum(SPLIT_BY).default('pages'),
    dataFormat: z.enum(DATA_FORMAT_CHOICES).default('auto'),
    dataChecksum: z.boolean().default(false),
    nodeId: z.string().min(1).optional(),
    force: z.boolean().default(false),
  })
  .strict()

export interface GenerateJobResult {
  snapshotId: string
  output: string
  lsn: string
  slot: string | null
  publication: string | null
  tables: number
  parts: number
  rows: number
  rawBytes: number
  fileBytes: number
  sequences: number
}

const GENERATE_PHASES = [
  {name: 'prepare', weight: 2},
  {name: 'schema', weight: 3},
  {name: 'data', weight: 90},
  {name: 'sequences', weight: 2},
  {name: 'manifest', weight: 3},
]

async function runGenerate(ctx: JobContext<z.infer<typeof generateParams>>): Promise<GenerateJobResult> {
  const p = ctx.params
  const snapshotId = p.snapshotId ?? newSnapshotId(new Date(), randomBytes(4).toString('hex'))
  const slotName = p.slotName ?? `steep_${snapshotId.toLowerCase()}`
  const publication = p.keepSlot ? `steep_pub_${snapshotId.toLowerCase()}` : null
  const control = await openClient(ctx.db, {applicationName: 'steep-repl snapshot'})
  control.on('error', () => {})
  const rowRep = new SnapshotRowReporter(control, snapshotId)
  try {
    await requireInstalled(control, 'snapshot generate')
    if (ctx.job.attempt > 1 && p.keepSlot) {
      // An earlier attempt died: what it kept on the source is stale.
      await dropSlotAndPublication(control, slotName, publication)
    }
    await recordStart(control, {
      snapshotId,
      nodeId: p.nodeId ?? null,
      storagePath: p.output,
      compression: p.compression,
      slot: p.keepSlot ? slotName : null,
      publication,
      jobId: ctx.job.id,
    })
    const r = await generateSnapshot({
      source: ctx.db,
      output: p.output,
      parallel: p.parallel,
      compression: p.compression,
      level: p.level,
      selection: {schemas: p.schemas, tables: p.tables, excludeTables: p.excludeTables},
      keepSlot: p.keepSlot,
      slotName,
      publicationName: publication ?? undefined,
      splitLargerThan: p.splitLargerThan,
      splitBy: p.splitBy,
      dataFormat: p.dataFormat,
      dataChecksum: p.dataChecksum,
      nodeId: p.nodeId ?? null,
      // A retry replaces what the failed attempt left (never foreign files).
      force: p.force || ctx.job.attempt > 1,
      snapshotId,
      reporter: teeReporter(jobReporter(ctx.progress, GENERATE_PHASES), rowRep),
      signal: ctx.signal,
      toolVersion: VERSION,
    })
    const m = r.manifest
    await rowRep.settle()
    await recordFinish(control, snapshotId, {
      status: 'complete',
      lsn: m.lsn,
      checksum: m.checksum,
      tables: m.totals.parts,
      sizeBytes: m.totals.rawBytes,
      bytesWritten: m.totals.fileBytes,
      rows: m.totals.rows,
    })
    return {
      snapshotId,
      output: r.output,
      lsn: m.lsn,
      slot: m.slot?.name ?? null,
      publication: m.publication,
      tables: m.totals.tables,
      parts: m.totals.parts,
      rows: m.totals.rows,
      rawBytes: m.totals.rawBytes,
      fileBytes: m.totals.fileBytes,
      sequences: m.sequences.length,
    }
  } catch (err) {
    await rowRep.settle()
    // No orphans: whatever failed, a slot kept for this snapshot would retain WAL for nobody.
    if (p.keepSlot) await dropSlotAndPublication(control, slotName, publication).catch(() => {})
    await recordFinish(control, snapshotId, {status: ctx.signal.aborted ? 'cancelled' : 'failed', error: redact((err as Error).message)}).catch(() => {})
    throw err
  } finally {
    await control.end().catch(() => {})
  }
}

export const snapshotGenerate = defineOperation({
  name: 'snapshot_generate',
  summary: 'Consistent parallel snapshot of the queue database into a directory.',
  params: generateParams,
  maxAttempts: 2,
  leaseSeconds: 60,
  title: (p) => `snapshot → ${p.output}`,
  handler: runGenerate,
})

export const applyParams = z
  .object({
    input: z.string().min(1).refine((p) => path.isAbsolute(p), {message: 'must be an absolute path (on the executor host)'}),
    parallel: z.number().int().min(1).max(64).default(4),
    verify: z.boolean().default(true),
    resume: z.boolean().default(false),
    clean: z.boolean().default(false),
    subscribeFrom: connRefSchema.optional(),
    subscriptionName: z.string().regex(/^[a-z0-9_]{1,63}$/).optional(),
  })
  .strict()
  .refine((p) => !(p.clean && p.resume), {message: 'clean and resume contradict each other: clean starts over, resume continues', path: ['clean']})

const APPLY_PHASES = [
  {name: 'verify', weight: 10},
  {name: 'pre-data', weight: 2},
  {name: 'data', weight: 68},
  {name: 'post-data', weight: 16},
  {name: 'sequences', weight: 1},
  {name: 'analyze', weight: 2},
  {name: 'subscribe', weight: 1},
]

export const snapshotApply = defineOperation({
  name: 'snapshot_apply',
  summary: 'Load a snapshot directory into the queue database (and subscribe to its source).',
  params: applyParams,
  maxAttempts: 2,
  leaseSeconds: 60,
  title: (p) => `apply ${p.input}`,
  async handler(ctx): Promise<ApplyResult> {
    const p = ctx.params
    const phases = APPLY_PHASES.filter((ph) => (ph.name !== 'verify' || p.verify) && (ph.name !== 'subscribe' || p.subscribeFrom))
    return applySnapshot({
      target: ctx.db,
      input: p.input,
      parallel: p.parallel,
      verify: p.verify,
      // The per-part state makes a retry a resume (of a --clean apply too, once it had started).
      resume: p.resume || ctx.job.attempt > 1,
      clean: p.clean,
      subscribeFrom: p.subscribeFrom ? await ctx.resolveConnection(p.subscribeFrom) : undefined,
      subscriptionName: p.subscriptionName,
      reporter: jobReporter(ctx.progress, phases),
      signal: ctx.signal,
    })
  },
})
