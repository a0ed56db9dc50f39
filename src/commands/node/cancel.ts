import {Args, Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {type CancelResult, cancelInit} from '../../lib/node/maintenance.js'

export default class NodeCancel extends BaseCommand<typeof NodeCancel> {
  static override summary = 'Stop a running node init and remove what it created; the node ends failed.'
  static override description = `Cancels the init's job (a live executor stops at once and cleans up itself), then removes whatever is still there from what the init recorded in steep_repl.init_progress: the subscription on the target, the replication slot and the publication on the source (with --source; without it they stay and the command says so), and the tables the init created on the target. Also cleans up after an init whose process was killed. The node ends failed with the reason; node init can start it again.`

  static override examples = [
    '<%= config.bin %> node cancel db2 -d postgres://postgres@db2/app --source postgres://repl@db1/app',
    '<%= config.bin %> node cancel db2 -d db2 --source db1 --json',
  ]

  static override args = {id: Args.string({description: 'Node id (the target of the init).', required: true})}

  static override flags = {
    db: dbFlag,
    source: Flags.string({summary: 'Connection to the source database, to drop the slot and publication there.', helpValue: 'CONN'}),
  }

  async run(): Promise<CancelResult> {
    const db = await this.connection(this.flags.db)
    const src = this.flags.source ? await this.connection(this.flags.source, '--source') : null
    const r = await cancelInit(db, src, this.args.id, {log: (m) => this.note(m)})
    if (!this.jsonEnabled()) {
      const done = [r.jobCancelled ? `job ${r.jobCancelled} cancelled` : '', r.subscriptionDropped ? 'subscription dropped' : '', r.slotDropped ? 'slot dropped' : '', r.publicationDropped ? 'publication dropped' : '', r.tablesDropped ? `${r.tablesDropped} created tables dropped` : '', r.objectsDropped ? `${r.objectsDropped} other created objects dropped` : '']
        .filter(Boolean)
        .join(', ')
      this.log(`initialization of ${r.nodeId} cancelled${done ? `: ${done}` : ''}; node is failed`)
    }
    return r
  }
}
