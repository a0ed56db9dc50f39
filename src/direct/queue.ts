// The work queue in SQL: enqueue, claim (one statement, FOR UPDATE SKIP LOCKED), leases renewed by
// the executor, finish/retry/release, reclaim of expired leases, cancel, and the worker registry.
// Every value is a bind parameter; every statement that changes a running job checks that the
// caller still owns its lease (owner and attempt), so an executor that lost its lease changes nothing.

import {StateError} from '../lib/errors.js'
import type pg from 'pg'
import {ENDED_MAX_IDS, ENDED_PREFIX, type JobStatus, PROGRESS_CHANNEL, WORK_CHANNEL} from './progress-schema.js'

type Queryable = Pick<pg.Client, 'query'>

export interface JobRow {
  id: string
  operation: string
  params: Record<string, unknown>
  status: JobStatus
  priority: number
  attempts: number
  max_attempts: number
  lease_owner: string | null
  lease_expires_at: Date | null
  heartbeat_at: Date | null
  executor: 'direct' | 'worker' | null
  cancel_requested_at: Date | null
  progress: unknown
  result: unknown
  error_message: string | null
  created_at: Date
  started_at: Date | null
  completed_at: Date | null
  run_after: Date
  created_by: string
  updated_at: Date
}

const JOB_COLUMNS = `id::text, operation, params, status, priority, attempts, max_attempts, lease_owner, lease_expires_at,
  heartbeat_at, executor, cancel_requested_at, progress, result, error_message, created_at, started_at, completed_at,
  run_after, created_by, updated_at`
const Q_COLUMNS = JOB_COLUMNS.split(',').map((c) => `q.${c.trim()}`).join(', ')

export const DEFAULT_LEASE_SECONDS = 30
export const DEFAULT_MAX_ATTEMPTS = 3

export interface EnqueueInput {
  operation: string
  params: Record<string, unknown>
  priority?: number
  maxAttempts?: number
  runAfter?: Date
}

/** Queues a pending job and wakes the workers (through steep_repl.enqueue, as any SQL client would). */
export async function enqueue(c: Queryable, job: EnqueueInput): Promise<string> {
  const {rows} = await c.query<{id: string}>(`SELECT steep_repl.enqueue($1, $2::jsonb, $3, $4, $5)::text AS id`, [
    job.operation,
    JSON.stringify(job.params),
    job.priority ?? 0,
    job.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    job.runAfter ?? null,
  ])
  return rows[0]!.id
}

/** Inserts a job already claimed by this process (a direct run): no worker can take it. */
export async function insertRunning(c: Queryable, job: EnqueueInput & {owner: string; leaseSeconds: number}): Promise<JobRow> {
  const {rows} = await c.query<JobRow>(
    `INSERT INTO steep_repl.work_queue (operation, params, priority, max_attempts, status, attempts, lease_owner,
                                        lease_expires_at, heartbeat_at, started_at, executor)
     VALUES ($1, $2::jsonb, $3, $4, 'running', 1, $5, now() + make_interval(secs => $6), now(), now(), 'direct')
     RETURNING ${JOB_COLUMNS}`,
    [job.operation, JSON.stringify(job.params), job.priority ?? 0, job.maxAttempts ?? DEFAULT_MAX_ATTEMPTS, job.owner, job.leaseSeconds],
  )
  return rows[0]!
}

export interface ClaimInput {
  owner: string
  /** Only these operations (the kinds the executor knows). */
  operations: string[]
  limit: number
  leaseSeconds?: number
}

/** What an executor needs of a job it claimed (the full row: getJob). */
export type ClaimedJob = Pick<JobRow, 'id' | 'operation' | 'params' | 'priority' | 'attempts' | 'max_attempts'>

