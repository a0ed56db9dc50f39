import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {withClient} from '../../lib/connection/connect.js'
import {listNodes, type NodeRow} from '../../lib/node/registry.js'
import {requireInstalled} from '../../lib/node/common.js'
import {renderTable} from '../../lib/ui/output.js'

export default class NodeList extends BaseCommand<typeof NodeList> {
  static override summary = 'List the registered nodes, by priority (highest first), then id.'
  static override description = `Reads steep_repl.nodes of the database given with -d: address, priority, health status, init state and source, and the age of the last heartbeat.`

  static override examples = ['<%= config.bin %> node list -d postgres://postgres@db1/app', '<%= config.bin %> node list -d app --json']

  static override flags = {db: dbFlag}

  async run(): Promise<{nodes: NodeRow[]}> {
    const db = await this.connection(this.flags.db)
    const nodes = await withClient(db, async (c) => {
      await requireInstalled(c)
      return listNodes(c)
    })
    if (!this.jsonEnabled()) {
      if (!nodes.length) this.log('no nodes registered')
      else
        this.log(
          renderTable(
            ['id', 'name', 'address', 'priority', 'status', 'healthy', 'init state', 'source', 'last seen'],
            nodes.map((n) => [n.nodeId, n.name, `${n.host}:${n.port}`, n.priority, n.status, n.isHealthy ? 'yes' : 'no', n.initState, n.initSourceNode ?? '', n.secondsSinceSeen === null ? 'never' : `${n.secondsSinceSeen}s ago`]),
          ),
        )
    }
    return {nodes}
  }
}
