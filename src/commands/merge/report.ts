import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../../lib/base-command.js'
import {withClient} from '../../lib/connection/connect.js'
import {type MergeReport, mergeReport} from '../../lib/merge/audit.js'
import {renderReport} from '../../lib/merge/render.js'

export default class MergeReportCommand extends BaseCommand<typeof MergeReportCommand> {
  static override summary = 'Show a merge: its summary, the audit counts and its conflicts.'
  static override description = `Reads the merge record and its audit from node A of the merge (steep_repl.merges and steep_repl.merge_audit_log): status, strategy, totals, the decisions per table (copies and conflict resolutions), and the conflicts with both rows, a page at a time. --unresolved lists only the conflicts left for manual resolution.`

  static override examples = [
    '<%= config.bin %> merge report 0b9e5f5e-6a43-4d1c-9a53-3f0f7b6f2c11 --node-a postgres://admin@db1/app',
    '<%= config.bin %> merge report 0b9e5f5e-6a43-4d1c-9a53-3f0f7b6f2c11 --node-a db1 --unresolved --json',
  ]

  static override args = {
    mergeId: Args.string({description: 'The merge id printed by merge run.', required: true}),
  }

  static override flags = {
    'node-a': Flags.string({summary: 'Node A of the merge (it keeps the audit): URL, key=value string or config name.', helpValue: 'CONN', required: true}),
    unresolved: Flags.boolean({summary: 'Only conflicts left for manual resolution.'}),
    limit: Flags.integer({summary: 'Conflicts per page.', default: 100, min: 1}),
    offset: Flags.integer({summary: 'Conflicts to skip.', default: 0, min: 0}),
  }

  async run(): Promise<MergeReport> {
    const conn = await this.connection(this.flags['node-a'], '--node-a')
    const report = await withClient(conn, (c) => mergeReport(c, this.args.mergeId, {limit: this.flags.limit, offset: this.flags.offset, unresolvedOnly: this.flags.unresolved}))
    if (!this.jsonEnabled()) this.log(renderReport(report))
    return report
  }
}
