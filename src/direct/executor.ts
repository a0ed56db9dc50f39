// Runs one claimed job in this process: validates its params, gives the handler its context
// (params, progress, cancellation signal, connections), renews the lease while it works, and records
// the outcome — complete, failed, cancelled, queued again for a retry, released on shutdown, or
// nothing at all when the lease was lost (another executor owns the job now). Used by the worker
// and by direct runs alike, so both produce the same job record.

import type pg from 'pg'
import type {ConnParams} from '../lib/connection/resolve.js'
import {CancelledError, isConnectionFailure} from '../lib/errors.js'
import {redact, redactValue} from '../lib/redact.js'
import {describeZodError} from './params.js'
import {ProgressTracker} from './progress-model.js'
import {ProgressPublisher} from './progress.js'
import type {ProgressPayload} from './progress-schema.js'
import {type ClaimedJob, DEFAULT_LEASE_SECONDS, finish as finishOne, type FinishInput, type Lease, publishProgress, release, renewLease, retryOrFail} from './queue.js'
import type {AnyOperationKind, JobContext} from './registry.js'

type Queryable = Pick<pg.Client, 'query'>

export type StopKind = 'cancel' | 'timeout' | 'shutdown' | 'lost'

/** The reason a job's signal was aborted; thrown by ctx.checkpoint(). */
export class JobStop extends CancelledError {
  constructor(
    readonly kind: StopKind,
    message: string,
  ) {
    super(message)
  }
}

export type ExecOutcome =
  | {kind: 'complete'; result: unknown}
  | {kind: 'failed'; error: string; cause?: unknown}
  | {kind: 'cancelled'; error: string}
  | {kind: 'retry'; error: string; status: 'pending' | 'failed'; delaySeconds: number}
  | {kind: 'released'}
  | {kind: 'lost'}

export interface ExecEnv {
  /** Where lease renewals, progress and the outcome are written (a client or a pool). */
  queue: Queryable
  db: ConnParams
  owner: string
  executor: 'direct' | 'worker'
  resolveConnection(ref: string): Promise<ConnParams>
  log(message: string): void
  /** Every payload as it is published (direct runs render from here). */
  onProgress?(p: ProgressPayload): void
  /** Override of the kind's lease length (tests). */
  leaseSeconds?: number
  /** The lease length the job was claimed with: when it is the one wanted, no renewal at start. */
  claimedLeaseSeconds?: number
  /** Records the outcome (a worker batches these); default: finish() on `queue`. */
  finish?(lease: Lease, f: FinishInput): Promise<boolean>
  /**
   * Called once when the handler has returned or thrown (or was never started), before the outcome
   * is recorded: a worker may claim the next job while this one's outcome is being written.
   */
  onHandlerSettled?(): void
}

/** Delay before retry n (1-based) after a connection failure: 5 s, 10 s, 20 s ... capped at 5 min. */
export const retryDelaySeconds = (attempt: number): number => Math.min(300, 5 * 2 ** Math.max(0, attempt - 1))

export class JobExecution {
  // The AbortController is made only when the handler reads ctx.signal (most short jobs never do);
  // until then a stop request is kept in `reason`.
  private ac: AbortController | undefined
  private reason: JobStop | undefined
  readonly lease: Lease
  private settled = false

  constructor(
    readonly kind: AnyOperationKind,
    readonly row: ClaimedJob,
    private readonly env: ExecEnv,
  ) {
    this.lease = {id: row.id, owner: env.owner, attempt: row.attempts}
  }

  get id(): string {
    return this.row.id
  }

  /** Asks the handler to stop at its next safe point. The first reason wins. */
  stop(kind: StopKind, message?: string): void {
    if (this.reason || this.settled) return
    const text =
      message ??
      {cancel: 'cancelled by request', timeout: 'timed out', shutdown: 'executor shutting down', lost: 'lease lost: another executor owns the job now'}[kind]
    this.reason = new JobStop(kind, text)
    this.ac?.abort(this.reason)
  }

  /** The handler has returned or thrown (its outcome may still be being written). */
  get handlerSettled(): boolean {
    return this.settled
  }

  get stopReason(): JobStop | undefined {
    return this.reason
  }

  /** The handler's signal: aborted with the stop reason (made on first use). */
  get signal(): AbortSignal {
    if (!this.ac) {
      this.ac = new AbortController()
      if (this.reason) this.ac.abort(this.reason)
    }
    return this.ac.signal
  }

