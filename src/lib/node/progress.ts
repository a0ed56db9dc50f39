// Reading an init's progress (steep_repl.init_progress with the node's state) for `node progress`.

import type pg from 'pg'

export interface InitProgress {
  nodeId: string
  state: string
  sourceNode: string | null
  phase: string
  overallPercent: number
  tablesTotal: number
  tablesCompleted: number
  currentTable: string | null
  rowsCopied: number
  bytesCopied: number
  rowsPerSecond: number
  etaSeconds: number | null
  lagBytes: number | null
  lsn: string | null
  slot: string | null
  publication: string | null
  subscription: string | null
  jobId: string | null
  /** node prepare: the snapshot the node completes from, and where it was written. */
  snapshotId: string | null
  snapshotPath: string | null
  startedAt: string
  updatedAt: string
  error: string | null
}

export async function readProgress(c: pg.Client, nodeId: string): Promise<InitProgress | null> {
  const r = await c.query(
    `SELECT p.*, n.init_state FROM steep_repl.init_progress p JOIN steep_repl.nodes n USING (node_id) WHERE p.node_id = $1`,
    [nodeId],
  )
  const x = r.rows[0]
  if (!x) return null
  return {
    nodeId: x.node_id,
    state: x.init_state,
    sourceNode: x.source_node_id,
    phase: x.phase,
    overallPercent: Math.round(x.overall_percent * 10) / 10,
    tablesTotal: x.tables_total,
    tablesCompleted: x.tables_completed,
    currentTable: x.current_table,
    rowsCopied: Number(x.rows_copied ?? 0),
    bytesCopied: Number(x.bytes_copied ?? 0),
    rowsPerSecond: Math.round(x.throughput_rows_sec ?? 0),
    etaSeconds: x.eta_seconds,
    lagBytes: x.lag_bytes === null ? null : Number(x.lag_bytes),
    lsn: x.lsn,
    slot: x.slot_name,
    publication: x.publication_name,
    subscription: x.subscription_name,
    jobId: x.job_id,
    snapshotId: x.snapshot_id ?? null,
    snapshotPath: x.snapshot_path ?? null,
    startedAt: x.started_at.toISOString(),
    updatedAt: x.updated_at.toISOString(),
    error: x.error_message,
  }
}
