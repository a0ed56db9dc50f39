import {Args, Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {UsageError} from '../../lib/errors.js'
import {type ReinitResult, reinitNode} from '../../lib/node/maintenance.js'

export default class NodeReinit extends BaseCommand<typeof NodeReinit> {
  static override summary = 'Copy tables of a replicating node again (--tables, --schema), or reset it entirely (--full).'
  static override description = `With --tables or --schema, the tables leave the publication and the subscription, are truncated on the target on a session with a replication origin set (so peers that subscribe to this node with origin = none do not replicate the truncate), then are added back and copied again by PostgreSQL's own table synchronization (ALTER SUBSCRIPTION … REFRESH PUBLICATION WITH (copy_data = true)), which also catches them up to the replication stream; replication of the other tables goes on all along. The node is reinitializing until every table is ready, then synchronized again.

With --full, the subscription, the slot and the publication are dropped, every replicated table is truncated (with the origin set) and the node is uninitialized: run node init again (with --schema-sync auto, as the tables exist).`

  static override examples = [
    '<%= config.bin %> node reinit db2 -d postgres://postgres@db2/app --source postgres://repl@db1/app --tables public.orders',
    '<%= config.bin %> node reinit db2 -d db2 --source db1 --schema sales --json',
    '<%= config.bin %> node reinit db2 -d db2 --source db1 --full',
  ]

  static override args = {id: Args.string({description: 'Node id.', required: true})}

  static override flags = {
    db: dbFlag,
    source: Flags.string({summary: 'Connection to the source database (the publication changes there).', required: true, helpValue: 'CONN'}),
    full: Flags.boolean({summary: 'Reset the node: drop replication, truncate every replicated table, state uninitialized.'}),
    tables: Flags.string({char: 't', summary: 'Tables to copy again, schema.table (repeatable, or comma-separated).', multiple: true}),
    schema: Flags.string({char: 'n', summary: 'Copy every replicated table of this schema again.'}),
    timeout: Flags.integer({summary: 'Seconds to wait for the tables to be synchronized.', default: 600, min: 1}),
  }

  async run(): Promise<ReinitResult> {
    const f = this.flags
    const count = [f.full, Boolean(f.tables?.length), Boolean(f.schema)].filter(Boolean).length
    if (count === 0) throw new UsageError('one of --full, --tables, or --schema is required')
    if (count > 1) throw new UsageError('only one of --full, --tables, or --schema can be specified')
    const db = await this.connection(f.db)
    const src = await this.connection(f.source, '--source')
    const tables = (f.tables ?? []).flatMap((t) => t.split(',')).map((t) => t.trim()).filter(Boolean)
    const mode = f.full ? ({full: true} as const) : f.schema ? {schema: f.schema} : {tables}
    const r = await reinitNode({target: db, source: src, nodeId: this.args.id, mode, timeoutMs: f.timeout * 1000, log: (m) => this.note(m)})
    if (!this.jsonEnabled()) this.log(`node ${r.nodeId} ${r.state === 'synchronized' ? `synchronized again: ${r.tables.length} tables copied in ${r.seconds}s` : `uninitialized: ${r.tables.length} tables truncated`}`)
    return r
  }
}
