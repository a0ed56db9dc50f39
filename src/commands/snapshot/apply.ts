import path from 'node:path'
import {Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {type JobDocument, jobFlags, runJobCommand} from '../../direct/run.js'
import type {ConnParams} from '../../lib/connection/resolve.js'
import {toConnRef} from '../../lib/connection/ref.js'
import {UsageError} from '../../lib/errors.js'
import {withClient} from '../../lib/connection/connect.js'
import {install} from '../../lib/install/migrations.js'
import {snapshotApply} from '../../lib/snapshot/jobs.js'

export default class SnapshotApply extends BaseCommand<typeof SnapshotApply> {
  static override summary = 'Load a snapshot into a database, and with --subscribe hand over to logical replication at its LSN.'
  static override description = `Verifies every checksum first (unless --no-verify) and touches the target only when all match. Then, like pg_restore: the pre-data DDL, the data with N parallel COPY (a table loaded whole is truncated and loaded with COPY FREEZE in one transaction), the post-data DDL wave by wave in parallel (index builds, then primary keys and unique constraints attached USING INDEX, then foreign keys and triggers), the sequences, ANALYZE.

A target that already has the snapshot's tables is refused unless --clean (drop them first) or --resume (continue an apply that stopped) is given. Every loaded part is recorded in the target in the same transaction as its rows: after a crash or a kill, --resume continues with what is not done and ends identical to a clean apply. With --subscribe --source, the subscription is created on the target with create_slot = false, slot_name = the snapshot's slot, copy_data = false (and origin = none on PostgreSQL 16+), so changes made on the source after the snapshot arrive exactly once. The subscription's connection string is stored by PostgreSQL on the target (readable by superusers only), including a password if the --source string has one; prefer a password file on the target's server.`

  static override examples = [
    '<%= config.bin %> snapshot apply -d postgres://postgres@db2/app --input /backups/app-snap --direct',
    '<%= config.bin %> snapshot apply -d db2 --input /backups/app-snap --subscribe --source db1 --parallel 8 --direct',
    '<%= config.bin %> snapshot apply -d db2 --input /backups/app-snap --resume --direct',
    '<%= config.bin %> snapshot apply -d db2 --input /backups/app-snap --clean --direct',
  ]

  static override flags = {
    db: dbFlag,
    input: Flags.string({char: 'i', summary: 'The snapshot directory.', required: true, helpValue: 'DIR'}),
    parallel: Flags.integer({char: 'j', summary: 'Connections loading at once.', default: 4, min: 1, max: 64}),
    'no-verify': Flags.boolean({summary: 'Skip the checksum pass before loading (each file is still checked while it loads).'}),
    resume: Flags.boolean({summary: 'Continue an apply that stopped: only what is not done yet.', exclusive: ['clean']}),
    clean: Flags.boolean({
      summary: "Drop the snapshot's objects on the target first, then apply.",
      description:
        "Like pg_restore --clean --if-exists: every table, view, sequence, type and function the snapshot creates is dropped if it exists (dependents first, never CASCADE), in the same transaction that creates them again, so a failure leaves the target as it was. An object of the target's own that depends on one of them stops the apply (exit 1) instead of being dropped with it.",
      exclusive: ['resume'],
    }),
    subscribe: Flags.boolean({summary: 'Create the subscription to the source at the snapshot slot.', dependsOn: ['source']}),
    source: Flags.string({summary: 'The source to subscribe to: a connection string or a config name.', helpValue: 'CONN', dependsOn: ['subscribe']}),
    subscription: Flags.string({summary: 'Subscription name (default steep_sub_<snapshot id>).', helpValue: 'NAME'}),
    ...jobFlags,
  }

  async run(): Promise<JobDocument> {
    const f = this.flags
    if (f.subscription && !/^[a-z0-9_]{1,63}$/.test(f.subscription)) throw new UsageError('--subscription: use 1 to 63 lower-case letters, digits and underscores')
    const db = await this.connection(f.db)
    // The target keeps the job record and the resume state: install the schema there if needed.
    await withClient(db, async (c) => {
      const r = await install(c)
      if (r.applied.length) this.note(`installed the steep_repl schema (version ${r.to}) on the target for the job record and the resume state`)
    })
    let subscribeFrom: string | undefined
    const local = new Map<string, ConnParams>()
    if (f.subscribe && f.source) {
      const src = await this.connection(f.source, '--source')
      subscribeFrom = toConnRef(f.source, src)
      local.set(subscribeFrom, src)
    }
    const job = await runJobCommand(
      {jsonEnabled: () => this.jsonEnabled(), configPath: f.config},
      {
        kind: snapshotApply,
        db,
        flags: f,
        localConnections: local,
        params: {
          input: path.resolve(f.input),
          parallel: f.parallel,
          verify: !f['no-verify'],
          resume: f.resume,
          clean: f.clean,
          subscribeFrom,
          subscriptionName: f.subscription,
        },
      },
    )
    const r = job.result as {snapshotId: string; tables: number; parts: number; partsSkipped: number; rows: number; subscription: string | null; lsn: string} | null
    if (!this.jsonEnabled()) {
      if (job.status === 'pending') this.log(job.id)
      else if (r)
        this.log(
          `snapshot ${r.snapshotId} applied: ${r.tables} tables, ${r.rows} rows loaded${r.partsSkipped ? ` (${r.partsSkipped} parts already done)` : ''}${r.subscription ? `; subscription ${r.subscription} replicates from LSN ${r.lsn}` : ''}`,
        )
    }
    return job
  }
}
