// The progress channel: the publisher an executor gives its handler (throttled, persisted on the
// job row, NOTIFY on steep_repl_progress), and the watcher a command uses to follow a job (LISTEN,
// the row read after LISTEN so a late watcher starts from the current state, and a slow poll of the
// row as a fallback for lost notifications and executors that die).

import type pg from 'pg'
import type {ConnParams} from '../lib/connection/resolve.js'
import {TimeoutError} from '../lib/errors.js'
import type {ProgressTracker} from './progress-model.js'
import {decodeProgress, ENDED_PREFIX, encodeProgress, endedMessageNames, isTerminal, type JobStatus, parseEndedMessage, PROGRESS_CHANNEL, type ProgressPayload} from './progress-schema.js'
import {getJob, type JobRow} from './queue.js'
import type {ProgressReporter} from './registry.js'
import {openQueueClient} from './session.js'

export type SendProgress = (encoded: string) => Promise<unknown>

/** The ProgressReporter of one execution: records into the tracker, publishes on the throttle's schedule. */
export class ProgressPublisher implements ProgressReporter {
  private timer: NodeJS.Timeout | undefined
  private timerAt = 0
  private inFlight: Promise<void> | undefined
  private again = false
  private closed = false
  private sendErrors = 0

  constructor(
    private readonly tracker: ProgressTracker,
    private readonly send: SendProgress,
    private readonly onLocal?: (p: ProgressPayload) => void,
    private readonly onSendError?: (err: unknown) => void,
  ) {}

  plan(phases: Parameters<ProgressTracker['plan']>[0]): void {
    this.tracker.plan(phases)
    this.schedule()
  }
  phase(name: string, totals?: Parameters<ProgressTracker['startPhase']>[1]): void {
    this.tracker.startPhase(name, totals)
    this.schedule()
  }
  totals(t: Parameters<ProgressTracker['setTotals']>[0]): void {
    this.tracker.setTotals(t)
    this.schedule()
  }
  endPhase(state?: 'done' | 'failed' | 'skipped'): void {
    this.tracker.endPhase(state)
    this.schedule()
  }
  skipPhase(name: string): void {
    this.tracker.skipPhase(name)
    this.schedule()
  }
  item(key: string, opts?: Parameters<ProgressTracker['startItem']>[1]): void {
    this.tracker.startItem(key, opts)
    this.schedule()
  }
  add(amounts: {bytes?: number; rows?: number}, itemKey?: string): void {
    this.tracker.advance(amounts, itemKey)
    this.schedule()
  }
  itemDone(key: string, state?: 'done' | 'failed' | 'skipped', error?: string): void {
    this.tracker.finishItem(key, state, error ?? null)
    this.schedule()
  }
  message(text: string | null): void {
    this.tracker.message(text)
    this.schedule()
  }

  async flush(): Promise<void> {
    if (this.closed) return
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    await this.inFlight
    await this.publishNow()
  }

  private schedule(): void {
    if (this.closed) return
    const due = this.tracker.dueIn()
    if (due === null) return
    const at = Date.now() + due
    // A timer that fires soon enough stays; a later one (the idle keepalive) is brought forward.
    if (this.timer && this.timerAt <= at) return
    if (this.timer) clearTimeout(this.timer)
    this.timerAt = at
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.publishNow()
    }, due)
  }

  private publishNow(): Promise<void> {
    if (this.closed) return Promise.resolve()
    if (this.inFlight) {
      this.again = true
      return this.inFlight
    }
    const payload = this.tracker.snapshot('running')
    this.onLocal?.(payload)
    this.inFlight = (async () => {
      try {
        await this.send(encodeProgress(payload))
      } catch (err) {
        // Progress is best effort: the job goes on; the lease renewal notices a lost connection.
        if (this.sendErrors++ === 0) this.onSendError?.(err)
      } finally {
        this.inFlight = undefined
      }
      if (this.again) {
        this.again = false
        void this.publishNow()
      } else this.schedule()
    })()
    return this.inFlight
  }

  /**
   * Stops publishing (waits for the one in flight) and returns the final payload, encoded. A job
   * that completed before any payload went out (shorter than the throttle's first delay) gets a slim
   * one: totals and outcome without the phase and item lists, which nobody has seen. A failed or
   * stopped job keeps them (which phase failed matters).
   */
  async close(status: JobStatus, error: string | null = null): Promise<{payload: ProgressPayload; encoded: string}> {
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    if (this.inFlight) await this.inFlight
    // The phase that was running when the job failed or was stopped ends as failed.
    if (status === 'failed' || status === 'cancelled') this.tracker.endPhase('failed')
    const payload = this.tracker.snapshot(status, {error, slim: status === 'complete' && this.tracker.published === 0})
    this.onLocal?.(payload)
    return {payload, encoded: encodeProgress(payload)}
  }
}

