import {Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {withClient} from '../../lib/connection/connect.js'
import {StateError} from '../../lib/errors.js'
import {type JobDocument, followJob, jobDocument} from '../../direct/run.js'
import {getJob, requestCancel, requireJob} from '../../direct/queue.js'
import {requireJobsSchema} from '../../direct/session.js'
import {parseDuration} from '../../direct/mode.js'
import {createProgressView} from '../../lib/ui/progress.js'
import {CancelledError} from '../../lib/errors.js'
import {checkJobId, jobIdArg} from './show.js'

export default class JobsCancel extends BaseCommand<typeof JobsCancel> {
  static override summary = 'Cancel a job: a pending one at once, a running one at its next safe point.'
  static override description = `A pending job is marked cancelled and will not run. A running job is asked to stop: its executor (a worker or the command running it directly) is told at once over NOTIFY, and the job's handler stops at its next safe point, cleaning up what it started; the job then ends as cancelled.

With --wait, the command waits until the job has actually stopped (up to --timeout). Cancelling a job that already ended as cancelled does nothing; one that completed or failed is an error.`

  static override examples = ['<%= config.bin %> jobs cancel 42 -d postgres://postgres@localhost/app', '<%= config.bin %> jobs cancel 42 -d app --wait --timeout 60s --json']

  static override args = {id: jobIdArg}
  static override flags = {
    db: dbFlag,
    wait: Flags.boolean({summary: 'Wait until the job has stopped.'}),
    timeout: Flags.string({summary: 'With --wait: give up after this long (exit 5).', helpValue: 'DURATION', dependsOn: ['wait']}),
  }

  async run(): Promise<JobDocument> {
    const id = checkJobId(this.args.id)
    const timeoutSec = this.flags.timeout ? parseDuration(this.flags.timeout) : undefined
    const db = await this.connection(this.flags.db)
    const row = await withClient(db, async (c) => {
      await requireJobsSchema(c, db)
      const before = await requireJob(c, id)
      if (before.status === 'complete' || before.status === 'failed') {
        throw new StateError(`job ${id} already ended (${before.status}); nothing to cancel`)
      }
      await requestCancel(c, id)
      return (await getJob(c, id))!
    })
    if (row.status === 'cancelled') {
      this.log(`job ${id} (${row.operation}) cancelled`)
      return jobDocument(row)
    }
    if (!this.flags.wait) {
      this.log(`job ${id} (${row.operation}) asked to stop; it stops at its next safe point (steep-repl jobs wait ${id} to follow it)`)
      return jobDocument(row)
    }
    const view = await createProgressView('silent', `job ${id}`)
    try {
      const final = await followJob(db, id, view, {timeoutSec})
      this.log(`job ${id} (${row.operation}) completed before it could stop`)
      return jobDocument(final)
    } catch (err) {
      if (err instanceof CancelledError) {
        const final = await withClient(db, (c) => getJob(c, id))
        this.log(`job ${id} (${row.operation}) cancelled`)
        return jobDocument(final!)
      }
      throw err
    }
  }
}
