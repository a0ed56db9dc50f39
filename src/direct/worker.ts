// `steep-repl worker`: LISTENs on steep_repl_work for wake-ups and cancel requests, polls as a
// fallback (and reclaims jobs whose lease expired), claims up to --concurrency jobs at a time,
// heartbeats in steep_repl.workers, and stops cleanly: running jobs get a grace period to finish,
// then are asked to stop and released (back to pending, the attempt not counted), never left locked.

import {randomBytes} from 'node:crypto'
import {hostname} from 'node:os'
import type pg from 'pg'
import type {ConnParams} from '../lib/connection/resolve.js'
import {redact} from '../lib/redact.js'
import {type ExecOutcome, JobExecution} from './executor.js'
import {loadOperation} from './operations/catalog.js'
import {parseWorkMessage, WORK_CHANNEL} from './progress-schema.js'
import {claim, type ClaimAlong, type ClaimedJob, DEFAULT_LEASE_SECONDS, FinishBatcher, type Lease, reclaimExpired, registerWorker, release, unregisterWorker, type WorkerRegistration, workerHeartbeat} from './queue.js'
import type {AnyOperationKind} from './registry.js'
import {ClientSet, makeConnResolver, openQueueClient} from './session.js'

export interface WorkerEvent {
  ts: string
  event: 'started' | 'claimed' | 'complete' | 'failed' | 'cancelled' | 'retry' | 'released' | 'lost' | 'reclaimed' | 'cancel_requested' | 'stopping' | 'stopped' | 'error'
  worker: string
  job?: string
  operation?: string
  attempt?: number
  durationMs?: number
  error?: string
  status?: string
  message?: string
}

export interface WorkerOptions {
  db: ConnParams
  /** The operation kinds this worker runs (loaded from the catalog). */
  operations: string[]
  concurrency?: number
  pollMs?: number
  heartbeatSeconds?: number
  /** How long running jobs may go on after a stop request before they are asked to stop. */
  graceMs?: number
  /** After being asked to stop, how long a handler gets before its job is released regardless. */
  stopWaitMs?: number
  configPath?: string
  version: string
  onEvent(e: WorkerEvent): void
  /** Override of the lease length of every kind (tests). */
  leaseSeconds?: number
}

export class Worker {
  readonly id: string
  private control!: pg.Client
  private pool!: ClientSet
  private finisher!: FinishBatcher
  private kinds = new Map<string, AnyOperationKind>()
  /** Jobs held by this worker: handlers running, and those whose outcome is being recorded. */
  private readonly running = new Map<string, {exec: JobExecution; done: Promise<ExecOutcome | undefined>}>()
  /** Handlers running (what --concurrency bounds). */
  private active = 0
  private kickScheduled = false
  private pollTimer: NodeJS.Timeout | undefined
  private heartbeatTimer: NodeJS.Timeout | undefined
  private claiming: Promise<void> | undefined
  private claimAgain = false
  private stopping = false
  private stopped: Promise<void> | undefined
  private jobsDone = 0
  private registration!: WorkerRegistration
  private readonly concurrency: number
  private resolveConnection: (ref: string) => Promise<ConnParams>

  private markFinished!: () => void
  /** Resolves when the worker has stopped (after stop(), or by itself when its connection is lost). */
  readonly finished = new Promise<void>((resolve) => (this.markFinished = resolve))

  constructor(private readonly o: WorkerOptions) {
    this.id = `worker:${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`
    this.concurrency = Math.max(1, o.concurrency ?? 1)
    this.resolveConnection = makeConnResolver({db: o.db, configPath: o.configPath})
  }

  private emit(e: Omit<WorkerEvent, 'ts' | 'worker'>): void {
    this.o.onEvent({ts: new Date().toISOString(), worker: this.id, ...e})
  }

  get activeJobs(): string[] {
    return [...this.running.keys()]
  }

