// node complete: the second step of the two-step path. The snapshot is the one node prepare
// recorded on the node (or, with --input, any snapshot generated with a kept slot); it is applied
// to the target here (--input) or was applied before with `snapshot apply`; then the subscription
// is created at the snapshot's slot (or the one `snapshot apply --subscribe` created is adopted)
// and the node goes preparing → catching_up → synchronized in the target's registry.

import type pg from 'pg'
import {getJob} from '../../direct/queue.js'
import {openClient} from '../connection/connect.js'
import type {ConnParams} from '../connection/resolve.js'
import {StateError, UsageError} from '../errors.js'
import {install} from '../install/migrations.js'
import {redact} from '../redact.js'
import {applySnapshot, createSubscription} from '../snapshot/apply.js'
import type {Reporter} from '../snapshot/generate.js'
import type {Manifest} from '../snapshot/manifest.js'
import {readManifest} from '../snapshot/manifest-io.js'
import {waitForCatchUp} from './catch-up.js'
import {writeProgress} from './init.js'
import {readProgress} from './progress.js'
import {registerNode, requireNode, setInitState} from './registry.js'
import {DEFAULT_MAX_LAG_BYTES, initNames} from './state.js'

export interface CompleteOptions {
  target: ConnParams
  source: ConnParams
  nodeId: string
  fromNodeId: string
  /** The snapshot directory: applied here when not applied yet. Default: the one node prepare recorded. */
  input?: string
  parallel: number
  resume?: boolean
  maxLagBytes?: number
  catchupTimeoutMs?: number
  reporter?: Reporter
  signal?: AbortSignal
  log?: (m: string) => void
}

export interface CompleteResult {
  nodeId: string
  fromNodeId: string
  state: 'synchronized'
  snapshotId: string
  lsn: string
  slot: string
  subscription: string
  /** Whether this run applied the snapshot (false: snapshot apply had done it). */
  applied: boolean
  tables: number | null
  rows: number | null
  lagBytes: number
}

interface SnapshotRef {
  snapshotId: string
  slot: string
  publication: string
  lsn: string
  manifest: Manifest | null
}

const ofManifest = (m: Manifest): SnapshotRef => ({snapshotId: m.snapshotId, slot: m.slot!.name, publication: m.publication!, lsn: m.lsn, manifest: m})

async function applyState(c: pg.Client, snapshotId: string): Promise<string | null> {
  const r = await c.query<{phase: string}>(`SELECT phase FROM steep_repl.snapshot_apply WHERE snapshot_id = $1`, [snapshotId])
  return r.rows[0]?.phase ?? null
}

