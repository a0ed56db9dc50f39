import {Args, Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {type JobDocument, jobFlags, runJobCommand} from '../../direct/run.js'
import {toConnRef} from '../../lib/connection/ref.js'
import type {ConnParams} from '../../lib/connection/resolve.js'
import {UsageError} from '../../lib/errors.js'
import {nodeReinit} from '../../lib/node/jobs.js'
import type {ReinitResult} from '../../lib/node/maintenance.js'
import {checkNodeId} from '../../lib/node/registry.js'

export default class NodeReinit extends BaseCommand<typeof NodeReinit> {
  static override summary = 'Copy tables of a replicating node again (--tables, --schema), or reset it entirely (--full).'
  static override description = `With --tables or --schema, the tables leave the publication and the subscription, are truncated on the target on a session with a replication origin set (so peers that subscribe to this node with origin = none do not replicate the truncate), then are added back and copied again by PostgreSQL's own table synchronization (ALTER SUBSCRIPTION … REFRESH PUBLICATION WITH (copy_data = true)), which also catches them up to the replication stream; replication of the other tables goes on all along. The node is reinitializing until every table is ready, then synchronized again.

With --full, the subscription, the slot and the publication are dropped, every replicated table is truncated (with the origin set) and the node is uninitialized: run node init again (with --schema-sync auto, as the tables exist).

The reinit runs as a job queued on the target database (-d), with phases prepare, truncate and copy (one item per table, done when its table synchronization is ready): in this process with --direct, on a live worker otherwise (or here when none is registered), or only queued with --no-wait. steep-repl node cancel stops it; the node is then failed and replication goes on.`

  static override examples = [
    '<%= config.bin %> node reinit db2 -d postgres://postgres@db2/app --source postgres://repl@db1/app --tables public.orders --direct',
    '<%= config.bin %> node reinit db2 -d db2 --source db1 --schema sales --json',
    '<%= config.bin %> node reinit db2 -d db2 --source db1 --full --direct',
  ]

  static override args = {id: Args.string({description: 'Node id.', required: true})}

  static override flags = {
    db: dbFlag,
    source: Flags.string({summary: 'Connection to the source database (the publication changes there).', required: true, helpValue: 'CONN'}),
    full: Flags.boolean({summary: 'Reset the node: drop replication, truncate every replicated table, state uninitialized.'}),
    tables: Flags.string({char: 't', summary: 'Tables to copy again, schema.table (repeatable, or comma-separated).', multiple: true}),
    schema: Flags.string({char: 'n', summary: 'Copy every replicated table of this schema again.'}),
    'sync-timeout': Flags.integer({summary: 'Seconds to wait for the tables to be synchronized before the reinit fails.', default: 600, min: 1}),
    ...jobFlags,
  }

  async run(): Promise<JobDocument> {
    const f = this.flags
    checkNodeId(this.args.id)
    const count = [f.full, Boolean(f.tables?.length), Boolean(f.schema)].filter(Boolean).length
    if (count === 0) throw new UsageError('one of --full, --tables, or --schema is required')
    if (count > 1) throw new UsageError('only one of --full, --tables, or --schema can be specified')
    const db = await this.connection(f.db)
    const src = await this.connection(f.source, '--source')
    const tables = (f.tables ?? []).flatMap((t) => t.split(',')).map((t) => t.trim()).filter(Boolean)
    const ref = toConnRef(f.source, src)
    const job = await runJobCommand(
      {jsonEnabled: () => this.jsonEnabled(), configPath: f.config},
      {
        kind: nodeReinit,
        db,
        flags: f,
        localConnections: new Map<string, ConnParams>([[ref, src]]),
        params: {nodeId: this.args.id, source: ref, full: f.full, tables, schema: f.schema, timeoutSeconds: f['sync-timeout']},
      },
    )
    const r = job.result as ReinitResult | null
    if (!this.jsonEnabled()) {
      if (job.status === 'pending') this.log(job.id)
      else if (r) this.log(`node ${r.nodeId} ${r.state === 'synchronized' ? `synchronized again: ${r.tables.length} tables copied in ${r.seconds}s` : `uninitialized: ${r.tables.length} tables truncated`}`)
    }
    return job
  }
}