// The claim, as CTEs `next` and `claimed` with parameters numbered from `p`: owner, operations,
// limit, lease seconds. Highest priority first, then the oldest; SKIP LOCKED, so concurrent claimers
// never get the same job (the partial index work_queue_claim_idx is in this order).
const claimCtes = (p: number): string => `next AS (
       SELECT id FROM steep_repl.work_queue
        WHERE status = 'pending' AND run_after <= now() AND operation = ANY ($${p + 1}::text[])
        ORDER BY priority DESC, run_after, id
        LIMIT $${p + 2}
          FOR UPDATE SKIP LOCKED),
     claimed AS (
       UPDATE steep_repl.work_queue q
          SET status = 'running', attempts = q.attempts + 1, lease_owner = $${p},
              lease_expires_at = now() + make_interval(secs => $${p + 3}), heartbeat_at = now(), started_at = now(),
              completed_at = NULL, executor = 'worker', progress = NULL, updated_at = now()
         FROM next WHERE q.id = next.id
       RETURNING q.id, q.operation, q.params, q.priority, q.attempts, q.max_attempts)`

const claimValues = (input: ClaimInput): unknown[] => [input.owner, input.operations, input.limit, input.leaseSeconds ?? DEFAULT_LEASE_SECONDS]

const byId = (a: ClaimedJob, b: ClaimedJob): number => Number(a.id) - Number(b.id)

/**
 * Claims up to `limit` pending jobs in one statement; concurrent claimers never get the same job.
 * A named (prepared) statement: a worker runs it many times a second on one connection, and the
 * plan is the same every time.
 */
export async function claim(c: Queryable, input: ClaimInput): Promise<ClaimedJob[]> {
  if (input.limit <= 0 || input.operations.length === 0) return []
  const {rows} = await c.query<ClaimedJob>({
    name: 'steep_repl_claim_v2',
    text: `WITH ${claimCtes(1)}
     SELECT id::text, operation, params, priority, attempts, max_attempts FROM claimed`,
    values: claimValues(input),
  })
  return rows.sort(byId)
}

/** Claims one given pending job (a direct run taking back its own job after a retry delay). */
export async function claimById(c: Queryable, id: string, owner: string, leaseSeconds: number, executor: 'direct' | 'worker'): Promise<JobRow | undefined> {
  const {rows} = await c.query<JobRow>(
    `UPDATE steep_repl.work_queue q
        SET status = 'running', attempts = q.attempts + 1, lease_owner = $2,
            lease_expires_at = now() + make_interval(secs => $3), heartbeat_at = now(), started_at = now(),
            completed_at = NULL, executor = $4, progress = NULL, updated_at = now()
      WHERE q.id = $1 AND q.status = 'pending'
     RETURNING ${Q_COLUMNS}`,
    [id, owner, leaseSeconds, executor],
  )
  return rows[0]
}

export interface Lease {
  id: string
  owner: string
  attempt: number
}

export type RenewResult = {held: true; cancelRequested: boolean} | {held: false}

/** Extends the lease; tells whether it is still held and whether a cancel was requested. */
export async function renewLease(c: Queryable, lease: Lease, leaseSeconds: number): Promise<RenewResult> {
  const {rows} = await c.query<{cancel: boolean}>(
    `UPDATE steep_repl.work_queue
        SET lease_expires_at = now() + make_interval(secs => $4), heartbeat_at = now()
      WHERE id = $1 AND lease_owner = $2 AND attempts = $3 AND status = 'running'
     RETURNING cancel_requested_at IS NOT NULL AS cancel`,
    [lease.id, lease.owner, lease.attempt, leaseSeconds],
  )
  return rows[0] ? {held: true, cancelRequested: rows[0].cancel} : {held: false}
}

/** Persists the latest progress and publishes it, only while the lease is held. */
export async function publishProgress(c: Queryable, lease: Lease, payload: string): Promise<boolean> {
  const {rows} = await c.query(
    `WITH u AS (UPDATE steep_repl.work_queue SET progress = $4::text::jsonb, updated_at = now()
                 WHERE id = $1 AND lease_owner = $2 AND attempts = $3 AND status = 'running' RETURNING 1)
     SELECT pg_notify('${PROGRESS_CHANNEL}', $4::text) FROM u`,
    [lease.id, lease.owner, lease.attempt, payload],
  )
  return rows.length > 0
}

