// What a job command calls: validate params, then run the job in this process (--direct, or when no
// live worker takes it), follow it on a worker, or only queue it (--no-wait); render progress;
// return the job document or throw the error whose exit code says how it ended (1 failed,
// 4 cancelled, 5 timeout). Also `jobFlags`, the flags every job command shares.

import {randomBytes} from 'node:crypto'
import {hostname} from 'node:os'
import {setTimeout as sleep} from 'node:timers/promises'
import {Flags} from '@oclif/core'
import type pg from 'pg'
import type {ConnParams} from '../lib/connection/resolve.js'
import {describeConnection} from '../lib/connection/resolve.js'
import {CancelledError, StateError, SteepError, TimeoutError} from '../lib/errors.js'
import {chooseProgressMode, createProgressView, defaultInteractive, type ProgressView} from '../lib/ui/progress.js'
import {JobExecution, type ExecOutcome} from './executor.js'
import {decideRun, parseDuration} from './mode.js'
import {JobNotFoundError, watchJob} from './progress.js'
import {decodeProgress, type ProgressPayload, WORK_CHANNEL, parseWorkMessage} from './progress-schema.js'
import {claimById, DEFAULT_LEASE_SECONDS, DEFAULT_MAX_ATTEMPTS, enqueue, getJob, insertRunning, type JobRow, listWorkers, requestCancel} from './queue.js'
import {type OperationKind, validateParams} from './registry.js'
import {makeConnResolver, openQueueClient, requireJobsSchema} from './session.js'
import type {z} from 'zod'

/** A job ended failed: exit 1, with the job's error. */
export class JobFailedError extends SteepError {
  override readonly code = 'job_failed'
}

export const jobFlags = {
  direct: Flags.boolean({
    summary: 'Run the job in this process (still recorded in the queue, still publishing progress); no worker needed.',
    helpGroup: 'JOB',
  }),
  'no-wait': Flags.boolean({
    summary: 'Queue the job, print its id and exit; a worker runs it (see steep-repl jobs wait).',
    helpGroup: 'JOB',
  }),
  'progress-json': Flags.boolean({
    summary: 'Write progress to stderr as NDJSON, one protocol payload per line.',
    helpGroup: 'JOB',
  }),
  timeout: Flags.string({
    summary: 'Stop waiting after this long (exit 5): 90, 90s, 15m, 2h. A direct run is cancelled; a job on a worker goes on.',
    helpValue: 'DURATION',
    helpGroup: 'JOB',
  }),
  priority: Flags.integer({summary: 'Queue priority, -1000 to 1000 (higher runs first).', min: -1000, max: 1000, default: 0, helpGroup: 'JOB'}),
  'max-attempts': Flags.integer({
    summary: 'How many times the job may be started (after a lost executor or a lost connection).',
    min: 1,
    max: 100,
    helpGroup: 'JOB',
  }),
}

export interface JobFlagValues {
  direct?: boolean
  'no-wait'?: boolean
  'progress-json'?: boolean
  timeout?: string
  priority?: number
  'max-attempts'?: number
}

/** A job as commands print it (--json) and return it. */
export interface JobDocument {
  id: string
  operation: string
  status: JobRow['status']
  executor: JobRow['executor']
  attempts: number
  maxAttempts: number
  priority: number
  params: Record<string, unknown>
  createdAt: string
  createdBy: string
  startedAt: string | null
  completedAt: string | null
  durationSeconds: number | null
  error: string | null
  cancelRequested: boolean
  leaseOwner: string | null
  leaseExpiresAt: string | null
  progress: ProgressPayload | null
  result: unknown
}

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null)

export function jobDocument(r: JobRow): JobDocument {
  const decoded = r.progress ? decodeProgress(r.progress) : undefined
  return {
    id: r.id,
    operation: r.operation,
    status: r.status,
    executor: r.executor,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    priority: r.priority,
    params: r.params,
    createdAt: r.created_at.toISOString(),
    createdBy: r.created_by,
    startedAt: iso(r.started_at),
    completedAt: iso(r.completed_at),
    durationSeconds: r.started_at && r.completed_at ? Math.round((r.completed_at.getTime() - r.started_at.getTime()) / 100) / 10 : null,
    error: r.error_message,
    cancelRequested: r.cancel_requested_at !== null,
    leaseOwner: r.lease_owner,
    leaseExpiresAt: iso(r.lease_expires_at),
    progress: decoded?.ok ? decoded.payload : null,
    result: r.result ?? null,
  }
}

/** Throws the error matching a finished job's status (nothing for complete). */
export function throwForStatus(row: JobRow): void {
  if (row.status === 'complete') return
  const what = `job ${row.id} (${row.operation})`
  if (row.status === 'cancelled') throw new CancelledError(`${what} was cancelled${row.error_message ? `: ${row.error_message}` : ''}`)
  if (row.status === 'failed') {
    throw new JobFailedError(`${what} failed: ${row.error_message ?? 'no reason recorded'}`, {hint: `Details: steep-repl jobs show ${row.id}`})
  }
}

