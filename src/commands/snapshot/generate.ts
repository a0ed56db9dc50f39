import {randomBytes} from 'node:crypto'
import {readdir} from 'node:fs/promises'
import path from 'node:path'
import {Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {UsageError} from '../../lib/errors.js'
import {type JobDocument, jobFlags, runJobCommand} from '../../direct/run.js'
import {COMPRESSIONS, checkLevel} from '../../lib/snapshot/codec.js'
import {DATA_FORMAT_CHOICES, type DataFormatChoice} from '../../lib/snapshot/generate.js'
import {snapshotGenerate} from '../../lib/snapshot/jobs.js'
import {newSnapshotId} from '../../lib/snapshot/manifest.js'
import {SPLIT_BY, type SplitBy} from '../../lib/snapshot/plan.js'
import {checkSlotName} from '../../lib/snapshot/source.js'
import {parseSize} from '../../lib/size.js'
import {formatBytes} from '../../lib/ui/output.js'

export default class SnapshotGenerate extends BaseCommand<typeof SnapshotGenerate> {
  static override summary = 'Write a consistent, parallel, checksummed snapshot of a database at the LSN of a replication slot.'
  static override description = `A replication connection creates a logical slot that exports a snapshot; N connections import it and stream COPY of every table (largest first, large tables split into page ranges, or key ranges with --split-by key) through the compressor and SHA-256 into files, with the schema (pre-data and post-data DDL) and the sequences, all as of the slot's LSN. The directory gets a manifest with its own checksum (docs/snapshot-format.md).

By default the slot and a publication are kept so that "snapshot apply --subscribe" can hand over to native logical replication exactly at that LSN; --no-slot uses a temporary slot (dropped at the end) for a plain copy. The job runs in this process with --direct, on a live worker otherwise (or here when none is registered), or is only queued with --no-wait. The steep_repl schema must be installed on the source (steep-repl install).`

  static override examples = [
    '<%= config.bin %> snapshot generate -d postgres://postgres@db1/app --output /backups/app-snap --direct',
    '<%= config.bin %> snapshot generate -d app --output /backups/app-snap --parallel 8 --compression lz4 --split-larger-than 2GB --direct',
    '<%= config.bin %> snapshot generate -d app --output /tmp/copy --no-slot --table public.orders --table public.customers --direct',
  ]

  static override flags = {
    db: dbFlag,
    output: Flags.string({char: 'o', summary: 'Directory to write (created; must be empty unless --force).', required: true, helpValue: 'DIR'}),
    parallel: Flags.integer({char: 'j', summary: 'Connections copying at once.', default: 4, min: 1, max: 64}),
    compression: Flags.string({char: 'Z', summary: 'Compression of the data files.', options: [...COMPRESSIONS], default: 'zstd'}),
    level: Flags.integer({summary: 'Compression level (gzip 1-9, zstd 1-19).'}),
    schema: Flags.string({char: 'n', summary: 'Only this schema (repeatable).', multiple: true}),
    table: Flags.string({char: 't', summary: 'Only this table, schema.table (repeatable; a partitioned table brings its partitions).', multiple: true}),
    'exclude-table': Flags.string({char: 'T', summary: 'Not this table (repeatable).', multiple: true}),
    slot: Flags.string({summary: 'Name of the kept slot (default steep_<snapshot id>).', helpValue: 'NAME', exclusive: ['no-slot']}),
    'no-slot': Flags.boolean({summary: 'Use a temporary slot, dropped at the end: the snapshot cannot seed a subscription.'}),
    'split-larger-than': Flags.string({summary: 'Split tables larger than this on disk into parts copied in parallel (0: never).', default: '1GB', helpValue: 'SIZE'}),
    'split-by': Flags.string({summary: 'How split tables are cut: ctid page ranges, or ranges of an integer primary key (index range scans, more server CPU).', options: [...SPLIT_BY], default: 'pages'}),
    'data-format': Flags.string({
      summary: 'COPY format of the data files: auto = binary for tables whose columns are all of built-in types (but regclass and the other OID aliases), enums or domains over them, text for the rest; text = text for every table.',
      description: 'Binary skips the servers\' text output and input functions (about half of COPY\'s CPU for numeric and timestamp columns) and is exact; text files can be loaded by any COPY FROM, into any version.',
      options: [...DATA_FORMAT_CHOICES],
      default: 'auto',
    }),
    'data-checksum': Flags.boolean({
      summary: 'With compression, also record the SHA-256 of each part\'s COPY data (dataSha256), as uncompressed snapshots always do.',
      description:
        'A second hash of every byte before the compressor (about 15% of the CLI\'s CPU at gzip level 1). Integrity does not need it: the manifest has the SHA-256 of every file as stored, and gzip\'s CRC-32 and the zstd and lz4 content checksums check every decompression. It lets a target\'s own COPY of a table be compared with the snapshot whatever the compression.',
    }),
    node: Flags.string({summary: 'Registered node id of the source, recorded in the snapshot.', helpValue: 'ID'}),
    force: Flags.boolean({summary: 'Replace a previous snapshot in --output.'}),
    ...jobFlags,
  }

  async run(): Promise<JobDocument> {
    const f = this.flags
    const compression = f.compression as (typeof COMPRESSIONS)[number]
    checkLevel(compression, f.level)
    if (f.slot) checkSlotName(f.slot)
    const splitLargerThan = parseSize(f['split-larger-than'], '--split-larger-than')
    // Refuse a non-empty directory before anything is queued (the executor checks again).
    const output = path.resolve(f.output)
    if (!f.force && (await readdir(output).catch(() => [])).length > 0) {
      throw new UsageError(`--output ${output} is not empty`, {hint: 'Choose an empty directory, or pass --force to replace the snapshot in it.'})
    }
    const db = await this.connection(f.db)
    const snapshotId = newSnapshotId(new Date(), randomBytes(4).toString('hex'))
    const job = await runJobCommand(
      {jsonEnabled: () => this.jsonEnabled(), configPath: f.config},
      {
        kind: snapshotGenerate,
        db,
        flags: f,
        params: {
          snapshotId,
          output,
          parallel: f.parallel,
          compression,
          level: f.level,
          schemas: f.schema ?? [],
          tables: f.table ?? [],
          excludeTables: f['exclude-table'] ?? [],
          keepSlot: !f['no-slot'],
          slotName: f.slot,
          splitLargerThan,
          splitBy: f['split-by'] as SplitBy,
          dataFormat: f['data-format'] as DataFormatChoice,
          dataChecksum: f['data-checksum'],
          nodeId: f.node,
          force: f.force,
        },
      },
    )
    const r = job.result as {snapshotId: string; output: string; lsn: string; slot: string | null; tables: number; parts: number; rows: number; rawBytes: number; fileBytes: number} | null
    if (!this.jsonEnabled()) {
      if (job.status === 'pending') this.log(job.id)
      else if (r)
        this.log(
          `snapshot ${r.snapshotId} written to ${r.output}: ${r.tables} tables (${r.parts} parts), ${r.rows} rows, ${formatBytes(r.rawBytes)} → ${formatBytes(r.fileBytes)}, at LSN ${r.lsn}${r.slot ? `; slot ${r.slot} kept for the subscriber` : ''}`,
        )
    }
    return job
  }
}