export interface FinishInput {
  status: 'complete' | 'failed' | 'cancelled'
  result?: unknown
  error?: string | null
  /** The final progress payload (encoded JSON), persisted in the same statement. */
  progress: string
}

/** Ends a job; false when the lease was lost meanwhile (nothing changed). */
export async function finish(c: Queryable, lease: Lease, f: FinishInput): Promise<boolean> {
  const [ok] = await finishMany(c, [{lease, ...f}])
  return ok!
}

/**
 * The outcomes as one JSON array (the statement's $1, read with jsonb_to_recordset): built by
 * concatenation, each progress document embedded as it is (it is JSON already), so nothing is
 * escaped twice — cheaper than seven text arrays for a worker ending hundreds of jobs a second.
 */
function finishDocument(items: Array<FinishInput & {lease: Lease}>): string {
  const parts = items.map((x) => {
    if (!/^\d+$/.test(x.lease.id)) throw new Error(`invalid job id ${JSON.stringify(x.lease.id)}`)
    const result = x.result === undefined || x.result === null ? 'null' : JSON.stringify(x.result)
    return `{"id":"${x.lease.id}","owner":${JSON.stringify(x.lease.owner)},"attempt":${Number(x.lease.attempt)},"status":${JSON.stringify(x.status)},"result":${result},"error":${JSON.stringify(x.error ?? null)},"progress":${x.progress}}`
  })
  return `[${parts.join(',')}]`
}

// Ending jobs, as CTEs `outcome`, `ended` and `announced` reading $1 (finishDocument): each job only
// while its lease is held; one `ended:<id>,...` NOTIFY on steep_repl_progress per ENDED_MAX_IDS jobs.
const FINISH_CTES = `outcome AS (
       SELECT * FROM jsonb_to_recordset($1::jsonb)
           AS t(id bigint, owner text, attempt int, status text, result jsonb, error text, progress jsonb)),
     ended AS (
       UPDATE steep_repl.work_queue q
          SET status = o.status, completed_at = now(), result = o.result, error_message = o.error,
              progress = o.progress, lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
         FROM outcome o
        WHERE q.id = o.id AND q.lease_owner = o.owner AND q.attempts = o.attempt AND q.status = 'running'
       RETURNING q.id),
     announced AS (
       SELECT array_agg(id::text) AS ids, pg_notify('${PROGRESS_CHANNEL}', '${ENDED_PREFIX}' || string_agg(id::text, ',')) AS notified
         FROM (SELECT id, (row_number() OVER () - 1) / ${ENDED_MAX_IDS} AS chunk FROM ended) e
        GROUP BY chunk)`

/**
 * Ends several jobs in one statement (one commit), each only while its lease is held; returns, in
 * order, whether each was recorded. Each job's final progress document goes to its row; the end is
 * announced by one `ended:<id>,<id>,...` NOTIFY on steep_repl_progress per ENDED_MAX_IDS jobs (not
 * one payload per job: cheaper for the server and for every listener of the database), and a
 * watcher of one of them reads the row.
 */
export async function finishMany(c: Queryable, items: Array<FinishInput & {lease: Lease}>): Promise<boolean[]> {
  if (items.length === 0) return []
  const {rows} = await c.query<{ids: string[]}>({
    name: 'steep_repl_finish_v3',
    text: `WITH ${FINISH_CTES}
     SELECT ids FROM announced`,
    values: [finishDocument(items)],
  })
  const done = new Set(rows.flatMap((r) => r.ids))
  return items.map((x) => done.has(x.lease.id))
}

