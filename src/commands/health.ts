import {BaseCommand, dbFlag} from '../lib/base-command.js'
import {withClient} from '../lib/connection/connect.js'
import {describeConnection} from '../lib/connection/resolve.js'
import {Errors} from '@oclif/core'
import {ExitCode} from '../lib/errors.js'
import {gatherHealth} from '../lib/health/gather.js'
import {type HealthReport, judge} from '../lib/health/report.js'
import {renderTable, statusMark} from '../lib/ui/output.js'

export default class Health extends BaseCommand<typeof Health> {
  static override summary = 'Check that a server is ready for steep-repl.'
  static override description = `Reports the server version, the steep_repl schema version, wal_level, replication slots and the
WAL they retain, whether the role has the privileges the tool needs, and the job queue.
Exits 0 only when every check passes (1 when one fails, 6 when the server cannot be reached).`

  static override examples = [
    '<%= config.bin %> health -d postgres://postgres@localhost/app',
    '<%= config.bin %> health --json',
  ]

  static override flags = {db: dbFlag}

  async run(): Promise<HealthReport> {
    const conn = await this.connection(this.flags.db)
    const report = judge(await withClient(conn, gatherHealth))
    if (!this.jsonEnabled()) {
      this.log(`${describeConnection(conn)}: ${report.healthy ? 'healthy' : 'NOT healthy'}\n`)
      this.log(renderTable(['check', 'status', 'detail'], report.checks.map((c) => [c.name, statusMark(c.status), c.detail])))
      const hints = report.checks.filter((c) => c.status !== 'ok' && c.hint)
      if (hints.length) this.log('\n' + hints.map((c) => `${c.name}: ${c.hint}`).join('\n'))
    }
    // Unhealthy is not an error message, only an exit code; the report itself is the output.
    if (!report.healthy) {
      if (this.jsonEnabled()) this.logJson(this.toSuccessJson(report))
      throw new Errors.ExitError(ExitCode.error)
    }
    return report
  }
}
