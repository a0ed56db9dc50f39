import {Flags} from '@oclif/core'
import {BaseCommand} from '../../lib/base-command.js'
import {analyzeOverlap} from '../../lib/merge/analyze.js'
import {lineProgress} from '../../lib/merge/progress.js'
import {type AnalyzeJson, analyzeJson, renderAnalyze} from '../../lib/merge/render.js'
import {parseTableList} from '../../lib/merge/tables.js'
import {nodeFlags, tuningFlags, tuningFrom} from '../../lib/merge/flags.js'

export default class MergeAnalyze extends BaseCommand<typeof MergeAnalyze> {
  static override aliases = ['analyze-overlap']
  static override summary = 'Find the rows that differ between two nodes, by block hashing.'
  static override description = `Compares tables between two live nodes without moving them: primary-key ranges are chosen once (from the planner's row estimate and a sample of keys) and hashed on both servers at the same time; ranges whose hashes differ are cut again and hashed again, and only ranges of a few rows are compared key by key. The bytes on the wire grow with the number of differences, not with the size of the tables.

Rows are hashed from their text form under identical session settings on both nodes (UTC time zone, ISO dates, exact floats, hex bytea), so equal rows hash equal whatever the servers' own settings. Each node is read in one REPEATABLE READ transaction per table.

Per table: total rows, matches, conflicts (same key, different contents), rows only on node A and rows only on node B. --detailed lists the differing keys, a page at a time (--limit, --offset). Nothing is written on either node. Also available as analyze-overlap (the upstream name).`

  static override examples = [
    '<%= config.bin %> merge analyze --node-a postgres://admin@db1/app --node-b postgres://admin@db2/app --tables public.orders,public.customers',
    '<%= config.bin %> analyze-overlap --node-a db1 --node-b db2 --tables orders --detailed --limit 50',
    '<%= config.bin %> merge analyze --node-a "host=db1 dbname=app" --node-b "host=db2 dbname=app" --tables orders --json',
  ]

  static override flags = {
    ...nodeFlags,
    detailed: Flags.boolean({summary: 'List the differing keys (conflicts, then A-only, then B-only) of each table, one page.'}),
    limit: Flags.integer({summary: 'Keys per table with --detailed.', default: 100, min: 1}),
    offset: Flags.integer({summary: 'Keys to skip per table with --detailed.', default: 0, min: 0}),
    ...tuningFlags,
  }

  async run(): Promise<AnalyzeJson> {
    const tables = parseTableList(this.flags.tables)
    const nodeA = await this.connection(this.flags['node-a'], '--node-a')
    const nodeB = await this.connection(this.flags['node-b'], '--node-b')
    const result = await analyzeOverlap({
      nodeA,
      nodeB,
      tables,
      ...tuningFrom(this.flags),
      progress: this.jsonEnabled() ? undefined : lineProgress((l) => this.note(l)),
    })
    const out = analyzeJson(result, this.flags.detailed ? {limit: this.flags.limit, offset: this.flags.offset} : null)
    if (!this.jsonEnabled()) this.log(renderAnalyze(out))
    return out
  }
}
