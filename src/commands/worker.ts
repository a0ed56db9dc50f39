import {Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../lib/base-command.js'
import {describeConnection} from '../lib/connection/resolve.js'
import {ConnectionError, UsageError} from '../lib/errors.js'
import {parseDuration} from '../direct/mode.js'
import {knownOperations} from '../direct/operations/catalog.js'
import {openQueueClient, requireJobsSchema} from '../direct/session.js'
import {Worker, type WorkerEvent} from '../direct/worker.js'
import {redact} from '../lib/redact.js'

export default class WorkerCommand extends BaseCommand<typeof WorkerCommand> {
  static override summary = 'Run queued jobs: claim them from steep_repl.work_queue, run them, report progress.'
  static override description = `Waits for jobs on the database given with -d (LISTEN on steep_repl_work, with polling as a fallback), claims up to --concurrency at a time and runs them. While it runs, the worker is registered in steep_repl.workers and heartbeats there, so job commands on other hosts follow their jobs here instead of running them themselves.

Each claimed job holds a lease the worker renews; if the worker is killed, its jobs are taken again by another worker once their lease expires, up to the job's max attempts.

SIGINT or SIGTERM stops it cleanly: no new job is claimed, running jobs get --grace to finish, then are asked to stop and are released back to the queue (the attempt is not counted). A second signal releases them at once.

It logs one line per job event (JSON lines on stdout with --json).`

  static override examples = [
    '<%= config.bin %> worker -d postgres://postgres@localhost/app',
    '<%= config.bin %> worker -d app --concurrency 4 --operations noop --json',
  ]

  static override flags = {
    db: dbFlag,
    concurrency: Flags.integer({char: 'c', summary: 'Jobs run at the same time.', default: 1, min: 1, max: 256}),
    operations: Flags.string({summary: 'Only these operations, comma-separated (default: every operation this CLI knows).', helpValue: 'a,b'}),
    'poll-interval': Flags.string({summary: 'How often to look for jobs without a wake-up (and reclaim expired leases).', default: '2s', helpValue: 'DURATION'}),
    heartbeat: Flags.integer({summary: 'Seconds between heartbeats in steep_repl.workers (live = seen within 3 heartbeats).', default: 5, min: 1, max: 3600}),
    lease: Flags.string({
      summary: "Lease length of the jobs this worker runs (default: each operation's own, 30s for most); renewed every third of it.",
      description: 'A killed worker\'s jobs are taken again once their lease expires: a shorter lease means faster recovery and more renewals.',
      helpValue: 'DURATION',
    }),
    grace: Flags.string({summary: 'On SIGINT/SIGTERM, how long running jobs may go on before they are stopped and released.', default: '10s', helpValue: 'DURATION'}),
  }

  async run(): Promise<void> {
    const known = knownOperations()
    const operations = this.flags.operations ? this.flags.operations.split(',').map((s) => s.trim()).filter(Boolean) : known
    const unknown = operations.filter((o) => !known.includes(o))
    if (unknown.length) throw new UsageError(`--operations: unknown operation(s) ${unknown.join(', ')}`, {hint: `Known: ${known.join(', ')}`})
    const pollMs = parseDuration(this.flags['poll-interval'], '--poll-interval') * 1000
    const graceMs = parseDuration(this.flags.grace, '--grace') * 1000
    const leaseSeconds = this.flags.lease ? parseDuration(this.flags.lease, '--lease') : undefined
    if (leaseSeconds !== undefined && leaseSeconds < 1) throw new UsageError('--lease: at least 1s')
    if (pollMs < 100) throw new UsageError('--poll-interval: at least 100ms')
    const db = await this.connection(this.flags.db)
    const check = await openQueueClient(db, 'steep-repl worker')
    try {
      await requireJobsSchema(check, db)
    } finally {
      await check.end().catch(() => {})
    }
    const json = this.jsonEnabled()
    let failed: string | undefined
    const worker = new Worker({
      db,
      operations,
      concurrency: this.flags.concurrency,
      pollMs,
      heartbeatSeconds: this.flags.heartbeat,
      graceMs,
      leaseSeconds,
      configPath: this.flags.config,
      version: this.config.version,
      onEvent: (e) => {
        if (e.event === 'error' && /control connection/.test(e.message ?? '')) failed = e.error
        if (json) process.stdout.write(redact(JSON.stringify(e)) + '\n')
        else process.stdout.write(redact(formatEvent(e, describeConnection(db))) + '\n')
      },
    })
    await worker.start()
    let signals = 0
    const onSignal = () => {
      signals++
      void worker.stop({now: signals > 1})
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    // Ends on a signal, or by itself when the worker loses its control connection.
    await worker.finished
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    if (failed) throw new ConnectionError(`worker stopped: lost its connection to ${describeConnection(db)}: ${failed}`)
  }
}

function formatEvent(e: WorkerEvent, where: string): string {
  const head = `${e.ts} ${e.job ? `job ${e.job} ${e.operation ?? ''}`.trim() + ' ' : ''}${e.event}`
  const parts: string[] = []
  if (e.event === 'started') parts.push(`worker ${e.worker} on ${where}`)
  if (e.attempt !== undefined && e.event === 'claimed') parts.push(`attempt ${e.attempt}`)
  if (e.durationMs !== undefined) parts.push(`in ${(e.durationMs / 1000).toFixed(1)}s`)
  if (e.status) parts.push(`now ${e.status}`)
  if (e.message) parts.push(e.message)
  if (e.error) parts.push(e.error)
  return parts.length ? `${head}: ${parts.join(', ')}` : head
}
