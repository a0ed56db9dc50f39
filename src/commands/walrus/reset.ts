import {Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {withClient} from '../../lib/connection/connect.js'
import {requireWalrusSchema} from '../../lib/walrus/server.js'
import {resetState, type ResetResult} from '../../lib/walrus/store.js'

export default class WalrusReset extends BaseCommand<typeof WalrusReset> {
  static override summary = "Forget the watcher's baseline, quiet intervals and rate-limit state."
  static override description = `Clears the state walrus watch keeps in steep_repl.walrus_state: the requested-checkpoint baseline, the quiet-interval count, the cooldown clock and the hourly window. A running watcher notices at its next cycle and takes a new baseline there (so the checkpoints counted so far are not charged to one interval). max_wal_size itself is not changed. --history also deletes the recorded decisions.`

  static override examples = [
    '<%= config.bin %> walrus reset -d postgres://postgres@localhost/postgres',
    '<%= config.bin %> walrus reset -d prod --history --json',
  ]

  static override flags = {
    db: dbFlag,
    history: Flags.boolean({summary: 'Also delete every row of steep_repl.walrus_history.'}),
  }

  async run(): Promise<ResetResult> {
    const conn = await this.connection(this.flags.db)
    const r = await withClient(conn, async (c) => {
      await requireWalrusSchema(c)
      return resetState(c, {history: this.flags.history})
    })
    this.log(`walrus state reset (generation ${r.generation})${this.flags.history ? `; ${r.historyDeleted} history rows deleted` : ''}; the watcher takes a new baseline at its next reading`)
    return r
  }
}