/**
 * finishMany and claim in one statement (one round trip, one commit): a worker records the jobs that
 * just ended and takes the next ones at once. Both parts keep their guarantees (the claim is the
 * same SKIP LOCKED claim; it only takes pending jobs, the finish only running ones).
 */
export async function finishAndClaim(c: Queryable, items: Array<FinishInput & {lease: Lease}>, input: ClaimInput): Promise<{recorded: boolean[]; claimed: ClaimedJob[]}> {
  if (input.limit <= 0 || input.operations.length === 0) return {recorded: await finishMany(c, items), claimed: []}
  const {rows} = await c.query<{ended: string[] | null; claimed: ClaimedJob[] | null}>({
    name: 'steep_repl_finish_claim_v1',
    text: `WITH ${FINISH_CTES},
     ${claimCtes(2)}
     SELECT (SELECT array_agg(id) FROM announced, unnest(announced.ids) AS id) AS ended,
            (SELECT json_agg(json_build_object('id', id::text, 'operation', operation, 'params', params, 'priority', priority,
                                               'attempts', attempts, 'max_attempts', max_attempts)) FROM claimed) AS claimed`,
    values: [finishDocument(items), ...claimValues(input)],
  })
  const done = new Set(rows[0]?.ended ?? [])
  return {recorded: items.map((x) => done.has(x.lease.id)), claimed: (rows[0]?.claimed ?? []).sort(byId)}
}

/** Claims to make in the statement that records a batch of outcomes (see FinishBatcher). */
export interface ClaimAlong {
  input: ClaimInput
  /** The jobs claimed, or the error (then nothing was claimed, nor recorded). */
  settle(claimed: ClaimedJob[], err?: unknown): void
}

/**
 * Collects finishes for a moment and writes them with finishMany: under load, one statement and one
 * commit for many jobs (what makes short jobs cheap); alone, a job waits only for the next tick.
 * With `claimAlong` (a worker), the same statement also claims the next jobs when there is room.
 */
export class FinishBatcher {
  private batch: Array<FinishInput & {lease: Lease; resolve(ok: boolean): void; reject(e: unknown): void}> = []
  private scheduled = false

  constructor(
    private readonly queue: () => Queryable,
    private readonly maxBatch = 128,
    private readonly claimAlong?: () => ClaimAlong | undefined,
  ) {}

  /** Outcomes waiting for the next write. */
  get pending(): number {
    return this.batch.length
  }

  finish(lease: Lease, f: FinishInput): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.batch.push({lease, ...f, resolve, reject})
      if (this.batch.length >= this.maxBatch) this.flush()
      else if (!this.scheduled) {
        this.scheduled = true
        setImmediate(() => this.flush())
      }
    })
  }

  private flush(): void {
    this.scheduled = false
    const items = this.batch.splice(0, this.batch.length)
    if (items.length === 0) return
    const along = this.claimAlong?.()
    const write = along ? finishAndClaim(this.queue(), items, along.input) : finishMany(this.queue(), items).then((recorded) => ({recorded, claimed: []}))
    write.then(
      ({recorded, claimed}) => {
        along?.settle(claimed)
        items.forEach((it, i) => it.resolve(recorded[i]!))
      },
      (err) => {
        along?.settle([], err)
        items.forEach((it) => it.reject(err))
      },
    )
  }
}

/**
 * After a retryable failure: back to pending after `delaySeconds` while attempts remain (and wakes
 * the workers), else failed. Returns the new status, or null when the lease was lost.
 */
