import {Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {withClient} from '../../lib/connection/connect.js'
import {listSnapshots, type SnapshotListing, slotWarning} from '../../lib/snapshot/registry-io.js'
import {formatBytes, renderTable} from '../../lib/ui/output.js'

export default class SnapshotList extends BaseCommand<typeof SnapshotList> {
  static override summary = 'List the snapshots recorded on a source database, newest first.'
  static override description = 'Shows each snapshot with its status, phase, progress, size, LSN and the state of the slot it kept. Warns about kept slots that are old and unused, since they make the server retain WAL.'
  static override examples = ['<%= config.bin %> snapshot list -d postgres://postgres@db1/app', '<%= config.bin %> snapshot list --json']
  static override flags = {db: dbFlag, limit: Flags.integer({summary: 'At most this many.', default: 100, min: 1, max: 10000})}

  async run(): Promise<{snapshots: SnapshotListing[]}> {
    const conn = await this.connection(this.flags.db)
    const rows = await withClient(conn, (c) => listSnapshots(c, this.flags.limit))
    if (!this.jsonEnabled()) {
      if (!rows.length) this.log('no snapshots recorded')
      else
        this.log(
          renderTable(
            ['snapshot', 'status', 'phase', '%', 'size', 'LSN', 'slot', 'created'],
            rows.map((s) => [
              s.snapshot_id,
              s.status,
              s.phase,
              Math.round(s.overall_percent),
              formatBytes(s.bytes_written),
              s.lsn,
              s.slot_name ? `${s.slot_name}${s.slot_exists ? (s.slot_active ? ' (active)' : ` (retains ${formatBytes(s.slot_retained_bytes)})`) : ' (gone)'}` : '',
              s.created_at.toISOString().replace('T', ' ').slice(0, 19),
            ]),
          ),
        )
    }
    for (const s of rows) {
      const w = slotWarning(s)
      if (w) this.note(`warning: ${w}`)
    }
    return {snapshots: rows}
  }
}