  async run(): Promise<ExecOutcome> {
    const {kind, row, env, lease} = this
    const finish = (c: Queryable, l: Lease, f: FinishInput) => (env.finish ? env.finish(l, f) : finishOne(c, l, f))
    const leaseSeconds = env.leaseSeconds ?? kind.leaseSeconds ?? DEFAULT_LEASE_SECONDS
    const tracker = new ProgressTracker(row.id, row.operation, row.attempts)
    const publisher = new ProgressPublisher(
      tracker,
      (text) => publishProgress(env.queue, lease, text),
      env.onProgress,
      (err) => env.log(`job ${row.id}: progress not published: ${redact((err as Error).message)}`),
    )
    let handlerSettled = false
    const settleHandler = () => {
      if (handlerSettled) return
      handlerSettled = true
      env.onHandlerSettled?.()
    }
    const parsed = kind.params.safeParse(row.params)
    if (!parsed.success) {
      settleHandler()
      const error = `invalid params: ${describeZodError(parsed.error)}`
      const fin = await publisher.close('failed', error)
      return (await finish(env.queue, lease, {status: 'failed', error, progress: fin.encoded})) ? {kind: 'failed', error} : {kind: 'lost'}
    }

    // The lease: renewed every third of its length (at most every 5 s, so a cancel request made
    // without NOTIFY is noticed quickly); lost means stop and write nothing.
    const renewEvery = Math.max(250, Math.min(5000, (leaseSeconds * 1000) / 3))
    let renewing: Promise<void> | undefined
    const renew = async () => {
      try {
        const r = await renewLease(env.queue, lease, leaseSeconds)
        if (!r.held) this.stop('lost')
        else if (r.cancelRequested) this.stop('cancel')
      } catch (err) {
        env.log(`job ${row.id}: lease renewal failed: ${redact((err as Error).message)}`)
      }
    }
    if (env.claimedLeaseSeconds !== leaseSeconds) await renew()
    const timer = setInterval(() => {
      renewing ??= renew().finally(() => (renewing = undefined))
    }, renewEvery)

    const signalOf = () => this.signal
    const ctx: JobContext<unknown> = {
      job: {id: row.id, operation: row.operation, attempt: row.attempts, maxAttempts: row.max_attempts, executor: env.executor, owner: env.owner},
      params: parsed.data,
      progress: publisher,
      get signal() {
        return signalOf()
      },
      checkpoint: () => {
        if (this.reason) throw this.reason
      },
      db: env.db,
      resolveConnection: env.resolveConnection,
      log: (m) => env.log(`job ${row.id}: ${redact(m)}`),
    }

    let result: unknown
    let failure: unknown
    let ok = false
    try {
      if (this.reason) throw this.reason
      result = await kind.handler(ctx)
      ok = true
    } catch (err) {
      failure = err
    } finally {
      clearInterval(timer)
      await renewing
      this.settled = true
      settleHandler()
    }

    const stop = this.stopReason
    if (stop?.kind === 'lost') {
      await publisher.close('running')
      return {kind: 'lost'}
    }
    if (ok) {
      const fin = await publisher.close('complete')
      const stored = result === undefined ? null : redactValue(result)
      return (await finish(env.queue, lease, {status: 'complete', result: stored, progress: fin.encoded})) ? {kind: 'complete', result: stored} : {kind: 'lost'}
    }
    if (stop?.kind === 'shutdown') {
      await publisher.close('pending')
      return (await release(env.queue, lease, `released by ${env.owner} while shutting down; queued again`)) ? {kind: 'released'} : {kind: 'lost'}
    }
    if (stop || failure instanceof CancelledError) {
      const error = stop?.kind === 'timeout' ? stop.message : stop?.message ?? redact((failure as Error).message || 'cancelled')
      const fin = await publisher.close('cancelled', error)
      return (await finish(env.queue, lease, {status: 'cancelled', error, progress: fin.encoded})) ? {kind: 'cancelled', error} : {kind: 'lost'}
    }
    const error = redact((failure as Error)?.message || String(failure))
    if (isConnectionFailure(failure)) {
      const delaySeconds = retryDelaySeconds(row.attempts)
      const fin = await publisher.close(row.attempts < row.max_attempts ? 'pending' : 'failed', error)
      const status = await retryOrFail(env.queue, lease, error, delaySeconds, fin.encoded)
      return status ? {kind: 'retry', error, status, delaySeconds} : {kind: 'lost'}
    }
    const fin = await publisher.close('failed', error)
    return (await finish(env.queue, lease, {status: 'failed', error, progress: fin.encoded})) ? {kind: 'failed', error, cause: failure} : {kind: 'lost'}
  }
}
