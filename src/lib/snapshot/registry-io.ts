// Reading and removing snapshot records on a source: steep_repl.snapshots joined with the state of
// the slot each kept, so list/show can warn about a slot that holds WAL back.

import type pg from 'pg'
import {StateError} from '../errors.js'
import {dropSlotAndPublication} from './cleanup.js'
import {requireInstalled, type SnapshotRow} from './record.js'

export interface SnapshotListing extends Omit<SnapshotRow, 'size_bytes' | 'bytes_written' | 'rows_written'> {
  size_bytes: number
  bytes_written: number
  rows_written: number
  slot_exists: boolean
  slot_active: boolean | null
  slot_retained_bytes: number | null
  slot_age_seconds: number | null
}

/** A kept slot older than this is worth a warning: it keeps WAL until a subscriber consumes it. */
export const OLD_SLOT_SECONDS = 24 * 3600

const SELECT = `
  SELECT s.snapshot_id, s.source_node_id, s.lsn, s.storage_path, s.checksum, s.compression, s.status, s.phase,
         s.error_message, s.overall_percent, s.current_table, s.table_count, s.tables_completed,
         s.size_bytes::float8 AS size_bytes, s.bytes_written::float8 AS bytes_written, s.rows_written::float8 AS rows_written,
         s.created_at, s.started_at, s.completed_at, s.slot_name, s.publication_name, s.job_id::text AS job_id,
         rs.slot_name IS NOT NULL AS slot_exists, rs.active AS slot_active,
         CASE WHEN rs.slot_name IS NOT NULL AND NOT pg_is_in_recovery()
              THEN pg_wal_lsn_diff(pg_current_wal_lsn(), rs.restart_lsn)::float8 END AS slot_retained_bytes,
         CASE WHEN rs.slot_name IS NOT NULL THEN extract(epoch FROM now() - s.created_at)::float8 END AS slot_age_seconds
    FROM steep_repl.snapshots s
    LEFT JOIN pg_replication_slots rs ON rs.slot_name = s.slot_name`

export async function listSnapshots(client: pg.ClientBase, limit = 100): Promise<SnapshotListing[]> {
  await requireInstalled(client, 'snapshot list')
  return (await client.query<SnapshotListing>(`${SELECT} ORDER BY s.created_at DESC LIMIT $1`, [limit])).rows
}

export async function getSnapshot(client: pg.ClientBase, id: string): Promise<SnapshotListing> {
  await requireInstalled(client, 'snapshot show')
  const r = await client.query<SnapshotListing>(`${SELECT} WHERE s.snapshot_id = $1`, [id])
  if (!r.rows[0]) throw new StateError(`no snapshot ${id} is recorded on this database`, {hint: 'See: steep-repl snapshot list'})
  return r.rows[0]
}

export function slotWarning(s: SnapshotListing): string | null {
  if (!s.slot_exists || s.slot_active) return null
  if ((s.slot_age_seconds ?? 0) < OLD_SLOT_SECONDS) return null
  const days = Math.floor((s.slot_age_seconds ?? 0) / 86400)
  return `slot ${s.slot_name} of snapshot ${s.snapshot_id} is ${days} day(s) old, unused, and retains ${Math.round((s.slot_retained_bytes ?? 0) / 1048576)} MB of WAL: apply the snapshot with --subscribe, or drop it (snapshot delete ${s.snapshot_id} --drop-slot)`
}

export async function deleteSnapshot(client: pg.Client, id: string, dropSlot: boolean): Promise<{deleted: boolean; slotDropped: boolean; publicationDropped: boolean; slotKept: string | null}> {
  const s = await getSnapshot(client, id)
  if (s.status === 'generating') throw new StateError(`snapshot ${id} is being generated; cancel its job first (steep-repl jobs cancel ${s.job_id ?? '<id>'})`)
  let dropped = {slotDropped: false, publicationDropped: false}
  if (dropSlot) {
    if (s.slot_active) throw new StateError(`slot ${s.slot_name} is in use by a subscriber; refusing to drop it`, {hint: 'Drop or disable the subscription on the subscriber first.'})
    dropped = await dropSlotAndPublication(client, s.slot_name, s.publication_name)
  }
  await client.query(`DELETE FROM steep_repl.snapshots WHERE snapshot_id = $1`, [id])
  return {deleted: true, ...dropped, slotKept: !dropSlot && s.slot_exists ? s.slot_name : null}
}
