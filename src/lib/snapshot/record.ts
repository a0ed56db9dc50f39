// The snapshot's row in steep_repl.snapshots on the source: created when generate starts, its
// progress written while it runs (throttled), its outcome at the end. Upstream wrote only the final
// row; a watcher here (or the upstream TUI reading this table) sees the run as it happens.

import type pg from 'pg'
import {NotInstalledError} from '../errors.js'
import type {Reporter} from './generate.js'

export interface SnapshotRow {
  snapshot_id: string
  source_node_id: string | null
  lsn: string | null
  storage_path: string | null
  checksum: string | null
  compression: string | null
  status: string
  phase: string
  error_message: string | null
  overall_percent: number
  current_table: string | null
  table_count: number
  tables_completed: number
  size_bytes: string
  bytes_written: string
  rows_written: string
  created_at: Date
  started_at: Date | null
  completed_at: Date | null
  slot_name: string | null
  publication_name: string | null
  job_id: string | null
}

export async function requireInstalled(client: pg.ClientBase, what: string): Promise<void> {
  const r = await client.query(`SELECT to_regclass('steep_repl.snapshots') IS NOT NULL AS ok`)
  if (!r.rows[0].ok) {
    throw new NotInstalledError(`${what} needs the steep_repl schema (version with snapshots) on this database`, {
      hint: 'Run: steep-repl install -d <this connection>',
    })
  }
}

export async function recordStart(
  client: pg.ClientBase,
  r: {snapshotId: string; nodeId: string | null; storagePath: string; compression: string; slot: string | null; publication: string | null; jobId?: string | null},
): Promise<void> {
  // An upsert: a row queued by steep_repl.start_snapshot, or left by an earlier attempt, is taken over.
  await client.query(
    `INSERT INTO steep_repl.snapshots (snapshot_id, source_node_id, storage_path, compression, status, phase, started_at, slot_name, publication_name, job_id)
     VALUES ($1, $2, $3, $4, 'generating', 'schema', now(), $5, $6, $7)
     ON CONFLICT (snapshot_id) DO UPDATE SET source_node_id = EXCLUDED.source_node_id, storage_path = EXCLUDED.storage_path,
       compression = EXCLUDED.compression, status = 'generating', phase = 'schema', started_at = now(), completed_at = NULL,
       error_message = NULL, overall_percent = 0, slot_name = EXCLUDED.slot_name, publication_name = EXCLUDED.publication_name,
       job_id = coalesce(EXCLUDED.job_id, steep_repl.snapshots.job_id)`,
    [r.snapshotId, r.nodeId, r.storagePath, r.compression, r.slot, r.publication, r.jobId ?? null],
  )
}

export async function recordFinish(
  client: pg.ClientBase,
  snapshotId: string,
  outcome:
    | {status: 'complete'; lsn: string; checksum: string; tables: number; sizeBytes: number; bytesWritten: number; rows: number}
    | {status: 'failed' | 'cancelled'; error: string},
): Promise<void> {
  if (outcome.status === 'complete') {
    await client.query(
      `UPDATE steep_repl.snapshots SET status = 'complete', phase = 'idle', overall_percent = 100, lsn = $2, checksum = $3,
              table_count = $4::int, tables_completed = $4::int, size_bytes = $5::bigint, bytes_written = $6::bigint,
              rows_total = $7::bigint, rows_written = $7::bigint,
              compression_ratio = CASE WHEN $5::bigint > 0 THEN least(1, $6::bigint::real / $5::bigint) ELSE 0 END, eta_seconds = 0,
              current_table = NULL, completed_at = now()
        WHERE snapshot_id = $1`,
      [snapshotId, outcome.lsn, outcome.checksum, outcome.tables, outcome.sizeBytes, outcome.bytesWritten, outcome.rows],
    )
  } else {
    await client.query(
      `UPDATE steep_repl.snapshots SET status = $2, error_message = $3, completed_at = now() WHERE snapshot_id = $1`,
      [snapshotId, outcome.status, outcome.error],
    )
  }
}

/**
 * A Reporter that keeps the snapshots row current: phase, percent, current table, bytes, rows,
 * throughput and ETA, at most every `intervalMs`. Writes are serialised on its own client.
 */
export class SnapshotRowReporter implements Reporter {
  private parts = new Map<string, {bytes: number; rows: number; est: number; done: boolean; label: string}>()
  private phaseName = 'schema'
  private last = 0
  private writing: Promise<void> = Promise.resolve()
  private readonly started = Date.now()

  constructor(
    private readonly client: pg.ClientBase,
    private readonly snapshotId: string,
    private readonly intervalMs = 500,
  ) {}

  phase(name: Parameters<Reporter['phase']>[0]): void {
    const map: Record<string, string> = {prepare: 'schema', schema: 'schema', 'pre-data': 'schema', data: 'data', 'post-data': 'indexes', sequences: 'sequences', manifest: 'verify', verify: 'verify', done: 'idle'}
    this.phaseName = map[name] ?? 'idle'
    this.flush(true)
  }

  part(e: Parameters<Reporter['part']>[0]): void {
    this.parts.set(e.id, {bytes: e.bytes, rows: e.rows, est: e.estBytes, done: e.state === 'done', label: e.label})
    this.flush(e.state !== 'progress')
  }

  private flush(force: boolean): void {
    const now = Date.now()
    if (!force && now - this.last < this.intervalMs) return
    this.last = now
    let bytes = 0
    let est = 0
    let rows = 0
    let done = 0
    let current: string | null = null
    for (const p of this.parts.values()) {
      bytes += p.bytes
      est += Math.max(p.est, p.bytes)
      rows += p.rows
      if (p.done) done++
      else current = p.label
    }
    const percent = est > 0 ? Math.min(99.9, (100 * bytes) / est) : 0
    const rate = bytes / Math.max(0.001, (now - this.started) / 1000)
    const eta = rate > 0 ? Math.round((est - bytes) / rate) : 0
    const args = [this.snapshotId, this.phaseName, percent, current, this.parts.size, done, Math.round(est), bytes, rows, rate, Math.max(0, eta)]
    this.writing = this.writing
      .then(() =>
        this.client.query(
          `UPDATE steep_repl.snapshots SET phase = $2, overall_percent = $3, current_table = $4, table_count = greatest(table_count, $5),
                  tables_completed = least($6, greatest(table_count, $5)), size_bytes = $7, bytes_written = $8, rows_written = $9,
                  throughput_bytes_sec = $10, eta_seconds = $11
            WHERE snapshot_id = $1 AND status = 'generating'`,
          args,
        ),
      )
      .then(
        () => {},
        () => {},
      )
  }

  /** Waits for the writes in flight. */
  async settle(): Promise<void> {
    await this.writing
  }
}

/** Fans one Reporter call out to several. */
export function teeReporter(...reporters: Array<Reporter | undefined>): Reporter {
  const rs = reporters.filter((r): r is Reporter => Boolean(r))
  return {
    phase: (n, d) => rs.forEach((r) => r.phase(n, d)),
    part: (e) => rs.forEach((r) => r.part(e)),
  }
}