export async function completeNode(o: CompleteOptions): Promise<CompleteResult> {
  const log = o.log ?? (() => {})
  const control = await openClient(o.target, {applicationName: 'steep-repl node complete'})
  control.on('error', () => {})
  const src = await openClient(o.source, {applicationName: 'steep-repl node complete'})
  src.on('error', () => {})
  let touched = false
  try {
    await install(control)
    const node = await requireNode(control, o.nodeId)
    const progress = await readProgress(control, o.nodeId)
    if (!['uninitialized', 'failed', 'preparing'].includes(node.initState)) {
      throw new StateError(`node ${o.nodeId} is ${node.initState}; node complete starts from preparing (after node prepare), uninitialized or failed`)
    }
    if (progress?.jobId && ['preparing', 'failed'].includes(node.initState)) {
      const job = await getJob(control, progress.jobId)
      if (job && ['pending', 'running'].includes(job.status)) {
        throw new StateError(`the ${job.operation} job ${job.id} of node ${o.nodeId} is still ${job.status}`, {hint: `Wait for it: steep-repl jobs wait ${job.id} -d TARGET`})
      }
    }
    const recorded = progress?.snapshotId && progress.slot && progress.publication && progress.lsn && progress.sourceNode === o.fromNodeId ? progress : null

    // Which snapshot: --input, else the one node prepare recorded.
    let snap: SnapshotRef
    if (o.input) {
      const m = await readManifest(o.input)
      if (!m.slot || !m.publication) throw new UsageError('this snapshot was generated with --no-slot: there is no slot to hand over to', {hint: 'Generate it with a kept slot (the default), or use steep-repl node prepare.'})
      if (recorded && node.initState === 'preparing' && recorded.snapshotId !== m.snapshotId) {
        throw new StateError(`node ${o.nodeId} was prepared from snapshot ${recorded.snapshotId}, but ${o.input} holds snapshot ${m.snapshotId}`, {
          hint: `Pass the prepared directory (${recorded.snapshotPath ?? 'see node progress'}), or node cancel ${o.nodeId} and prepare again.`,
        })
      }
      snap = ofManifest(m)
    } else {
      if (!recorded) {
        throw new UsageError(`node ${o.nodeId} has no prepared snapshot from ${o.fromNodeId}: pass --input DIR`, {hint: `Run steep-repl node prepare ${o.nodeId} --from ${o.fromNodeId} ... first, or give the snapshot directory with --input.`})
      }
      const m = recorded.snapshotPath ? await readManifest(recorded.snapshotPath).catch(() => null) : null
      snap = {snapshotId: recorded.snapshotId!, slot: recorded.slot!, publication: recorded.publication!, lsn: recorded.lsn!, manifest: m && m.snapshotId === recorded.snapshotId ? m : null}
    }
    if (!(await src.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [snap.slot])).rows.length) {
      throw new StateError(`the snapshot's slot ${snap.slot} does not exist on the source`, {hint: 'Is --source the database the snapshot was generated from? A slot dropped since cannot be recreated at that LSN: prepare again.'})
    }
    // Applied already (snapshot apply), or to apply here.
    const phase = await applyState(control, snap.snapshotId)
    if (phase !== 'done' && !o.input) {
      throw new StateError(
        phase ? `the apply of snapshot ${snap.snapshotId} on this database stopped in phase ${phase}` : `snapshot ${snap.snapshotId} is not applied to this database yet`,
        {hint: `steep-repl snapshot apply -d TARGET --input ${recorded?.snapshotPath ?? 'DIR'}${phase ? ' --resume' : ''}, then node complete again (or pass --input to apply it here).`},
      )
    }
    if (!(await control.query(`SELECT 1 FROM steep_repl.nodes WHERE node_id = $1`, [o.fromNodeId])).rows.length) {
      await registerNode(control, {nodeId: o.fromNodeId, name: `${o.fromNodeId} (${o.source.host})`, host: o.source.host, port: o.source.port, priority: 100})
    }
    // A subscription that snapshot apply --subscribe created at this slot is adopted.
    const adopted = await control.query<{subname: string}>(
      `SELECT subname FROM pg_subscription WHERE subslotname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      [snap.slot],
    )
    const subscription = adopted.rows[0]?.subname ?? initNames(o.nodeId, o.fromNodeId).subscription

    if (node.initState !== 'preparing') await setInitState(control, o.nodeId, 'preparing', {sourceNode: o.fromNodeId, started: true})
    touched = true
    await control.query(
      `INSERT INTO steep_repl.init_progress (node_id, phase, parallel_workers, source_node_id, slot_name, publication_name, subscription_name, lsn, snapshot_id, snapshot_path)
       VALUES ($1, 'preparing', $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (node_id) DO UPDATE SET phase = 'preparing', error_message = NULL, updated_at = now(),
         source_node_id = EXCLUDED.source_node_id, slot_name = EXCLUDED.slot_name, publication_name = EXCLUDED.publication_name,
         subscription_name = EXCLUDED.subscription_name, lsn = EXCLUDED.lsn, job_id = NULL, created_tables = NULL,
         snapshot_id = EXCLUDED.snapshot_id, snapshot_path = coalesce(EXCLUDED.snapshot_path, steep_repl.init_progress.snapshot_path)`,
      [o.nodeId, o.parallel, o.fromNodeId, snap.slot, snap.publication, subscription, snap.lsn, snap.snapshotId, o.input ?? null],
    )
    await control.query(
      `INSERT INTO steep_repl.init_slots (slot_name, node_id, lsn, used_by_node, used_at) VALUES ($1, $2, $3, $4, now())
       ON CONFLICT (slot_name) DO UPDATE SET used_by_node = EXCLUDED.used_by_node, used_at = now()`,
      [snap.slot, o.fromNodeId, snap.lsn, o.nodeId],
    )
    let tables = snap.manifest ? snap.manifest.tables.length : null
    let rows = snap.manifest ? snap.manifest.totals.rows : null
    let applied = false
    if (phase !== 'done') {
      const r = await applySnapshot({target: o.target, input: o.input!, parallel: o.parallel, verify: true, resume: Boolean(o.resume), reporter: o.reporter, signal: o.signal})
      applied = true
      tables = r.tables
      rows = r.rows
    } else log(`snapshot ${snap.snapshotId} was applied to this database already; subscribing at slot ${snap.slot}`)
    o.reporter?.phase('catch-up')
    if (!adopted.rows.length) await createSubscription(control, {name: subscription, source: o.source, publication: snap.publication, slot: snap.slot})
    await setInitState(control, o.nodeId, 'catching_up')
    const maxLag = o.maxLagBytes ?? DEFAULT_MAX_LAG_BYTES
    await writeProgress(control, o.nodeId, {phase: 'catching_up', overall_percent: 90, tables_total: tables ?? 0, tables_completed: tables ?? 0, rows_copied: rows ?? 0})
    const lagBytes = await waitForCatchUp(control, src, snap.slot, subscription, maxLag, o.catchupTimeoutMs ?? 10 * 60_000, o.signal, async (lag) => {
      await writeProgress(control, o.nodeId, {lag_bytes: lag}).catch(() => {})
    })
    await setInitState(control, o.nodeId, 'synchronized', {completed: true})
    await writeProgress(control, o.nodeId, {phase: 'complete', overall_percent: 100, lag_bytes: lagBytes})
    o.reporter?.phase('done')
    return {nodeId: o.nodeId, fromNodeId: o.fromNodeId, state: 'synchronized', snapshotId: snap.snapshotId, lsn: snap.lsn, slot: snap.slot, subscription, applied, tables, rows, lagBytes}
  } catch (err) {
    // The slot stays (a retry completes from it; node cancel drops it); the apply keeps its
    // per-part state (--resume continues it). The state says what happened.
    if (touched) {
      await setInitState(control, o.nodeId, 'failed').catch(() => {})
      await writeProgress(control, o.nodeId, {phase: 'failed', error_message: redact((err as Error).message)}).catch(() => {})
    }
    throw err
  } finally {
    await src.end().catch(() => {})
    await control.end().catch(() => {})
  }
}
