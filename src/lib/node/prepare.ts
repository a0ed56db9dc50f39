// node prepare: the first step of the two-step init. In the target's registry the node moves to
// preparing and records the snapshot it will complete from; on the source, the snapshot
// capability's own generate job (snapshot_generate's handler, run inside this job) writes the
// directory and keeps a slot and a publication at its LSN. Then the user applies it on the target
// (steep-repl snapshot apply) and runs node complete, which subscribes at that slot.
// Any failure leaves the node failed with the reason, and no slot or publication on the source.

import type {z} from 'zod'
import type {JobContext} from '../../direct/registry.js'
import {openClient} from '../connection/connect.js'
import type {ConnParams} from '../connection/resolve.js'
import {install} from '../install/migrations.js'
import {redact} from '../redact.js'
import {dropSlotAndPublication} from '../snapshot/cleanup.js'
import type {Compression} from '../snapshot/codec.js'
import type {Selection} from '../snapshot/catalog.js'
import {generateParams, type GenerateJobResult, snapshotGenerate} from '../snapshot/jobs.js'
import {preflightInit, writeProgress} from './init.js'
import {registerNode, setInitState} from './registry.js'
import {initNames} from './state.js'

export interface PrepareOptions {
  nodeId: string
  fromNodeId: string
  source: ConnParams
  output: string
  snapshotId: string
  parallel: number
  compression: Compression
  level?: number
  selection: Selection
  splitLargerThan?: number
  jobId?: string
}

export interface PrepareResult {
  nodeId: string
  fromNodeId: string
  state: 'preparing'
  snapshotId: string
  output: string
  lsn: string
  slot: string
  publication: string
  tables: number
  parts: number
  rows: number
  rawBytes: number
  fileBytes: number
  /** What to run next, on the target's side. */
  next: string[]
}

/** The names a prepare gives what it keeps on the source (the publication follows snapshot generate's naming). */
export function prepareNames(nodeId: string, fromNodeId: string, snapshotId: string): {slot: string; publication: string; subscription: string} {
  const n = initNames(nodeId, fromNodeId)
  return {slot: n.slot, subscription: n.subscription, publication: `steep_pub_${snapshotId.toLowerCase()}`}
}

/**
 * The checks of node prepare, on connections of its own: the target node's state, the source
 * (wal_level, not a standby, privileges), the slot and subscription names free, an empty target
 * (snapshot apply loads only into an empty database). Registers the source node in the target's
 * registry when missing; installs the steep_repl schema on the source when missing and registers
 * the source node there (snapshot generate records its snapshots there, naming the node). Returns the number of tables the snapshot will hold.
 */
export async function preflightPrepare(target: ConnParams, o: Pick<PrepareOptions, 'nodeId' | 'fromNodeId' | 'source' | 'selection'>, log: (m: string) => void = () => {}): Promise<number> {
  const control = await openClient(target, {applicationName: 'steep-repl node prepare'})
  control.on('error', () => {})
  const src = await openClient(o.source, {applicationName: 'steep-repl node prepare'})
  src.on('error', () => {})
  try {
    await install(control)
    const r = await preflightInit(control, src, {source: o.source, nodeId: o.nodeId, fromNodeId: o.fromNodeId, schemaSync: 'strict', selection: o.selection}, log)
    const inst = await install(src)
    if (inst.applied.length) log(`installed the steep_repl schema (version ${inst.to}) on the source: snapshot generate records its snapshots there`)
    // The snapshot's record on the source names the source node: it is registered there too.
    if (!(await src.query(`SELECT 1 FROM steep_repl.nodes WHERE node_id = $1`, [o.fromNodeId])).rows.length) {
      await registerNode(src, {nodeId: o.fromNodeId, name: o.fromNodeId, host: o.source.host, port: o.source.port, priority: 100})
      log(`registered the source node ${o.fromNodeId} in the source's own registry`)
    }
    return r.candidates.length
  } finally {
    await src.end().catch(() => {})
    await control.end().catch(() => {})
  }
}