export async function retryOrFail(c: Queryable, lease: Lease, error: string, delaySeconds: number, progress: string): Promise<'pending' | 'failed' | null> {
  const {rows} = await c.query<{status: 'pending' | 'failed'; operation: string}>(
    `WITH u AS (UPDATE steep_repl.work_queue
                   SET status = CASE WHEN attempts < max_attempts THEN 'pending' ELSE 'failed' END,
                       completed_at = CASE WHEN attempts < max_attempts THEN NULL ELSE now() END,
                       run_after = now() + make_interval(secs => $5),
                       error_message = CASE WHEN attempts < max_attempts THEN format('attempt %s of %s failed, retrying: %s', attempts, max_attempts, $4::text)
                                            ELSE format('failed after %s attempts: %s', attempts, $4::text) END,
                       progress = $6::text::jsonb, lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
                 WHERE id = $1 AND lease_owner = $2 AND attempts = $3 AND status = 'running'
                RETURNING id, status, operation)
     SELECT status, operation, pg_notify('${PROGRESS_CHANNEL}', $6::text),
            CASE WHEN status = 'pending' THEN pg_notify('${WORK_CHANNEL}', 'job:' || id || ':' || operation) END
       FROM u`,
    [lease.id, lease.owner, lease.attempt, error, delaySeconds, progress],
  )
  return rows[0]?.status ?? null
}

/** Gives a job back untouched (executor shutting down): pending again, this attempt not counted. */
export async function release(c: Queryable, lease: Lease, reason: string): Promise<boolean> {
  const {rows} = await c.query<{operation: string}>(
    `WITH u AS (UPDATE steep_repl.work_queue
                   SET status = CASE WHEN cancel_requested_at IS NOT NULL THEN 'cancelled' ELSE 'pending' END,
                       completed_at = CASE WHEN cancel_requested_at IS NOT NULL THEN now() END,
                       attempts = CASE WHEN cancel_requested_at IS NOT NULL THEN attempts ELSE attempts - 1 END,
                       error_message = $4, lease_owner = NULL, lease_expires_at = NULL, run_after = now(), updated_at = now()
                 WHERE id = $1 AND lease_owner = $2 AND attempts = $3 AND status = 'running'
                RETURNING id, operation, status)
     SELECT CASE WHEN status = 'pending' THEN pg_notify('${WORK_CHANNEL}', 'job:' || id || ':' || operation) END FROM u`,
    [lease.id, lease.owner, lease.attempt, reason],
  )
  return rows.length > 0
}

export interface Reclaimed {
  id: string
  operation: string
  status: JobStatus
  error_message: string
}

/**
 * Jobs whose lease expired (executor killed, host gone): back to pending while attempts remain,
 * failed with the reason once they are used up, cancelled when a cancel had been requested.
 */
export async function reclaimExpired(c: Queryable): Promise<Reclaimed[]> {
  const {rows} = await c.query<Reclaimed>(
    `WITH u AS (
       UPDATE steep_repl.work_queue
          SET status = CASE WHEN cancel_requested_at IS NOT NULL THEN 'cancelled'
                            WHEN attempts >= max_attempts THEN 'failed' ELSE 'pending' END,
              completed_at = CASE WHEN cancel_requested_at IS NOT NULL OR attempts >= max_attempts THEN now() END,
              error_message = CASE
                  WHEN cancel_requested_at IS NOT NULL THEN format('cancelled; its executor %s stopped before acknowledging', lease_owner)
                  WHEN attempts >= max_attempts THEN format('failed after %s attempts: the lease of the last one expired (executor %s stopped renewing it: killed, or lost its connection)', attempts, lease_owner)
                  ELSE format('attempt %s of %s lost: the lease expired (executor %s stopped renewing it); queued again', attempts, max_attempts, lease_owner) END,
              lease_owner = NULL, lease_expires_at = NULL, run_after = now(), updated_at = now()
        WHERE status = 'running' AND lease_expires_at < now()
       RETURNING id::text, operation, status, error_message)
     SELECT u.*, CASE WHEN status = 'pending' THEN pg_notify('${WORK_CHANNEL}', 'job:' || id || ':' || operation)
                      ELSE pg_notify('${PROGRESS_CHANNEL}', '${ENDED_PREFIX}' || id) END AS woke FROM u`,
  )
  return rows.map(({id, operation, status, error_message}) => ({id, operation, status, error_message}))
}