  async start(): Promise<void> {
    for (const name of this.o.operations) {
      const kind = await loadOperation(name)
      if (!kind) throw new Error(`unknown operation ${name}`)
      this.kinds.set(name, kind)
    }
    this.control = await openQueueClient(this.o.db, 'steep-repl worker')
    // Executors write leases, progress and outcomes through a few connections of their own.
    this.pool = new ClientSet(this.o.db, Math.min(this.concurrency, 4), 'steep-repl worker')
    this.finisher = new FinishBatcher(() => this.pool.next(), 128, () => this.claimAlong())
    this.registration = {
      id: this.id,
      host: hostname(),
      pid: process.pid,
      version: this.o.version,
      operations: [...this.kinds.keys()],
      concurrency: this.concurrency,
      heartbeatSeconds: this.o.heartbeatSeconds ?? 5,
    }
    await registerWorker(this.control, this.registration)
    this.control.on('notification', (n) => {
      if (n.channel !== WORK_CHANNEL) return
      const m = parseWorkMessage(n.payload)
      if (m.kind === 'job' && this.kinds.has(m.operation)) this.kick()
      else if (m.kind === 'cancel') {
        const r = this.running.get(m.id)
        if (r) {
          this.emit({event: 'cancel_requested', job: m.id, operation: r.exec.row.operation})
          r.exec.stop('cancel')
        }
      }
    })
    this.control.on('error', (err) => {
      this.emit({event: 'error', error: redact(err.message), message: 'lost the control connection; stopping'})
      void this.stop()
    })
    await this.control.query(`LISTEN ${WORK_CHANNEL}`)
    this.emit({event: 'started', message: `operations ${this.registration.operations.join(',')}, concurrency ${this.concurrency}`})
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.registration.heartbeatSeconds * 1000)
    this.pollTimer = setInterval(() => void this.poll(), this.o.pollMs ?? 2000)
    await this.poll()
  }

  private async heartbeat(): Promise<void> {
    if (this.stopping) return
    try {
      await workerHeartbeat(this.control, this.registration, this.jobsDone)
    } catch (err) {
      this.emit({event: 'error', error: redact((err as Error).message), message: 'heartbeat failed'})
    }
  }

  private async poll(): Promise<void> {
    if (this.stopping) return
    try {
      for (const r of await reclaimExpired(this.control)) {
        this.emit({event: 'reclaimed', job: r.id, operation: r.operation, status: r.status, error: r.error_message})
      }
    } catch (err) {
      this.emit({event: 'error', error: redact((err as Error).message), message: 'reclaim failed'})
    }
    this.kick()
  }

  /**
   * Free slots: --concurrency handlers at a time. A job whose handler has returned no longer takes a
   * slot while its outcome is written (the next claim overlaps that write), but the jobs held at
   * once — running plus being recorded — stay under twice the concurrency.
   */
  private room(): number {
    return Math.min(this.concurrency - this.active, 2 * this.concurrency - this.running.size)
  }

  /** One kick on the next turn of the event loop for many slots freed in this one. */
  private kickSoon(): void {
    if (this.kickScheduled) return
    this.kickScheduled = true
    setImmediate(() => {
      this.kickScheduled = false
      this.kick()
    })
  }

  private claimInput(limit: number) {
    return {owner: this.id, operations: [...this.kinds.keys()], limit, leaseSeconds: this.o.leaseSeconds}
  }

  /**
   * The claim that rides along with the statement recording finished jobs (one round trip for both):
   * it counts as the claim in progress, so wake-ups meanwhile only ask for another round.
   */
  private claimAlong(): ClaimAlong | undefined {
    if (this.stopping) return undefined
    if (this.claiming) {
      this.claimAgain = true
      return undefined
    }
    const room = this.room()
    if (room <= 0) return undefined
    let settled!: () => void
    const p = new Promise<void>((resolve) => (settled = resolve))
    this.claiming = p
    return {
      input: this.claimInput(room),
      settle: (rows, err) => {
        if (err) this.emit({event: 'error', error: redact((err as Error).message), message: 'claim failed'})
        for (const row of rows) this.launch(row)
        if (rows.length === room) this.claimAgain = true
        this.claiming = undefined
        settled()
        if (this.claimAgain) {
          this.claimAgain = false
          this.kickSoon()
        }
      },
    }
  }

  /** Claims while there is room; coalesces concurrent wake-ups. */
  kick(): void {
    if (this.stopping) return
    if (this.claiming) {
      this.claimAgain = true
      return
    }
    // Finished jobs are about to be recorded: their statement claims the next ones (claimAlong).
    if (this.finisher.pending > 0) return
    if (this.room() <= 0) return
    const p = (async () => {
      try {
        do {
          this.claimAgain = false
          const room = this.room()
          if (room <= 0 || this.stopping) break
          const rows = await claim(this.control, this.claimInput(room))
          for (const row of rows) this.launch(row)
          if (rows.length === room) this.claimAgain = true
        } while (this.claimAgain && !this.stopping)
      } catch (err) {
        this.emit({event: 'error', error: redact((err as Error).message), message: 'claim failed'})
      }
    })()
    // Cleared only once it has settled (it may settle before this assignment when nothing is to do).
    this.claiming = p
    void p.finally(() => {
      if (this.claiming !== p) return
      this.claiming = undefined
      // A wake-up that came after the loop's last check is not lost.
      if (this.claimAgain) this.kick()
    })
  }

  private launch(row: ClaimedJob): void {
    const kind = this.kinds.get(row.operation)!
    const started = Date.now()
    const exec = new JobExecution(kind, row, {
      queue: this.pool.next(),
      db: this.o.db,
      owner: this.id,
      executor: 'worker',
      resolveConnection: this.resolveConnection,
      log: (message) => this.emit({event: 'error', job: row.id, operation: row.operation, message}),
      leaseSeconds: this.o.leaseSeconds,
      claimedLeaseSeconds: this.o.leaseSeconds ?? DEFAULT_LEASE_SECONDS,
      finish: (lease, f) => this.finisher.finish(lease, f),
      onHandlerSettled: () => {
        this.active--
        // Jobs that ended together free their slots before the next claim, so it takes a full
        // batch instead of one job at a time.
        this.kickSoon()
      },
    })
    this.active++
    this.emit({event: 'claimed', job: row.id, operation: row.operation, attempt: row.attempts})
    const done = exec
      .run()
      .catch((err) => {
        this.emit({event: 'error', job: row.id, operation: row.operation, error: redact((err as Error).message), message: 'could not record the outcome'})
        return undefined
      })
      .then((out) => {
        this.running.delete(row.id)
        this.jobsDone++
        if (out) {
          const base = {job: row.id, operation: row.operation, attempt: row.attempts, durationMs: Date.now() - started}
          if (out.kind === 'complete') this.emit({event: 'complete', ...base})
          else if (out.kind === 'failed' || out.kind === 'cancelled') this.emit({event: out.kind, ...base, error: out.error})
          else if (out.kind === 'retry') this.emit({event: out.status === 'pending' ? 'retry' : 'failed', ...base, error: out.error, message: out.status === 'pending' ? `retry in ${out.delaySeconds}s` : undefined})
          else this.emit({event: out.kind, ...base})
        }
        // Holding fewer jobs may make room (see room()).
        this.kickSoon()
        return out
      })
    this.running.set(row.id, {exec, done})
  }

  /**
   * Stops claiming; running jobs get graceMs to finish, are then asked to stop (and released), and
   * after stopWaitMs more any job still held is released from here. Idempotent; `now` skips the grace.
   */
  stop(opts: {now?: boolean} = {}): Promise<void> {
    if (opts.now) for (const r of this.running.values()) r.exec.stop('shutdown')
    if (this.stopped) return this.stopped
    this.stopping = true
    this.stopped = (async () => {
      this.emit({event: 'stopping', message: `${this.running.size} job(s) running`})
      clearInterval(this.pollTimer)
      clearInterval(this.heartbeatTimer)
      await this.claiming
      const all = () => Promise.all([...this.running.values()].map((r) => r.done))
      const within = (ms: number) => Promise.race([all().then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())])
      if (this.running.size && !(await within(this.o.graceMs ?? 10_000))) {
        for (const r of this.running.values()) r.exec.stop('shutdown')
        if (!(await within(this.o.stopWaitMs ?? 5_000))) {
          for (const r of this.running.values()) {
            // A job whose handler has returned is having its outcome written: not released under it.
            if (r.exec.handlerSettled) continue
            const lease: Lease = r.exec.lease
            await release(this.pool.next(), lease, `released by ${this.id}: its handler did not stop in time`).catch(() => false)
            this.emit({event: 'released', job: lease.id, operation: r.exec.row.operation, message: 'handler did not stop in time'})
          }
        }
      }
      await unregisterWorker(this.control, this.id).catch(() => {})
      await this.control.end().catch(() => {})
      await this.pool.end()
      this.emit({event: 'stopped', message: `${this.jobsDone} job(s) handled`})
      this.markFinished()
    })()
    return this.stopped
  }
}
