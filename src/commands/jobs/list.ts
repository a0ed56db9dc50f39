import {Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {withClient} from '../../lib/connection/connect.js'
import {type JobDocument, jobDocument} from '../../direct/run.js'
import {JOB_STATUSES} from '../../direct/progress-schema.js'
import {listJobs, listWorkers, type WorkerRow} from '../../direct/queue.js'
import {requireJobsSchema} from '../../direct/session.js'
import {renderTable} from '../../lib/ui/output.js'
import {formatDuration, summaryLine} from '../../lib/ui/progress-format.js'

export interface JobsListResult {
  jobs: JobDocument[]
  workers: Array<{id: string; host: string; pid: number; version: string; operations: string[] | null; concurrency: number; lastSeen: string; live: boolean; jobsDone: number}>
}

export default class JobsList extends BaseCommand<typeof JobsList> {
  static override summary = 'List jobs of the work queue, newest first, and the registered workers.'
  static override description = `Shows the jobs in steep_repl.work_queue with their status, attempts, who ran them (direct or a worker), how long they took, and their progress or error. Filter by --status and --operation (both repeatable).`

  static override examples = [
    '<%= config.bin %> jobs list -d postgres://postgres@localhost/app',
    '<%= config.bin %> jobs list -d app --status running --status pending',
    '<%= config.bin %> jobs list -d app --operation noop --limit 10 --json',
  ]

  static override flags = {
    db: dbFlag,
    status: Flags.string({char: 's', summary: 'Only jobs with this status.', options: [...JOB_STATUSES], multiple: true}),
    operation: Flags.string({char: 'o', summary: 'Only jobs of this operation.', multiple: true}),
    limit: Flags.integer({char: 'n', summary: 'At most this many jobs.', default: 50, min: 1, max: 10_000}),
  }

  async run(): Promise<JobsListResult> {
    const db = await this.connection(this.flags.db)
    const {rows, workers} = await withClient(db, async (c) => {
      await requireJobsSchema(c, db)
      return {rows: await listJobs(c, {status: this.flags.status, operation: this.flags.operation, limit: this.flags.limit}), workers: await listWorkers(c)}
    })
    const jobs = rows.map(jobDocument)
    if (!this.jsonEnabled()) {
      if (jobs.length === 0) this.log('no jobs')
      else {
        this.log(
          renderTable(
            ['id', 'operation', 'status', 'attempts', 'executor', 'created', 'took', 'progress / error'],
            jobs.map((j) => [
              j.id,
              j.operation,
              j.status + (j.cancelRequested && j.status === 'running' ? ' (cancelling)' : ''),
              `${j.attempts}/${j.maxAttempts}`,
              j.executor ?? '',
              j.createdAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
              j.durationSeconds !== null ? formatDuration(j.durationSeconds) : '',
              j.error ?? (j.progress && j.status === 'running' ? summaryLine(j.progress) : ''),
            ]),
          ),
        )
      }
      const live = workers.filter((w) => w.live)
      this.log(`\n${live.length} live worker(s)${live.length ? ': ' + live.map((w) => `${w.id} (${(w.operations ?? ['all']).join(',')}, concurrency ${w.concurrency})`).join('; ') : ''}`)
    }
    return {jobs, workers: workers.map(workerDoc)}
  }
}

function workerDoc(w: WorkerRow): JobsListResult['workers'][number] {
  return {id: w.id, host: w.host, pid: w.pid, version: w.version, operations: w.operations, concurrency: w.concurrency, lastSeen: w.last_seen.toISOString(), live: w.live, jobsDone: Number(w.jobs_done)}
}
