import {Args} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {withClient} from '../../lib/connection/connect.js'
import {UsageError} from '../../lib/errors.js'
import {type JobDocument, jobDocument} from '../../direct/run.js'
import {requireJob} from '../../direct/queue.js'
import {requireJobsSchema} from '../../direct/session.js'
import {formatDuration, itemTitle, phaseTitle, rateText, summaryLine} from '../../lib/ui/progress-format.js'

export const jobIdArg = Args.string({description: 'Job id (from jobs list, or printed when the job was queued).', required: true})

export function checkJobId(id: string): string {
  if (!/^\d{1,19}$/.test(id)) throw new UsageError(`"${id}" is not a job id (a positive number)`)
  return id
}

export default class JobsShow extends BaseCommand<typeof JobsShow> {
  static override summary = 'Show one job: status, params, attempts, progress by phase, error and result.'
  static override description = `Reads the job's row in steep_repl.work_queue, including the latest progress its executor persisted there (the same state a watcher joining late starts from).`

  static override examples = ['<%= config.bin %> jobs show 42 -d postgres://postgres@localhost/app', '<%= config.bin %> jobs show 42 -d app --json']

  static override args = {id: jobIdArg}
  static override flags = {db: dbFlag}

  async run(): Promise<JobDocument> {
    const id = checkJobId(this.args.id)
    const db = await this.connection(this.flags.db)
    const row = await withClient(db, async (c) => {
      await requireJobsSchema(c, db)
      return requireJob(c, id)
    })
    const j = jobDocument(row)
    if (!this.jsonEnabled()) {
      const lines = [
        `job ${j.id}: ${j.operation}, ${j.status}${j.cancelRequested && j.status === 'running' ? ' (cancel requested)' : ''}`,
        `  params:    ${JSON.stringify(j.params)}`,
        `  attempts:  ${j.attempts} of ${j.maxAttempts}, priority ${j.priority}`,
        `  created:   ${j.createdAt} by ${j.createdBy}`,
      ]
      if (j.startedAt) lines.push(`  started:   ${j.startedAt}${j.executor ? ` (${j.executor}${j.leaseOwner ? `, ${j.leaseOwner}` : ''})` : ''}`)
      if (j.leaseExpiresAt) lines.push(`  lease:     until ${j.leaseExpiresAt}`)
      if (j.completedAt) lines.push(`  ended:     ${j.completedAt}${j.durationSeconds !== null ? ` (${formatDuration(j.durationSeconds)})` : ''}`)
      if (j.error) lines.push(`  error:     ${j.error}`)
      const p = j.progress
      if (p) {
        lines.push(`  progress:  ${summaryLine(p) || p.status}${p.status === 'running' && rateText(p) ? '' : ''}`)
        for (const ph of p.phases) lines.push(`    ${ph.state.padEnd(8)} ${phaseTitle(ph, p)}`)
        for (const it of p.items) lines.push(`      ${it.state.padEnd(8)} ${itemTitle(it)}`)
      }
      if (j.result !== null && j.result !== undefined) lines.push(`  result:    ${JSON.stringify(j.result)}`)
      this.log(lines.join('\n'))
    }
    return j
  }
}
