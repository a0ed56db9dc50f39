import {Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {withClient} from '../../lib/connection/connect.js'
import {parseDuration} from '../../lib/duration.js'
import {UsageError} from '../../lib/errors.js'
import {renderTable} from '../../lib/ui/output.js'
import {ACTIONS} from '../../lib/walrus/rule.js'
import {requireWalrusSchema} from '../../lib/walrus/server.js'
import {type HistoryRow, readHistory} from '../../lib/walrus/store.js'

export default class WalrusHistory extends BaseCommand<typeof WalrusHistory> {
  static override summary = 'List the recorded walrus decisions, oldest first.'
  static override description = `Reads steep_repl.walrus_history: each change walrus watch or walrus tune --apply made, each dry-run or recommendation, and each change the rate limit skipped, with the sizes, the requested checkpoints of the interval and the reason. --since takes a duration back from now (2h, 7d) or a timestamp.`

  static override examples = [
    '<%= config.bin %> walrus history -d postgres://postgres@localhost/postgres',
    '<%= config.bin %> walrus history -d prod --since 24h --action increase',
    '<%= config.bin %> walrus history -d prod --since 2026-01-01T00:00:00Z --json',
  ]

  static override flags = {
    db: dbFlag,
    since: Flags.string({summary: 'Only decisions since this long ago (e.g. 24h) or since this timestamp.', helpValue: 'DURATION|TIME'}),
    action: Flags.string({summary: 'Only this action.', options: [...ACTIONS]}),
    limit: Flags.integer({summary: 'At most this many (the most recent).', default: 100, min: 1, max: 100_000}),
  }

  async run(): Promise<HistoryRow[]> {
    const f = this.flags
    let sinceMs: number | undefined
    if (f.since !== undefined) {
      const t = /^\d{4}-\d\d-\d\d/.test(f.since) ? Date.parse(f.since) : Number.NaN
      if (!Number.isNaN(t)) sinceMs = t
      else if (/^\d{4}-/.test(f.since)) throw new UsageError(`--since: "${f.since}" is not a valid timestamp`)
      else sinceMs = Date.now() - parseDuration(f.since, '--since')
    }
    const conn = await this.connection(f.db)
    const rows = await withClient(conn, async (c) => {
      await requireWalrusSchema(c)
      return readHistory(c, {sinceMs, limit: f.limit, action: f.action})
    })
    if (!this.jsonEnabled()) {
      if (rows.length === 0) this.log('no walrus decisions recorded' + (f.since ? ` since ${f.since}` : ''))
      else
        this.log(
          renderTable(
            ['time', 'action', 'old MB', 'new MB', 'forced', 'source', 'reason'],
            rows.map((r) => [r.timestamp.toISOString(), r.action, r.old_size_mb, r.new_size_mb, r.forced_checkpoints, r.source, r.reason]),
          ),
        )
    }
    return rows
  }
}
