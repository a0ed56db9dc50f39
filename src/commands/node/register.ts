import {Args, Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {withClient} from '../../lib/connection/connect.js'
import {checkNodeId, ensureRegistry, type NodeRow, registerNode} from '../../lib/node/registry.js'

export default class NodeRegister extends BaseCommand<typeof NodeRegister> {
  static override summary = 'Register a node in the registry (or update it): id, name, host, port, priority.'
  static override description = `Upserts the node into steep_repl.nodes of the database given with -d (installing the steep_repl schema there if needed), through the SQL function steep_repl.register_node. Registering an existing id updates its name, host, port and priority and keeps its health and init state.`

  static override examples = [
    '<%= config.bin %> node register db1 --host 10.0.0.1 --port 5432 -d postgres://postgres@10.0.0.1/app',
    '<%= config.bin %> node register db2 --name "replica in eu-west" --host db2.internal --priority 80 -d app --json',
  ]

  static override args = {id: Args.string({description: 'Node id (letters, digits, _ . -).', required: true})}

  static override flags = {
    db: dbFlag,
    name: Flags.string({summary: 'Display name (default: the id).'}),
    host: Flags.string({summary: 'Host name or address of the node’s PostgreSQL server.', required: true}),
    port: Flags.integer({summary: 'PostgreSQL port of the node.', default: 5432, min: 1, max: 65535}),
    priority: Flags.integer({summary: 'Priority 1-100 (higher first in lists and coordinator elections).', default: 50, min: 1, max: 100}),
  }

  async run(): Promise<NodeRow> {
    // Before connecting: a bad id is a usage error, and must not first install the schema.
    checkNodeId(this.args.id)
    const db = await this.connection(this.flags.db)
    const node = await withClient(db, async (c) => {
      await ensureRegistry(c)
      return registerNode(c, {nodeId: this.args.id, name: this.flags.name, host: this.flags.host, port: this.flags.port, priority: this.flags.priority})
    })
    if (!this.jsonEnabled()) this.log(`node ${node.nodeId} registered: ${node.host}:${node.port}, priority ${node.priority}, init state ${node.initState}`)
    return node
  }
}
