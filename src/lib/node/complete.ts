// node complete: the second step of the two-step path. A snapshot generated on the source with a
// kept slot (snapshot generate) is applied to the target and the subscription created at its
// slot; the node goes preparing → catching_up → synchronized in the target's registry.

import {openClient} from '../connection/connect.js'
import type {ConnParams} from '../connection/resolve.js'
import {StateError, UsageError} from '../errors.js'
import {install} from '../install/migrations.js'
import {redact} from '../redact.js'
import {applySnapshot} from '../snapshot/apply.js'
import type {Reporter} from '../snapshot/generate.js'
import {readManifest} from '../snapshot/manifest-io.js'
import {waitForCatchUp, writeProgress} from './init.js'
import {registerNode, requireNode, setInitState} from './registry.js'
import {DEFAULT_MAX_LAG_BYTES, initNames} from './state.js'

export interface CompleteOptions {
  target: ConnParams
  source: ConnParams
  nodeId: string
  fromNodeId: string
  input: string
  parallel: number
  resume?: boolean
  maxLagBytes?: number
  catchupTimeoutMs?: number
  reporter?: Reporter
  signal?: AbortSignal
}

export interface CompleteResult {
  nodeId: string
  fromNodeId: string
  state: 'synchronized'
  snapshotId: string
  lsn: string
  slot: string
  subscription: string
  tables: number
  rows: number
  lagBytes: number
}

export async function completeNode(o: CompleteOptions): Promise<CompleteResult> {
  const m = await readManifest(o.input)
  if (!m.slot || !m.publication) throw new UsageError('this snapshot was generated with --no-slot: there is no slot to hand over to', {hint: 'Generate it with a kept slot (the default).'})
  const control = await openClient(o.target, {applicationName: 'steep-repl node complete'})
  control.on('error', () => {})
  const src = await openClient(o.source, {applicationName: 'steep-repl node complete'})
  src.on('error', () => {})
  let touched = false
  try {
    await install(control)
    const node = await requireNode(control, o.nodeId)
    if (!(o.resume ? ['uninitialized', 'failed', 'preparing'] : ['uninitialized', 'failed']).includes(node.initState)) {
      throw new StateError(`node ${o.nodeId} is ${node.initState}; node complete starts from uninitialized or failed`)
    }
    if (!(await src.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [m.slot.name])).rows.length) {
      throw new StateError(`the snapshot's slot ${m.slot.name} does not exist on the source`, {hint: 'Is --source the database the snapshot was generated from?'})
    }
    if (!(await control.query(`SELECT 1 FROM steep_repl.nodes WHERE node_id = $1`, [o.fromNodeId])).rows.length) {
      await registerNode(control, {nodeId: o.fromNodeId, name: `${o.fromNodeId} (${o.source.host})`, host: o.source.host, port: o.source.port, priority: 100})
    }
    const subscription = initNames(o.nodeId, o.fromNodeId).subscription
    await setInitState(control, o.nodeId, 'preparing', {sourceNode: o.fromNodeId, started: true})
    touched = true
    await control.query(
      `INSERT INTO steep_repl.init_progress (node_id, phase, parallel_workers, source_node_id, slot_name, publication_name, subscription_name, lsn)
       VALUES ($1, 'preparing', $2, $3, $4, $5, $6, $7)
       ON CONFLICT (node_id) DO UPDATE SET phase = 'preparing', overall_percent = 0, error_message = NULL, started_at = now(), updated_at = now(),
         source_node_id = EXCLUDED.source_node_id, slot_name = EXCLUDED.slot_name, publication_name = EXCLUDED.publication_name,
         subscription_name = EXCLUDED.subscription_name, lsn = EXCLUDED.lsn, job_id = NULL, created_tables = NULL`,
      [o.nodeId, o.parallel, o.fromNodeId, m.slot.name, m.publication, subscription, m.lsn],
    )
    await control.query(`INSERT INTO steep_repl.init_slots (slot_name, node_id, lsn, used_by_node, used_at) VALUES ($1, $2, $3, $4, now())
       ON CONFLICT (slot_name) DO UPDATE SET used_by_node = EXCLUDED.used_by_node, used_at = now()`, [m.slot.name, o.fromNodeId, m.lsn, o.nodeId])
    const r = await applySnapshot({
      target: o.target,
      input: o.input,
      parallel: o.parallel,
      verify: true,
      resume: Boolean(o.resume),
      subscribeFrom: o.source,
      subscriptionName: subscription,
      reporter: o.reporter,
      signal: o.signal,
    })
    await setInitState(control, o.nodeId, 'catching_up')
    const maxLag = o.maxLagBytes ?? DEFAULT_MAX_LAG_BYTES
    await writeProgress(control, o.nodeId, {phase: 'catching_up', overall_percent: 90, tables_total: r.tables, tables_completed: r.tables, rows_copied: r.rows})
    const lagBytes = await waitForCatchUp(control, src, m.slot.name, subscription, maxLag, o.catchupTimeoutMs ?? 10 * 60_000, o.signal, async (lag) => {
      await writeProgress(control, o.nodeId, {lag_bytes: lag}).catch(() => {})
    })
    await setInitState(control, o.nodeId, 'synchronized', {completed: true})
    await writeProgress(control, o.nodeId, {phase: 'complete', overall_percent: 100, lag_bytes: lagBytes})
    return {nodeId: o.nodeId, fromNodeId: o.fromNodeId, state: 'synchronized', snapshotId: m.snapshotId, lsn: m.lsn, slot: m.slot.name, subscription, tables: r.tables, rows: r.rows, lagBytes}
  } catch (err) {
    // The apply keeps its per-part state: --resume continues it. Only the state says what happened.
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
