import {Args} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {withClient} from '../../lib/connection/connect.js'
import {getSnapshot, type SnapshotListing, slotWarning} from '../../lib/snapshot/registry-io.js'
import {formatBytes, renderTable} from '../../lib/ui/output.js'

export default class SnapshotShow extends BaseCommand<typeof SnapshotShow> {
  static override summary = 'Show one snapshot recorded on a source database.'
  static override examples = ['<%= config.bin %> snapshot show snap_20261122_010203_abcdef01 -d postgres://postgres@db1/app']
  static override args = {id: Args.string({description: 'Snapshot id.', required: true})}
  static override flags = {db: dbFlag}

  async run(): Promise<SnapshotListing> {
    const conn = await this.connection(this.flags.db)
    const s = await withClient(conn, (c) => getSnapshot(c, this.args.id))
    if (!this.jsonEnabled()) {
      const rows: Array<[string, string | number | null]> = [
        ['status', s.status],
        ['phase', s.phase],
        ['progress', `${Math.round(s.overall_percent)}% (${s.tables_completed}/${s.table_count} parts)`],
        ['current table', s.current_table],
        ['written', `${formatBytes(s.bytes_written)}, ${s.rows_written} rows`],
        ['LSN', s.lsn],
        ['path', s.storage_path],
        ['compression', s.compression],
        ['checksum', s.checksum],
        ['slot', s.slot_name ? `${s.slot_name} (${s.slot_exists ? (s.slot_active ? 'active' : `retains ${formatBytes(s.slot_retained_bytes)}`) : 'gone'})` : 'none'],
        ['publication', s.publication_name],
        ['job', s.job_id],
        ['created', s.created_at.toISOString()],
        ['completed', s.completed_at?.toISOString() ?? null],
        ['error', s.error_message],
      ]
      this.log(renderTable(['snapshot', s.snapshot_id], rows))
    }
    const w = slotWarning(s)
    if (w) this.note(`warning: ${w}`)
    return s
  }
}
