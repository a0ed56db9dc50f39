import {Args, Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {withClient} from '../../lib/connection/connect.js'
import {requireInstalled} from '../../lib/node/common.js'
import {getNode, listNodes, type NodeRow, replicationState, type ReplicationState} from '../../lib/node/registry.js'
import {formatBytes, renderTable} from '../../lib/ui/output.js'
import {StateError} from '../../lib/errors.js'

export default class NodeStatus extends BaseCommand<typeof NodeStatus> {
  static override summary = 'Health and replication state of one node or all: heartbeat age, subscriptions, slots, lag.'
  static override description = `Health comes from the age of the node's last heartbeat (steep_repl.node_status: healthy when seen within --max-age and not marked offline or unreachable). The replication state is that of the database given with -d, which should be the node's own database: its subscriptions (with the seconds since the last message from the publisher) and the replication slots of its server for that database (with the WAL each retains, in bytes).`

  static override examples = [
    '<%= config.bin %> node status -d postgres://postgres@db2/app',
    '<%= config.bin %> node status db2 -d db2 --max-age 60 --json',
  ]

  static override args = {id: Args.string({description: 'Node id (default: every node).'})}

  static override flags = {
    db: dbFlag,
    'max-age': Flags.integer({summary: 'Seconds since the last heartbeat under which a node counts as healthy.', default: 30, min: 1}),
  }

  async run(): Promise<{nodes: NodeRow[]; replication: ReplicationState}> {
    const db = await this.connection(this.flags.db)
    const res = await withClient(db, async (c) => {
      await requireInstalled(c)
      let nodes: NodeRow[]
      if (this.args.id) {
        const n = await getNode(c, this.args.id, this.flags['max-age'])
        if (!n) throw new StateError(`node ${this.args.id} is not registered in this database`, {hint: 'steep-repl node list shows the registered nodes.'})
        nodes = [n]
      } else nodes = await listNodes(c, this.flags['max-age'])
      return {nodes, replication: await replicationState(c)}
    })
    if (!this.jsonEnabled()) {
      this.log(
        res.nodes.length
          ? renderTable(
              ['id', 'address', 'status', 'healthy', 'last seen', 'init state', 'source'],
              res.nodes.map((n) => [n.nodeId, `${n.host}:${n.port}`, n.status, n.isHealthy ? 'yes' : 'no', n.secondsSinceSeen === null ? 'never' : `${n.secondsSinceSeen}s ago`, n.initState, n.initSourceNode ?? '']),
            )
          : 'no nodes registered',
      )
      const r = res.replication
      this.log('')
      this.log(
        r.subscriptions.length
          ? renderTable(
              ['subscription', 'enabled', 'slot', 'received lsn', 'last message'],
              r.subscriptions.map((s) => [s.name, s.enabled ? 'yes' : 'no', s.slot ?? '', s.receivedLsn ?? '', s.lagSeconds === null ? '' : `${s.lagSeconds}s ago`]),
            )
          : 'no subscriptions in this database',
      )
      this.log('')
      this.log(r.slots.length ? renderTable(['slot', 'plugin', 'active', 'retained WAL', 'wal status'], r.slots.map((s) => [s.name, s.plugin ?? '', s.active ? 'yes' : 'no', s.lagBytes === null ? '' : formatBytes(s.lagBytes), s.walStatus ?? ''])) : 'no replication slots for this database')
    }
    return res
  }
}
