import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {withClient} from '../../lib/connection/connect.js'
import {type JobDocument, followJob, jobDocument, jobFlags} from '../../direct/run.js'
import {listWorkers, requireJob} from '../../direct/queue.js'
import {requireJobsSchema} from '../../direct/session.js'
import {parseDuration} from '../../direct/mode.js'
import {chooseProgressMode, createProgressView, defaultInteractive} from '../../lib/ui/progress.js'
import {checkJobId, jobIdArg} from './show.js'

export default class JobsWait extends BaseCommand<typeof JobsWait> {
  static override summary = 'Wait for a job to end, showing its progress.'
  static override description = `Follows the job's progress (LISTEN on steep_repl_progress, starting from the state persisted on its row) until it is complete, failed or cancelled.

Exits 0 when it completed, 1 when it failed, 4 when it was cancelled, and 5 when --timeout passed first (the job goes on).`

  static override examples = [
    '<%= config.bin %> jobs wait 42 -d postgres://postgres@localhost/app',
    '<%= config.bin %> jobs wait 42 -d app --timeout 10m --json --progress-json',
  ]

  static override args = {id: jobIdArg}
  static override flags = {db: dbFlag, timeout: jobFlags.timeout, 'progress-json': jobFlags['progress-json']}

  async run(): Promise<JobDocument> {
    const id = checkJobId(this.args.id)
    const timeoutSec = this.flags.timeout ? parseDuration(this.flags.timeout) : undefined
    const db = await this.connection(this.flags.db)
    const row = await withClient(db, async (c) => {
      await requireJobsSchema(c, db)
      const r = await requireJob(c, id)
      if (r.status === 'pending' && (await listWorkers(c, r.operation)).length === 0) {
        this.note(`job ${id} is pending and no live worker takes ${r.operation}: it waits until one starts (steep-repl worker -d ...)`)
      }
      return r
    })
    const mode = chooseProgressMode({json: this.jsonEnabled(), progressJson: this.flags['progress-json'], interactive: defaultInteractive()})
    const view = await createProgressView(mode, `job ${id} ${row.operation}`)
    const final = await followJob(db, id, view, {timeoutSec})
    if (!this.jsonEnabled()) this.log(`job ${id} (${final.operation}) complete${final.result ? `: ${JSON.stringify(final.result)}` : ''}`)
    return jobDocument(final)
  }
}
