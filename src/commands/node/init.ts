import {Args, Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {type JobDocument, jobFlags, runJobCommand} from '../../direct/run.js'
import {withClient} from '../../lib/connection/connect.js'
import {toConnRef} from '../../lib/connection/ref.js'
import type {ConnParams} from '../../lib/connection/resolve.js'
import {install} from '../../lib/install/migrations.js'
import {type InitResult, preflight} from '../../lib/node/init.js'
import {nodeInit} from '../../lib/node/jobs.js'
import {type LinkResult, linkNodes} from '../../lib/node/link.js'
import {checkNodeId} from '../../lib/node/registry.js'
import {parseSize} from '../../lib/size.js'

export default class NodeInit extends BaseCommand<typeof NodeInit> {
  static override summary = 'Clone a node from another and hand over to native logical replication at the exact LSN.'
  static override description = `The streaming clone, with no files in between: on the source a publication and a replication slot that exports a snapshot; on the target (-d) the pre-data DDL; then each table, or each part of a split table, COPY TO STDOUT on the source piped into COPY FROM STDIN on the target, --parallel at a time, all reading the slot's snapshot; then the sequences, the post-data DDL in parallel waves (indexes, then constraints attached USING INDEX, then foreign keys and triggers), ANALYZE; then CREATE SUBSCRIPTION on the target WITH (create_slot = false, slot_name = the slot, copy_data = false, origin = none on PostgreSQL 16+), so every change committed on the source after the snapshot arrives exactly once. The command ends when the slot's lag is under --max-lag and the node is synchronized.

The node moves through uninitialized → preparing → copying → catching_up → synchronized in the target's registry (steep-repl node progress shows where it is). The target node must be registered in the target database; the source node is registered there from --source when it is not. Any failure, or a cancel, drops the subscription, the slot and the publication, and the tables the init created, and leaves the node failed with the reason.

The target must not have the source's tables, unless --schema-sync auto or an explicit --tables list is given: then existing tables must be empty and are compared with steep-repl schema compare's comparison: what it counts as blocking for those tables (a missing column, a type, nullability or generated difference, no usable replica identity) stops the init with exit 3 before anything is touched (strict, the default, and auto); manual only warns. What it reports without blocking (defaults, collations, column order) is noted. The subscription's connection string is stored by PostgreSQL on the target (readable by superusers only), including a password if the --source string has one; prefer a password file on the target's server.`

  static override examples = [
    '<%= config.bin %> node init db2 --from db1 -d postgres://postgres@db2/app --source postgres://repl@db1/app --direct',
    '<%= config.bin %> node init db2 --from db1 -d db2 --source db1 --parallel 8 --split-larger-than 1GB --direct',
    '<%= config.bin %> node init db3 --from db1 -d db3 --source db1 --tables public.orders --tables public.customers --schema-sync auto --direct',
    '<%= config.bin %> node init db2 --from db1 -d db2 --source db1 --bidirectional --direct',
  ]

  static override args = {id: Args.string({description: 'Id of the node to initialize (the target, registered in -d).', required: true})}

  static override flags = {
    db: dbFlag,
    from: Flags.string({summary: 'Id of the source node.', required: true, helpValue: 'SOURCE_ID'}),
    source: Flags.string({summary: 'Connection to the source database: a connection string or a config name.', required: true, helpValue: 'CONN'}),
    parallel: Flags.integer({char: 'j', summary: 'Tables (or parts) copied at once, and index builds at once.', default: 4, min: 1, max: 64}),
    'schema-sync': Flags.string({summary: 'When target tables exist: strict refuses what schema compare counts as blocking (exit 3), auto loads into matching existing tables, manual warns.', options: ['strict', 'auto', 'manual'], default: 'strict'}),
    schema: Flags.string({char: 'n', summary: 'Only this schema (repeatable).', multiple: true}),
    tables: Flags.string({char: 't', summary: 'Only this table, schema.table (repeatable, or comma-separated).', multiple: true}),
    'exclude-table': Flags.string({char: 'T', summary: 'Leave this table out (repeatable).', multiple: true}),
    'split-larger-than': Flags.string({summary: 'Split tables larger than this on disk into parts copied in parallel (0: never).', default: '1GB', helpValue: 'SIZE'}),
    'max-lag': Flags.string({summary: 'Catch-up ends when the slot lag is under this and what the source had committed then is applied.', default: '1MB', helpValue: 'SIZE'}),
    'catchup-timeout': Flags.integer({summary: 'Seconds to wait for catch-up before failing.', default: 600, min: 1}),
    bidirectional: Flags.boolean({summary: 'Once synchronized, also replicate back from the target to the source (node link; PostgreSQL 16+).', exclusive: ['no-wait']}),
    ...jobFlags,
  }

  async run(): Promise<JobDocument & {link?: LinkResult}> {
    const f = this.flags
    checkNodeId(this.args.id)
    checkNodeId(f.from, '--from')
    const db = await this.connection(f.db)
    const src = await this.connection(f.source, '--source')
    await withClient(db, async (c) => {
      const r = await install(c)
      if (r.applied.length) this.note(`installed the steep_repl schema (version ${r.to}) on the target`)
    })
    const tables = (f.tables ?? []).flatMap((t) => t.split(',')).map((t) => t.trim()).filter(Boolean)
    const schemaSync = f['schema-sync'] as 'strict' | 'auto' | 'manual'
    const selection = {schemas: f.schema ?? [], tables, excludeTables: f['exclude-table'] ?? []}
    // Bad input ends here, with its exit code, before a job exists.
    await preflight(db, {source: src, nodeId: this.args.id, fromNodeId: f.from, schemaSync, selection, bidirectional: f.bidirectional}, (m) => this.note(m))
    const ref = toConnRef(f.source, src)
    const local = new Map<string, ConnParams>([[ref, src]])
    const job = await runJobCommand(
      {jsonEnabled: () => this.jsonEnabled(), configPath: f.config},
      {
        kind: nodeInit,
        db,
        flags: f,
        localConnections: local,
        params: {
          nodeId: this.args.id,
          fromNodeId: f.from,
          source: ref,
          parallel: f.parallel,
          schemaSync,
          ...selection,
          splitLargerThan: parseSize(f['split-larger-than'], '--split-larger-than'),
          maxLagBytes: parseSize(f['max-lag'], '--max-lag'),
          catchupTimeoutSeconds: f['catchup-timeout'],
        },
      },
    )
    const r = job.result as InitResult | null
    let link: LinkResult | undefined
    if (f.bidirectional && job.status === 'complete') link = await linkNodes({target: db, source: src, nodeId: this.args.id, peerId: f.from})
    if (!this.jsonEnabled()) {
      if (job.status === 'pending') this.log(job.id)
      else if (r)
        this.log(
          `node ${r.nodeId} synchronized from ${r.fromNodeId} in ${r.seconds}s: ${r.tables} tables (${r.parts} parts), ${r.rows} rows; subscription ${r.subscription} replicates from LSN ${r.lsn} (lag ${r.lagBytes} bytes)`,
        )
    }
    if (link && !this.jsonEnabled()) this.log(`bidirectional: subscription ${link.subscription} on ${link.peerId} replicates back from ${link.nodeId} (origin = none)`)
    return link ? {...job, link} : job
  }
}
