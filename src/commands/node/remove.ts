import {Args, Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {withClient} from '../../lib/connection/connect.js'
import {requireInstalled} from '../../lib/node/common.js'
import {removeNode} from '../../lib/node/registry.js'

export default class NodeRemove extends BaseCommand<typeof NodeRemove> {
  static override summary = 'Remove a node from the registry (refused while it is a replication source, unless --force).'
  static override description = `Deletes the node from steep_repl.nodes of the database given with -d. While other nodes were initialized from it, or a steep-repl subscription in this database replicates from it, the removal is refused; --force detaches those references and removes it anyway (subscriptions are left in place: drop them with DROP SUBSCRIPTION if they must go).`

  static override examples = ['<%= config.bin %> node remove db3 -d postgres://postgres@db1/app', '<%= config.bin %> node remove db1 -d app --force --json']

  static override args = {id: Args.string({description: 'Node id.', required: true})}

  static override flags = {db: dbFlag, force: Flags.boolean({summary: 'Remove even while the node is a replication source.'})}

  async run(): Promise<{nodeId: string; removed: boolean; detached: string[]; subscriptions: string[]}> {
    const db = await this.connection(this.flags.db)
    const r = await withClient(db, async (c) => {
      await requireInstalled(c)
      return removeNode(c, this.args.id, this.flags.force)
    })
    if (!this.jsonEnabled()) {
      this.log(`node ${this.args.id} removed${r.detached.length ? `; ${r.detached.join(', ')} no longer name it as their source` : ''}`)
      if (r.subscriptions.length) this.note(`subscription(s) ${r.subscriptions.join(', ')} still replicate from it`)
    }
    return {nodeId: this.args.id, ...r}
  }
}