/** The node_prepare job: ctx.db is the target (the registry); the generate runs against the source. */
export async function runPrepare(ctx: JobContext<unknown>, o: PrepareOptions): Promise<PrepareResult> {
  const names = prepareNames(o.nodeId, o.fromNodeId, o.snapshotId)
  const control = await openClient(ctx.db, {applicationName: 'steep-repl node prepare'})
  control.on('error', () => {})
  let touched = false
  let generated: GenerateJobResult | undefined
  try {
    await preflightPrepare(ctx.db, o, (m) => ctx.log(m))
    ctx.checkpoint()
    await setInitState(control, o.nodeId, 'preparing', {sourceNode: o.fromNodeId, started: true})
    touched = true
    // Recorded before the slot exists, so node cancel finds what to drop even if this process dies.
    await control.query(
      `INSERT INTO steep_repl.init_progress (node_id, phase, parallel_workers, source_node_id, slot_name, publication_name, subscription_name, job_id, snapshot_id, snapshot_path)
       VALUES ($1, 'preparing', $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (node_id) DO UPDATE SET phase = 'preparing', overall_percent = 0, tables_total = 0, tables_completed = 0, current_table = NULL,
         current_table_percent = 0, rows_copied = 0, bytes_copied = 0, throughput_rows_sec = 0, started_at = now(), eta_seconds = NULL,
         updated_at = now(), parallel_workers = EXCLUDED.parallel_workers, error_message = NULL, source_node_id = EXCLUDED.source_node_id,
         slot_name = EXCLUDED.slot_name, publication_name = EXCLUDED.publication_name, subscription_name = EXCLUDED.subscription_name,
         lsn = NULL, lag_bytes = NULL, job_id = EXCLUDED.job_id, created_tables = NULL, snapshot_id = EXCLUDED.snapshot_id, snapshot_path = EXCLUDED.snapshot_path`,
      [o.nodeId, o.parallel, o.fromNodeId, names.slot, names.publication, names.subscription, o.jobId ?? null, o.snapshotId, o.output],
    )
    // The snapshot capability's generate, as its own job kind runs it, against the source.
    const params = generateParams.parse({
      snapshotId: o.snapshotId,
      output: o.output,
      parallel: o.parallel,
      compression: o.compression,
      level: o.level,
      schemas: o.selection.schemas ?? [],
      tables: o.selection.tables ?? [],
      excludeTables: o.selection.excludeTables ?? [],
      keepSlot: true,
      slotName: names.slot,
      splitLargerThan: o.splitLargerThan,
      nodeId: o.fromNodeId,
    })
    generated = await snapshotGenerate.handler({...ctx, db: o.source, params} as JobContext<z.infer<typeof generateParams>>)
    await control.query(
      `INSERT INTO steep_repl.init_slots (slot_name, node_id, lsn, used_by_node, used_at) VALUES ($1, $2, $3, $4, NULL)
       ON CONFLICT (slot_name) DO UPDATE SET node_id = EXCLUDED.node_id, lsn = EXCLUDED.lsn, created_at = now(), used_by_node = EXCLUDED.used_by_node, used_at = NULL`,
      [names.slot, o.fromNodeId, generated.lsn, o.nodeId],
    )
    await writeProgress(control, o.nodeId, {lsn: generated.lsn, tables_total: generated.tables, rows_copied: generated.rows, bytes_copied: generated.rawBytes})
    return {
      nodeId: o.nodeId,
      fromNodeId: o.fromNodeId,
      state: 'preparing',
      snapshotId: generated.snapshotId,
      output: generated.output,
      lsn: generated.lsn,
      slot: names.slot,
      publication: names.publication,
      tables: generated.tables,
      parts: generated.parts,
      rows: generated.rows,
      rawBytes: generated.rawBytes,
      fileBytes: generated.fileBytes,
      next: [`steep-repl snapshot apply -d TARGET --input ${generated.output}`, `steep-repl node complete ${o.nodeId} --from ${o.fromNodeId} -d TARGET --source SOURCE`],
    }
  } catch (err) {
    // The generate drops its slot and publication when it fails; after it succeeded, they go here.
    if (generated) {
      const src = await openClient(o.source, {applicationName: 'steep-repl node prepare'}).catch(() => null)
      if (src) {
        src.on('error', () => {})
        await dropSlotAndPublication(src, names.slot, names.publication).catch(() => {})
        await src.end().catch(() => {})
      }
    }
    if (touched) {
      const reason = ctx.signal.aborted ? `cancelled: ${redact((err as Error).message)}` : redact((err as Error).message)
      await control.query(`DELETE FROM steep_repl.init_slots WHERE slot_name = $1`, [names.slot]).catch(() => {})
      await setInitState(control, o.nodeId, 'failed').catch(() => {})
      await writeProgress(control, o.nodeId, {phase: 'failed', error_message: reason}).catch(() => {})
    }
    throw err
  } finally {
    await control.end().catch(() => {})
  }
}