export interface JobHost {
  jsonEnabled(): boolean
  /** --config of the command, for connection names found in params. */
  configPath?: string
  /** Where notes and progress go (default process.stderr). */
  stderr?: NodeJS.WriteStream
}

export interface RunJobOptions<S extends z.ZodType, R> {
  kind: OperationKind<S, R>
  params: z.input<S>
  /** The queue database: where the job is recorded (and, for most kinds, what it works on). */
  db: ConnParams
  flags: JobFlagValues
  /** Title for displays (default: the kind's title(params), else its name). */
  title?: string
  /** Lease length override (tests). */
  leaseSeconds?: number
  /**
   * Servers this command already resolved, by the password-free reference stored in the params
   * (see lib/connection/ref.ts): a direct run uses them as given, passwords included, while the
   * queue only ever holds the reference. A worker resolves the reference itself.
   */
  localConnections?: ReadonlyMap<string, ConnParams>
}

function onSignals(handler: (signal: NodeJS.Signals) => void): () => void {
  const h = (s: NodeJS.Signals) => handler(s)
  process.on('SIGINT', h)
  process.on('SIGTERM', h)
  return () => {
    process.off('SIGINT', h)
    process.off('SIGTERM', h)
  }
}

/**
 * Runs a job kind the way the user asked (see the file comment) and returns its document when it
 * completes, or when it was only queued (--no-wait, status pending).
 */
export async function runJobCommand<S extends z.ZodType, R>(host: JobHost, o: RunJobOptions<S, R>): Promise<JobDocument> {
  const params = validateParams(o.kind, o.params) as Record<string, unknown>
  const timeoutSec = o.flags.timeout !== undefined ? parseDuration(o.flags.timeout) : undefined
  const stream = host.stderr ?? process.stderr
  const mode = chooseProgressMode({json: host.jsonEnabled(), progressJson: Boolean(o.flags['progress-json']), interactive: stream === process.stderr && defaultInteractive()})
  const title = o.title ?? o.kind.title?.(params as z.infer<S>) ?? o.kind.name
  const view = await createProgressView(mode, title, stream)
  const where = describeConnection(o.db)
  const client = await openQueueClient(o.db, `steep-repl ${o.kind.name}`)
  try {
    await requireJobsSchema(client, o.db)
    const live = await listWorkers(client, o.kind.name)
    const plan = decideRun({direct: Boolean(o.flags.direct), noWait: Boolean(o.flags['no-wait']), liveWorkers: live.length})
    const common = {operation: o.kind.name, params, priority: o.flags.priority ?? 0, maxAttempts: o.flags['max-attempts'] ?? o.kind.maxAttempts ?? DEFAULT_MAX_ATTEMPTS}
    if (plan.run === 'queue') {
      const id = await enqueue(client, common)
      view.note(
        plan.workers > 0
          ? `job ${id} (${o.kind.name}) queued on ${where}; ${plan.workers} live worker(s) take it. Follow it: steep-repl jobs wait ${id}`
          : `job ${id} (${o.kind.name}) queued on ${where}, but no live worker takes ${o.kind.name}: it waits until one starts (steep-repl worker -d ...)`,
      )
      return jobDocument((await getJob(client, id))!)
    }
    if (plan.run === 'follow') {
      const id = await enqueue(client, common)
      view.note(`job ${id} (${o.kind.name}) queued on ${where}; a worker runs it (${live.map((w) => w.id).join(', ')}); following its progress`)
      await client.end().catch(() => {})
      const row = await followJob(o.db, id, view, {timeoutSec})
      return jobDocument(row)
    }
    if (plan.why === 'no-worker') view.note(`no live worker takes ${o.kind.name} on ${where}: running it in this process (--direct skips this check)`)
    const row = await runDirect(client, host, o, common, view, timeoutSec)
    return jobDocument(row)
  } finally {
    await client.end().catch(() => {})
  }
}

