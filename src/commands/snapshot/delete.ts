import {Args, Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {withClient} from '../../lib/connection/connect.js'
import {deleteSnapshot} from '../../lib/snapshot/registry-io.js'

export default class SnapshotDelete extends BaseCommand<typeof SnapshotDelete> {
  static override summary = "Forget a snapshot on its source, and with --drop-slot remove the slot it kept."
  static override description =
    'Deletes the snapshot record. A snapshot meant to seed a replica keeps a replication slot (and a publication) on the source, and the source retains WAL until a subscriber consumes it: --drop-slot drops both. The snapshot directory itself is not touched.'
  static override examples = ['<%= config.bin %> snapshot delete snap_20261122_010203_abcdef01 -d postgres://postgres@db1/app --drop-slot']
  static override args = {id: Args.string({description: 'Snapshot id.', required: true})}
  static override flags = {db: dbFlag, 'drop-slot': Flags.boolean({summary: 'Also drop the kept replication slot and its publication.'})}

  async run(): Promise<Awaited<ReturnType<typeof deleteSnapshot>> & {snapshotId: string}> {
    const conn = await this.connection(this.flags.db)
    const r = await withClient(conn, (c) => deleteSnapshot(c, this.args.id, this.flags['drop-slot']))
    this.log(`snapshot ${this.args.id} deleted${r.slotDropped ? '; slot dropped' : ''}${r.publicationDropped ? '; publication dropped' : ''}`)
    if (r.slotKept) this.note(`warning: slot ${r.slotKept} still exists and retains WAL on the source; drop it with --drop-slot when no subscriber needs it`)
    return {snapshotId: this.args.id, ...r}
  }
}
