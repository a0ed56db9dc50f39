import {randomUUID} from 'node:crypto'
import {Flags} from '@oclif/core'
import {type JobDocument, jobFlags, runJobCommand} from '../../direct/run.js'
import {toConnRef} from '../../lib/connection/ref.js'
import {mergeRun} from '../../lib/merge/job.js'
import {BaseCommand} from '../../lib/base-command.js'
import {lineProgress} from '../../lib/merge/progress.js'
import {renderMerge} from '../../lib/merge/render.js'
import {type MergeResult, runMerge} from '../../lib/merge/run.js'
import {parseStrategy, STRATEGIES} from '../../lib/merge/strategy.js'
import {parseTableList} from '../../lib/merge/tables.js'
import {nodeFlags, tuningFlags, tuningFrom} from '../../lib/merge/flags.js'

export default class MergeRun extends BaseCommand<typeof MergeRun> {
  static override summary = 'Make two nodes agree on tables: copy one-sided rows both ways, resolve conflicts by a strategy, audit it all.'
  static override description = `Pre-flight first, and nothing is written if it fails: every table exists on both nodes with the same primary key, and schema compare finds no blocking difference in it (a column missing on one side, a type, nullability or generated-column difference; also a different collation on a key column or a partitioned table on one side only): the differences are listed and the exit code is 3, foreign keys between the tables form no cycle, node A has the steep_repl schema (it keeps the audit), and last-modified finds a timestamp column (updated_at, modified_at or last_modified, or --timestamp-column) in every table. Sessions writing to the tables are reported as warnings.

Tables are then processed parents before children. Rows only on one node are copied to the other with COPY, in batches; conflicts (same key, different rows) are resolved by the strategy in batches: prefer-node-a and prefer-node-b copy that node's row over the other's; last-modified keeps the row with the newer timestamp (a row with a timestamp beats one without; ties keep node A's); manual leaves conflicts as they are, still copies the one-sided rows, and lists the conflicts in the report. Merges never delete rows.

Where replication is configured on a node (a subscription in the database, or the table in a publication), writes there run with session_replication_role = replica under the replication origin steep_repl_merge_<database oid>, so that origin = none subscriptions do not send them back.

Rows are copied with their key values, so on each node that received rows, sequences owned by a column of the table (serial, identity) are then advanced to the column's maximum (minimum for a descending sequence) when they are behind it, never backwards, so the next INSERT with the default works; each advance is audited and listed in the result, and the dry run shows the same list.

Every decision, copies included, is recorded in steep_repl.merge_audit_log on node A under the merge id, with both rows as JSON; steep-repl merge report MERGE_ID shows it. --dry-run changes nothing on either node (not even the record) and prints exactly what the run will do on unchanged data. Running the merge again right after finds nothing left to do.`

  static override examples = [
    '<%= config.bin %> merge run --node-a postgres://admin@db1/app --node-b postgres://admin@db2/app --tables public.orders --strategy prefer-node-a --dry-run',
    '<%= config.bin %> merge run --node-a db1 --node-b db2 --tables customers,orders --strategy last-modified --timestamp-column changed_at',
    '<%= config.bin %> merge run --node-a db1 --node-b db2 --tables orders --strategy manual --json',
  ]

  static override flags = {
    ...nodeFlags,
    strategy: Flags.string({summary: 'How conflicts are resolved.', options: [...STRATEGIES], required: true}),
    'dry-run': Flags.boolean({summary: 'Analyse and decide, print what would be done, change nothing.'}),
    'timestamp-column': Flags.string({summary: 'last-modified: the timestamp column to compare (default: updated_at, modified_at or last_modified).', helpValue: 'COL'}),
    'batch-rows': Flags.integer({summary: 'Rows per COPY, UPDATE and audit batch (default 1000).', min: 1, helpGroup: 'TUNING'}),
    ...tuningFlags,
    ...jobFlags,
  }

  async run(): Promise<MergeResult | (MergeResult & {jobId: string}) | JobDocument> {
    const tables = parseTableList(this.flags.tables)
    const strategy = parseStrategy(this.flags.strategy)
    const nodeA = await this.connection(this.flags['node-a'], '--node-a')
    const nodeB = await this.connection(this.flags['node-b'], '--node-b')
    const common = {tables, strategy, timestampColumn: this.flags['timestamp-column'], batchRows: this.flags['batch-rows'], ...tuningFrom(this.flags)}
    if (this.flags['dry-run']) {
      // A dry run changes nothing on either node, not even a queue row: it runs here, unqueued.
      const result = await runMerge({nodeA, nodeB, ...common, dryRun: true, progress: this.jsonEnabled() ? undefined : lineProgress((l) => this.note(l))})
      if (!this.jsonEnabled()) this.log(renderMerge(result))
      return result
    }
    // The real run is a job on node A (--direct, a worker, or --no-wait), node B by reference.
    const ref = toConnRef(this.flags['node-b'], nodeB)
    const job = await runJobCommand(
      {jsonEnabled: () => this.jsonEnabled(), configPath: this.flags.config},
      {kind: mergeRun, db: nodeA, flags: this.flags, localConnections: new Map([[ref, nodeB]]), params: {nodeB: ref, dryRun: false, mergeId: randomUUID(), ...common}},
    )
    if (job.status === 'pending') {
      if (!this.jsonEnabled()) this.log(job.id)
      return job
    }
    const result = job.result as MergeResult
    if (!this.jsonEnabled()) this.log(renderMerge(result))
    return {...result, jobId: job.id}
  }
}
