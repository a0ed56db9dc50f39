import {createInterface} from 'node:readline/promises'
import {Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../lib/base-command.js'
import {withClient} from '../lib/connection/connect.js'
import {describeConnection} from '../lib/connection/resolve.js'
import {CancelledError, UsageError} from '../lib/errors.js'
import {runningJobs, runningJobsError, uninstall, type UninstallResult} from '../lib/install/uninstall.js'

export default class Uninstall extends BaseCommand<typeof Uninstall> {
  static override summary = 'Remove the steep_repl schema and everything in it from a database.'
  static override description = `Drops the steep_repl schema (job history, node registry, snapshots records, audit logs).
Refuses while jobs are running. Asks for confirmation unless --yes is given; without a terminal
to ask on, --yes is required.`

  static override examples = ['<%= config.bin %> uninstall -d postgres://postgres@localhost/app --yes']

  static override flags = {
    db: dbFlag,
    yes: Flags.boolean({char: 'y', summary: 'Do not ask for confirmation.'}),
  }

  async run(): Promise<UninstallResult> {
    const conn = await this.connection(this.flags.db)
    const where = describeConnection(conn)
    return withClient(conn, async (client) => {
      const running = await runningJobs(client)
      if (running.length > 0) throw runningJobsError(running)
      if (!this.flags.yes) {
        if (!process.stdin.isTTY || !process.stderr.isTTY) {
          throw new UsageError('uninstall needs confirmation: pass --yes when not running on a terminal')
        }
        const rl = createInterface({input: process.stdin, output: process.stderr})
        const answer = await rl.question(`Drop schema steep_repl and all its data on ${where}? Type "yes" to confirm: `)
        rl.close()
        if (answer.trim().toLowerCase() !== 'yes') throw new CancelledError('uninstall cancelled; nothing was changed')
      }
      const result = await uninstall(client)
      this.log(result.dropped ? `steep_repl schema removed from ${where}` : `steep_repl schema is not installed on ${where}; nothing to do`)
      return result
    })
  }
}