/** Cancels a job (steep_repl.cancel_job): returns the status after the call. */
export async function requestCancel(c: Queryable, id: string): Promise<JobStatus> {
  const {rows} = await c.query<{status: JobStatus}>(`SELECT steep_repl.cancel_job($1) AS status`, [id])
  return rows[0]!.status
}

export async function getJob(c: Queryable, id: string): Promise<JobRow | undefined> {
  const {rows} = await c.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM steep_repl.work_queue WHERE id = $1`, [id])
  return rows[0]
}

/** The job, or the error a user gets for an id that does not exist (exit 1, with where to look). */
export async function requireJob(c: Queryable, id: string): Promise<JobRow> {
  const row = await getJob(c, id)
  if (!row) throw new StateError(`job ${id} does not exist`, {hint: 'List jobs: steep-repl jobs list'})
  return row
}

export interface ListFilter {
  status?: string[]
  operation?: string[]
  limit?: number
}

export async function listJobs(c: Queryable, f: ListFilter = {}): Promise<JobRow[]> {
  const {rows} = await c.query<JobRow>(
    `SELECT ${JOB_COLUMNS} FROM steep_repl.work_queue
      WHERE ($1::text[] IS NULL OR status = ANY ($1)) AND ($2::text[] IS NULL OR operation = ANY ($2))
      ORDER BY id DESC LIMIT $3`,
    [f.status?.length ? f.status : null, f.operation?.length ? f.operation : null, f.limit ?? 50],
  )
  return rows
}

// ---- workers ----

export interface WorkerRow {
  id: string
  host: string
  pid: number
  version: string
  operations: string[] | null
  concurrency: number
  heartbeat_seconds: number
  started_at: Date
  last_seen: Date
  jobs_done: string
  live: boolean
}

export interface WorkerRegistration {
  id: string
  host: string
  pid: number
  version: string
  operations: string[]
  concurrency: number
  heartbeatSeconds: number
}

export async function registerWorker(c: Queryable, w: WorkerRegistration): Promise<void> {
  await c.query(
    `INSERT INTO steep_repl.workers (id, host, pid, version, operations, concurrency, heartbeat_seconds)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (id) DO UPDATE SET last_seen = now(), operations = EXCLUDED.operations, concurrency = EXCLUDED.concurrency`,
    [w.id, w.host, w.pid, w.version, w.operations, w.concurrency, w.heartbeatSeconds],
  )
}

/** Marks the worker seen (re-registering it if someone removed its row) and prunes long-dead rows. */
export async function workerHeartbeat(c: Queryable, w: WorkerRegistration, jobsDone: number): Promise<void> {
  const {rowCount} = await c.query(`UPDATE steep_repl.workers SET last_seen = now(), jobs_done = $2 WHERE id = $1`, [w.id, jobsDone])
  if (!rowCount) await registerWorker(c, w)
  await c.query(`DELETE FROM steep_repl.workers WHERE last_seen < now() - interval '1 day'`)
}

export async function unregisterWorker(c: Queryable, id: string): Promise<void> {
  await c.query(`DELETE FROM steep_repl.workers WHERE id = $1`, [id])
}

/** Workers, live ones first; with an operation, only the live ones that take it. */
export async function listWorkers(c: Queryable, operation?: string): Promise<WorkerRow[]> {
  const {rows} = await c.query<WorkerRow>(
    `SELECT w.id, w.host, w.pid, w.version, w.operations, w.concurrency, w.heartbeat_seconds, w.started_at, w.last_seen,
            w.jobs_done::text, steep_repl.worker_is_live(w) AS live
       FROM steep_repl.workers w
      WHERE $1::text IS NULL OR (steep_repl.worker_is_live(w) AND (w.operations IS NULL OR $1 = ANY (w.operations)))
      ORDER BY live DESC, w.started_at`,
    [operation ?? null],
  )
  return rows
}
