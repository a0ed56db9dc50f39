// merge report: the record of a merge and its audited decisions, read from node A.

import type pg from 'pg'
import type {OverlapCounts} from './diff.js'
import {NotInstalledError, StateError, UsageError} from '../errors.js'
import {hasMergeSchema} from './catalog.js'

/** What a merge counted and did, over all its tables (the record and the result share it). */
export interface MergeTotals extends OverlapCounts {
  transferredAToB: number
  transferredBToA: number
  conflictsResolved: number
  conflictsSkipped: number
}

export interface MergeRecord {
  mergeId: string
  nodeA: string
  nodeB: string
  tables: string[]
  strategy: string
  timestampColumn: string | null
  dryRun: boolean
  status: string
  startedAt: string
  completedAt: string | null
  startedBy: string
  jobId: number | null
  totals: MergeTotals
  summary: unknown[]
  errors: string[]
}

export interface AuditCount {
  table: string
  category: string
  resolution: string | null
  rows: number
}

export interface AuditEntry {
  table: string
  pk: Record<string, unknown>
  category: string
  resolution: string | null
  nodeA: unknown
  nodeB: unknown
  resolvedAt: string
  resolvedBy: string | null
}

export interface MergeReport {
  merge: MergeRecord
  audit: AuditCount[]
  /** Conflict decisions (all, or only those left for manual resolution), paged. */
  conflicts: {total: number; offset: number; limit: number; rows: AuditEntry[]}
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export async function mergeReport(client: pg.Client, mergeId: string, o: {limit: number; offset: number; unresolvedOnly?: boolean}): Promise<MergeReport> {
  if (!UUID.test(mergeId)) throw new UsageError(`"${mergeId}" is not a merge id (a UUID, as printed by merge run)`)
  if (!(await hasMergeSchema(client))) throw new NotInstalledError('this database has no steep_repl merge tables: merge reports are kept on node A of the merge', {hint: 'Point --node-a at the node A of the merge.'})
  const m = await client.query<Record<string, any>>(
    `SELECT merge_id::text, node_a, node_b, tables, strategy, timestamp_column, dry_run, status, started_at, completed_at, started_by, job_id,
            total_rows, total_matches, total_conflicts, total_a_only, total_b_only, rows_transferred_a_to_b, rows_transferred_b_to_a,
            conflicts_resolved, conflicts_skipped, summary, errors
       FROM steep_repl.merges WHERE merge_id = $1::uuid`,
    [mergeId],
  )
  const r = m.rows[0]
  if (!r) throw new StateError(`no merge ${mergeId} on this node`, {hint: 'Merge records are kept on node A of the merge; check --node-a.'})
  const n = (v: unknown) => Number(v ?? 0)
  const merge: MergeRecord = {
    mergeId: r.merge_id,
    nodeA: r.node_a,
    nodeB: r.node_b,
    tables: r.tables,
    strategy: r.strategy,
    timestampColumn: r.timestamp_column,
    dryRun: r.dry_run,
    status: r.status,
    startedAt: new Date(r.started_at).toISOString(),
    completedAt: r.completed_at ? new Date(r.completed_at).toISOString() : null,
    startedBy: r.started_by,
    jobId: r.job_id === null ? null : Number(r.job_id),
    totals: {
      total: n(r.total_rows),
      match: n(r.total_matches),
      conflict: n(r.total_conflicts),
      aOnly: n(r.total_a_only),
      bOnly: n(r.total_b_only),
      transferredAToB: n(r.rows_transferred_a_to_b),
      transferredBToA: n(r.rows_transferred_b_to_a),
      conflictsResolved: n(r.conflicts_resolved),
      conflictsSkipped: n(r.conflicts_skipped),
    },
    summary: r.summary,
    errors: r.errors,
  }
  const counts = await client.query<{t: string; category: string; resolution: string | null; n: string}>(
    `SELECT table_schema || '.' || table_name AS t, category, resolution, count(*) AS n FROM steep_repl.merge_audit_log
      WHERE merge_id = $1::uuid GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
    [mergeId],
  )
  const filter = o.unresolvedOnly ? `AND resolution = 'skipped'` : ''
  const total = await client.query<{n: string}>(`SELECT count(*) AS n FROM steep_repl.merge_audit_log WHERE merge_id = $1::uuid AND category = 'conflict' ${filter}`, [mergeId])
  const rows = await client.query<Record<string, any>>(
    `SELECT table_schema || '.' || table_name AS t, pk_value, category, resolution, node_a_value, node_b_value, resolved_at, resolved_by
       FROM steep_repl.merge_audit_log WHERE merge_id = $1::uuid AND category = 'conflict' ${filter}
      ORDER BY id LIMIT $2 OFFSET $3`,
    [mergeId, o.limit, o.offset],
  )
  return {
    merge,
    audit: counts.rows.map((c) => ({table: c.t, category: c.category, resolution: c.resolution, rows: Number(c.n)})),
    conflicts: {
      total: Number(total.rows[0]?.n ?? 0),
      offset: o.offset,
      limit: o.limit,
      rows: rows.rows.map((x) => ({
        table: x.t,
        pk: x.pk_value,
        category: x.category,
        resolution: x.resolution,
        nodeA: x.node_a_value,
        nodeB: x.node_b_value,
        resolvedAt: new Date(x.resolved_at).toISOString(),
        resolvedBy: x.resolved_by,
      })),
    },
  }
}