async function runDirect<S extends z.ZodType, R>(
  client: pg.Client,
  host: JobHost,
  o: RunJobOptions<S, R>,
  common: {operation: string; params: Record<string, unknown>; priority: number; maxAttempts: number},
  view: ProgressView,
  timeoutSec: number | undefined,
): Promise<JobRow> {
  const owner = `direct:${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`
  const leaseSeconds = o.leaseSeconds ?? o.kind.leaseSeconds ?? DEFAULT_LEASE_SECONDS
  let row: JobRow | undefined = await insertRunning(client, {...common, owner, leaseSeconds})
  const id = row.id
  view.note(`job ${id} (${o.kind.name}) running in this process`)
  let exec: JobExecution | undefined
  let interrupted = 0
  let timedOut = false
  // Cancel requests from elsewhere (steep-repl jobs cancel, steep_repl.cancel_job) arrive by NOTIFY.
  client.on('notification', (n) => {
    const m = parseWorkMessage(n.payload)
    if (n.channel === WORK_CHANNEL && m.kind === 'cancel' && m.id === id) exec?.stop('cancel')
  })
  await client.query(`LISTEN ${WORK_CHANNEL}`)
  const offSignals = onSignals(() => {
    interrupted++
    if (interrupted === 1) {
      view.note(`cancelling job ${id} (interrupt again to leave at once; the job is then marked cancelled when its lease expires)`)
      exec?.stop('cancel', 'cancelled by an interrupt of the command running it')
      void requestCancel(client, id).catch(() => {})
    } else {
      process.exit(130)
    }
  })
  const timer =
    timeoutSec !== undefined
      ? setTimeout(() => {
          timedOut = true
          exec?.stop('timeout', `timed out after ${timeoutSec}s (--timeout)`)
        }, timeoutSec * 1000)
      : undefined
  const resolveConnection = makeConnResolver({db: o.db, configPath: host.configPath, local: o.localConnections})
  try {
    let outcome: ExecOutcome
    for (;;) {
      exec = new JobExecution(o.kind as never, row, {
        queue: client,
        db: o.db,
        owner,
        executor: 'direct',
        resolveConnection,
        log: (m) => view.note(m),
        onProgress: (p) => view.update(p),
        leaseSeconds: o.leaseSeconds,
      })
      if (timedOut) exec.stop('timeout', `timed out after ${timeoutSec}s (--timeout)`)
      if (interrupted) exec.stop('cancel', 'cancelled by an interrupt of the command running it')
      outcome = await exec.run()
      if (outcome.kind !== 'retry' || outcome.status !== 'pending') break
      view.note(`job ${id}: attempt ${row.attempts} failed (${outcome.error}); retrying in ${outcome.delaySeconds}s`)
      await sleep(outcome.delaySeconds * 1000)
      if (interrupted || timedOut) break
      row = await claimById(client, id, owner, leaseSeconds, 'direct')
      if (!row) {
        // A worker took it meanwhile: follow it there.
        view.note(`job ${id} was taken by a worker; following it`)
        offSignals()
        const final = await followJob(o.db, id, view, {timeoutSec})
        return final
      }
    }
    const final = (await getJob(client, id))!
    await view.end(final.status, final.error_message)
    if (outcome.kind === 'lost') throw new JobFailedError(`job ${id} lost its lease while running here (status now ${final.status}); another executor may run it`, {hint: `See: steep-repl jobs show ${id}`})
    if (timedOut && final.status === 'cancelled') throw new TimeoutError(`job ${id} (${o.kind.name}) timed out after ${timeoutSec}s and was cancelled`)
    if (final.status === 'pending' && (interrupted || timedOut)) {
      await requestCancel(client, id).catch(() => {})
      if (timedOut) throw new TimeoutError(`job ${id} (${o.kind.name}) timed out after ${timeoutSec}s and was cancelled`)
      throw new CancelledError(`job ${id} (${o.kind.name}) was cancelled`)
    }
    // A direct run knows the handler's own error: a usage, schema or state error keeps its exit
    // code (2, 3, …) instead of becoming a generic job failure (1).
    if (final.status === 'failed' && outcome.kind === 'failed' && outcome.cause instanceof SteepError && outcome.cause.exitCode !== 1) {
      outcome.cause.message = `job ${id} (${o.kind.name}) failed: ${outcome.cause.message}`
      throw outcome.cause
    }
    throwForStatus(final)
    return final
  } finally {
    if (timer) clearTimeout(timer)
    offSignals()
  }
}

/**
 * Follows a job (on a worker, or anywhere) until it ends, rendering its progress; returns its row
 * when complete and throws the matching error otherwise. Interrupting stops following only.
 */
export async function followJob(db: ConnParams, id: string, view: ProgressView, o: {timeoutSec?: number} = {}): Promise<JobRow> {
  const ac = new AbortController()
  const offSignals = onSignals(() =>
    ac.abort(new CancelledError(`stopped following job ${id}; the job goes on`, {hint: `Follow it again: steep-repl jobs wait ${id}; stop it: steep-repl jobs cancel ${id}`})),
  )
  try {
    const row = await watchJob(db, id, {
      onProgress: (p) => view.update(p),
      signal: ac.signal,
      timeoutMs: o.timeoutSec !== undefined ? o.timeoutSec * 1000 : undefined,
    }).catch(async (err) => {
      if (err instanceof TimeoutError) {
        await view.end('running')
        throw new TimeoutError(`timed out after ${o.timeoutSec}s waiting for job ${id}; the job goes on`, {hint: `Wait again: steep-repl jobs wait ${id}; stop it: steep-repl jobs cancel ${id}`})
      }
      if (err instanceof JobNotFoundError) throw new StateError(err.message, {hint: 'List jobs: steep-repl jobs list'})
      await view.end('running')
      throw err
    })
    await view.end(row.status, row.error_message)
    throwForStatus(row)
    return row
  } finally {
    offSignals()
  }
}

