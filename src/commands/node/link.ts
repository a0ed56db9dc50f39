import {Args, Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {type LinkResult, linkNodes} from '../../lib/node/link.js'
import {checkNodeId} from '../../lib/node/registry.js'

export default class NodeLink extends BaseCommand<typeof NodeLink> {
  static override summary = 'Make an initialized pair bidirectional: the reverse publication and subscription, origin = none.'
  static override description = `For a node (-d) synchronized from its source (--source), adds the other direction: on the node, a publication of the same tables and a logical replication slot; on the source, a subscription to it with copy_data = false and origin = none, so each side applies only changes made on the other and nothing loops. Refused unless both run PostgreSQL 16 or later, the node is synchronized from that source, the schemas of the replicated tables match (exit 3 otherwise); then it waits, up to --catchup-timeout, until the forward direction has applied what the source had committed (as node init's catch-up; exit 5 when it has not). Writes to the same rows on both sides at once conflict as in any multi-writer setup.`

  static override examples = [
    '<%= config.bin %> node link db2 db1 -d postgres://postgres@db2/app --source postgres://postgres@db1/app',
    '<%= config.bin %> node link db2 db1 -d db2 --source db1 --json',
  ]

  static override args = {
    id: Args.string({description: 'The node that was initialized (its database is -d).', required: true}),
    peer: Args.string({description: 'The node it was initialized from (its database is --source).', required: true}),
  }

  static override flags = {
    db: dbFlag,
    source: Flags.string({summary: 'Connection to the peer (the source of the init).', required: true, helpValue: 'CONN'}),
    'catchup-timeout': Flags.integer({summary: 'Seconds to wait for the forward direction to catch up before refusing.', default: 60, min: 1}),
  }

  async run(): Promise<LinkResult> {
    checkNodeId(this.args.id)
    checkNodeId(this.args.peer)
    const db = await this.connection(this.flags.db)
    const src = await this.connection(this.flags.source, '--source')
    const r = await linkNodes({target: db, source: src, nodeId: this.args.id, peerId: this.args.peer, catchupTimeoutMs: this.flags['catchup-timeout'] * 1000})
    if (!this.jsonEnabled()) this.log(`${r.nodeId} ⇄ ${r.peerId}: subscription ${r.subscription} on ${r.peerId} replicates ${r.tables} tables from ${r.nodeId} (origin = none)`)
    return r
  }
}