/** True when b is newer than a (a new attempt restarts seq). */
export function isNewer(a: Pick<ProgressPayload, 'attempt' | 'seq'> | undefined, b: Pick<ProgressPayload, 'attempt' | 'seq'>): boolean {
  if (!a) return true
  return b.attempt > a.attempt || (b.attempt === a.attempt && b.seq > a.seq)
}

export interface WatchOptions {
  onProgress?: (p: ProgressPayload) => void
  /** Called with the job row whenever it is read (start, polls, end). */
  onRow?: (row: JobRow) => void
  signal?: AbortSignal
  /** Give up waiting after this many ms (TimeoutError); the job is left alone. */
  timeoutMs?: number
  /** Row poll interval (fallback), default 1000 ms. */
  pollMs?: number
  /** Payloads that failed the schema check (counted, otherwise ignored). */
  onInvalid?: (error: string) => void
}

export class JobNotFoundError extends Error {}

/**
 * Follows a job until it is complete, failed or cancelled, and returns its final row. Rejects with
 * TimeoutError after timeoutMs, with the signal's reason when aborted, and JobNotFoundError when
 * the job does not exist.
 */
export async function watchJob(db: ConnParams, id: string, o: WatchOptions = {}): Promise<JobRow> {
  const client = await openQueueClient(db, 'steep-repl watch')
  let last: ProgressPayload | undefined
  const emit = (p: ProgressPayload) => {
    if (p.job !== id || !isNewer(last, p)) return
    last = p
    o.onProgress?.(p)
  }
  let wake: (() => void) | undefined
  // A wake-up that arrives while the row is being read is kept for the next wait (not lost).
  let woken = false
  const nudge = () => {
    if (wake) wake()
    else woken = true
  }
  const onNotification = (n: pg.Notification) => {
    if (n.channel !== PROGRESS_CHANNEL || !n.payload) return
    // The job ended (its final document is on the row): read the row now.
    if (n.payload.startsWith(ENDED_PREFIX)) {
      if (endedMessageNames(n.payload, id)) nudge()
      return
    }
    // Cheap filter before parsing: every job of the database shares the channel.
    if (!n.payload.includes(`"job":"${id}"`)) return
    const d = decodeProgress(n.payload)
    if (!d.ok) {
      o.onInvalid?.(d.error)
      return
    }
    emit(d.payload)
    if (isTerminal(d.payload.status)) nudge()
  }
  client.on('notification', onNotification)
  const deadline = o.timeoutMs !== undefined ? Date.now() + o.timeoutMs : Infinity
  try {
    await client.query(`LISTEN ${PROGRESS_CHANNEL}`)
    for (;;) {
      if (o.signal?.aborted) throw o.signal.reason ?? new Error('aborted')
      woken = false
      const row = await getJob(client, id)
      if (!row) throw new JobNotFoundError(`job ${id} does not exist`)
      o.onRow?.(row)
      if (row.progress) {
        const d = decodeProgress(row.progress)
        if (d.ok) emit(d.payload)
      }
      if (isTerminal(row.status)) return row
      const left = deadline - Date.now()
      if (left <= 0) throw new TimeoutError(`timed out waiting for job ${id} (still ${row.status})`)
      await new Promise<void>((resolve) => {
        if (woken) {
          woken = false
          resolve()
          return
        }
        const t = setTimeout(done, Math.min(o.pollMs ?? 1000, left))
        function done() {
          clearTimeout(t)
          o.signal?.removeEventListener('abort', done)
          wake = undefined
          resolve()
        }
        wake = done
        o.signal?.addEventListener('abort', done, {once: true})
      })
    }
  } finally {
    client.off('notification', onNotification)
    await client.end().catch(() => {})
  }
}

/**
 * Low-level: every valid payload on the channel of one database, until stop() (used by benches and
 * tools); `onEnded` gets the ids of `ended:` messages (jobs whose final document is on their row).
 */
export async function subscribeProgress(
  db: ConnParams,
  onPayload: (p: ProgressPayload) => void,
  onEnded?: (ids: string[]) => void,
): Promise<{stop(): Promise<void>; client: pg.Client}> {
  const client = await openQueueClient(db, 'steep-repl watch')
  client.on('notification', (n) => {
    if (n.channel !== PROGRESS_CHANNEL || !n.payload) return
    if (n.payload.startsWith(ENDED_PREFIX)) {
      const ids = parseEndedMessage(n.payload)
      if (ids) onEnded?.(ids)
      return
    }
    const d = decodeProgress(n.payload)
    if (d.ok) onPayload(d.payload)
  })
  await client.query(`LISTEN ${PROGRESS_CHANNEL}`)
  return {client, stop: () => client.end().catch(() => {})}
}
