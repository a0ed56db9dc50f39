import {randomBytes} from 'node:crypto'
import {readdir} from 'node:fs/promises'
import path from 'node:path'
import {Args, Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {type JobDocument, jobFlags, runJobCommand} from '../../direct/run.js'
import {toConnRef} from '../../lib/connection/ref.js'
import type {ConnParams} from '../../lib/connection/resolve.js'
import {UsageError} from '../../lib/errors.js'
import {nodePrepare} from '../../lib/node/jobs.js'
import {type PrepareResult, preflightPrepare} from '../../lib/node/prepare.js'
import {checkNodeId} from '../../lib/node/registry.js'
import {checkLevel, COMPRESSIONS} from '../../lib/snapshot/codec.js'
import {newSnapshotId} from '../../lib/snapshot/manifest.js'
import {parseSize} from '../../lib/size.js'
import {formatBytes} from '../../lib/ui/output.js'

export default class NodePrepare extends BaseCommand<typeof NodePrepare> {
  static override summary = 'First step of the two-step init: snapshot the source into a directory, keeping a slot for the target node.'
  static override description = `The two-step path through files, for when the target cannot read the source directly during the copy, or the files must travel. node prepare checks both nodes (as node init does: the target node registered in -d and uninitialized or failed, the source a primary with wal_level = logical and a role that may replicate, the slot name free, the target empty), moves the target node to preparing, and writes a snapshot of the source to --output with the snapshot capability's generate (the same job as steep-repl snapshot generate), keeping its replication slot (named steep_sub_<target>_from_<source>, the subscription's name) and a publication at the snapshot's LSN. The node records the snapshot id, directory, slot, publication and LSN (steep-repl node progress shows them).

Then, where the directory can be read: steep-repl snapshot apply -d TARGET --input DIR, and steep-repl node complete TARGET_ID --from SOURCE_ID -d TARGET --source SOURCE, which subscribes at the kept slot and waits for the catch-up. If anything fails, the node is failed with the reason and the slot and publication are dropped; steep-repl node cancel drops them after a prepare that is no longer wanted.

The job is queued on the target database (-d); its executor writes --output on its own host and connects to the source. The steep_repl schema is installed on the source when missing (snapshot generate records its snapshots there).`

  static override examples = [
    '<%= config.bin %> node prepare db2 --from db1 -d postgres://postgres@db2/app --source postgres://repl@db1/app --output /backups/db2-seed --direct',
    '<%= config.bin %> node prepare db2 --from db1 -d db2 --source db1 --output /backups/db2-seed --parallel 8 --compression lz4 --no-wait',
  ]

  static override args = {id: Args.string({description: 'Id of the node to initialize (the target, registered in -d).', required: true})}

  static override flags = {
    db: dbFlag,
    from: Flags.string({summary: 'Id of the source node.', required: true, helpValue: 'SOURCE_ID'}),
    source: Flags.string({summary: 'Connection to the source database: a connection string or a config name.', required: true, helpValue: 'CONN'}),
    output: Flags.string({char: 'o', summary: 'Directory to write the snapshot to (created; must be empty).', required: true, helpValue: 'DIR'}),
    parallel: Flags.integer({char: 'j', summary: 'Connections copying at once.', default: 4, min: 1, max: 64}),
    compression: Flags.string({char: 'Z', summary: 'Compression of the data files.', options: [...COMPRESSIONS], default: 'zstd'}),
    level: Flags.integer({summary: 'Compression level (gzip 1-9, zstd 1-19).'}),
    schema: Flags.string({char: 'n', summary: 'Only this schema (repeatable).', multiple: true}),
    tables: Flags.string({char: 't', summary: 'Only this table, schema.table (repeatable, or comma-separated).', multiple: true}),
    'exclude-table': Flags.string({char: 'T', summary: 'Leave this table out (repeatable).', multiple: true}),
    'split-larger-than': Flags.string({summary: 'Split tables larger than this on disk into parts copied in parallel (0: never).', default: '1GB', helpValue: 'SIZE'}),
    ...jobFlags,
  }

  async run(): Promise<JobDocument> {
    const f = this.flags
    checkNodeId(this.args.id)
    checkNodeId(f.from, '--from')
    const compression = f.compression as (typeof COMPRESSIONS)[number]
    checkLevel(compression, f.level)
    const splitLargerThan = parseSize(f['split-larger-than'], '--split-larger-than')
    const output = path.resolve(f.output)
    if ((await readdir(output).catch(() => [])).length > 0) {
      throw new UsageError(`--output ${output} is not empty`, {hint: 'Choose an empty directory: node prepare never replaces files.'})
    }
    const db = await this.connection(f.db)
    const src = await this.connection(f.source, '--source')
    const tables = (f.tables ?? []).flatMap((t) => t.split(',')).map((t) => t.trim()).filter(Boolean)
    const selection = {schemas: f.schema ?? [], tables, excludeTables: f['exclude-table'] ?? []}
    // Bad input ends here, with its exit code, before a job exists (the job checks again).
    await preflightPrepare(db, {nodeId: this.args.id, fromNodeId: f.from, source: src, selection}, (m) => this.note(m))
    const ref = toConnRef(f.source, src)
    const job = await runJobCommand(
      {jsonEnabled: () => this.jsonEnabled(), configPath: f.config},
      {
        kind: nodePrepare,
        db,
        flags: f,
        localConnections: new Map<string, ConnParams>([[ref, src]]),
        params: {
          nodeId: this.args.id,
          fromNodeId: f.from,
          source: ref,
          snapshotId: newSnapshotId(new Date(), randomBytes(4).toString('hex')),
          output,
          parallel: f.parallel,
          compression,
          level: f.level,
          ...selection,
          splitLargerThan,
        },
      },
    )
    const r = job.result as PrepareResult | null
    if (!this.jsonEnabled()) {
      if (job.status === 'pending') this.log(job.id)
      else if (r) {
        this.log(
          `node ${r.nodeId} prepared from ${r.fromNodeId}: snapshot ${r.snapshotId} in ${r.output} (${r.tables} tables, ${r.rows} rows, ${formatBytes(r.rawBytes)} → ${formatBytes(r.fileBytes)}) at LSN ${r.lsn}; slot ${r.slot} and publication ${r.publication} kept on the source`,
        )
        this.log(`next: ${r.next.join('  then  ')}`)
      }
    }
    return job
  }
}
