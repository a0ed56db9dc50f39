import {Args, Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {UsageError} from '../../lib/errors.js'
import {type JobDocument, jobFlags, runJobCommand} from '../../direct/run.js'
import {knownOperations, loadOperation} from '../../direct/operations/catalog.js'

export default class JobsRun extends BaseCommand<typeof JobsRun> {
  static override summary = 'Run a job of any operation with params given as JSON (noop for tests and demos).'
  static override description = `Queues OPERATION with --params and, as every job command does, runs it in this process with --direct, follows it on a live worker when one takes the operation (and otherwise runs it here, saying so), or only queues it with --no-wait.

The noop operation sleeps for "seconds", reporting progress over "items" fake tables: {"seconds": 5, "items": 4}. Params are checked against the operation's schema before anything is queued, and must not contain passwords.`

  static override examples = [
    `<%= config.bin %> jobs run noop -d postgres://postgres@localhost/app --params '{"seconds": 5, "items": 4}' --direct`,
    `<%= config.bin %> jobs run noop -d app --params '{"seconds": 60}' --no-wait --json`,
  ]

  static override args = {operation: Args.string({description: 'Operation kind (see: steep-repl jobs run --help).', required: true})}
  static override flags = {
    db: dbFlag,
    params: Flags.string({char: 'p', summary: 'Params as a JSON object.', default: '{}', helpValue: 'JSON'}),
    ...jobFlags,
  }

  async run(): Promise<JobDocument> {
    const kind = await loadOperation(this.args.operation)
    if (!kind) throw new UsageError(`unknown operation ${this.args.operation}`, {hint: `Known: ${knownOperations().join(', ')}`})
    let params: unknown
    try {
      params = JSON.parse(this.flags.params)
    } catch (err) {
      throw new UsageError(`--params is not JSON: ${(err as Error).message}`)
    }
    const db = await this.connection(this.flags.db)
    const job = await runJobCommand({jsonEnabled: () => this.jsonEnabled(), configPath: this.flags.config}, {kind, params: params as never, db, flags: this.flags})
    if (!this.jsonEnabled()) {
      if (job.status === 'pending') this.log(job.id)
      else this.log(`job ${job.id} (${job.operation}) complete${job.result !== null ? `: ${JSON.stringify(job.result)}` : ''}`)
    }
    return job
  }
}
