// The work queue and its SQL API against a real server, through the library (no CLI processes):
// claims under contention, leases and attempts, cancel, late watchers, direct and worker runs.

import {Writable} from 'node:stream'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {z} from 'zod'
import {withClient} from '../../src/lib/connection/connect.js'
import {type ConnParams, resolveConnection} from '../../src/lib/connection/resolve.js'
import {install, latestVersion} from '../../src/lib/install/migrations.js'
import {runningJobs} from '../../src/lib/install/uninstall.js'
import {noop} from '../../src/direct/operations/noop.js'
import {ProgressTracker} from '../../src/direct/progress-model.js'
import {watchJob} from '../../src/direct/progress.js'
import {decodeProgress, encodeProgress, parseEndedMessage, PROGRESS_CHANNEL, type ProgressPayload} from '../../src/direct/progress-schema.js'
import {claim, type ClaimedJob, enqueue, finish, finishAndClaim, finishMany, getJob, type JobRow, reclaimExpired, renewLease, requestCancel} from '../../src/direct/queue.js'
import {defineOperation} from '../../src/direct/registry.js'
import {runJobCommand} from '../../src/direct/run.js'
import {openQueueClient} from '../../src/direct/session.js'
import {Worker, type WorkerEvent} from '../../src/direct/worker.js'
import {adminClient, dropDatabase, freshDatabase, sql} from '../helpers/pg.js'

const params = (url: string): ConnParams => resolveConnection({db: url, env: {}})

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

function collector(): {stream: NodeJS.WriteStream; text(): string} {
  let buf = ''
  const w = new Writable({
    write(chunk, _enc, cb) {
      buf += chunk
      cb()
    },
  })
  return {stream: w as unknown as NodeJS.WriteStream, text: () => buf}
}

const silentHost = (stderr = collector().stream) => ({jsonEnabled: () => true, stderr})

/** The final document of a job that ended at once (what an executor writes), encoded. */
const finalDoc = (id: string, op: string) => encodeProgress(new ProgressTracker(id, op, 1).snapshot('complete', {slim: true}))

const outcome = (r: ClaimedJob, owner: string) => ({lease: {id: r.id, owner, attempt: r.attempts}, status: 'complete' as const, result: {job: r.id}, progress: finalDoc(r.id, r.operation)})

// A kind for the tests below: records which executor ran each job and how many ran at once.
const probe = {runs: new Map<string, string[]>(), active: new Map<string, number>(), maxActive: 0}
defineOperation({
  name: 'probe_once',
  summary: 'Records its executions (tests).',
  params: z.object({}).strict(),
  async handler(ctx) {
    const owner = ctx.job.owner
    const now = (probe.active.get(owner) ?? 0) + 1
    probe.active.set(owner, now)
    probe.maxActive = Math.max(probe.maxActive, now)
    probe.runs.set(ctx.job.id, [...(probe.runs.get(ctx.job.id) ?? []), owner])
    if (Number(ctx.job.id) % 3 === 0) await new Promise((r) => setTimeout(r, 2))
    probe.active.set(owner, probe.active.get(owner)! - 1)
    return {ran: true}
  },
})

describe('jobs: queue, leases and SQL API', () => {
  let db: string
  let conn: ConnParams
  const workers: Worker[] = []

  async function startWorker(opts: Partial<ConstructorParameters<typeof Worker>[0]> = {}): Promise<{worker: Worker; events: WorkerEvent[]}> {
    const events: WorkerEvent[] = []
    const worker = new Worker({db: conn, operations: ['noop'], concurrency: 2, pollMs: 200, version: 'test', onEvent: (e) => events.push(e), ...opts})
    await worker.start()
    workers.push(worker)
    return {worker, events}
  }

  beforeAll(async () => {
    db = await freshDatabase('jobs')
    conn = params(db)
    await withClient(conn, (c) => install(c))
  })
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop({now: true})))
    await dropDatabase(db)
  })

  it('never gives one job to two claimers (many concurrent claims)', async () => {
    await sql(db, `INSERT INTO steep_repl.work_queue (operation, params) SELECT 'race', '{}' FROM generate_series(1, 300)`)
    const claimers = await Promise.all(Array.from({length: 6}, () => openQueueClient(conn)))
    try {
      const got = await Promise.all(
        claimers.map(async (c, i) => {
          const ids: string[] = []
          for (;;) {
            const rows = await claim(c, {owner: `claimer-${i}`, operations: ['race'], limit: 1 + (ids.length % 5)})
            if (rows.length === 0) break
            ids.push(...rows.map((r) => r.id))
          }
          return ids
        }),
      )
      const all = got.flat()
      expect(all.length).toBe(300)
      expect(new Set(all).size).toBe(300)
      expect(got.filter((ids) => ids.length > 0).length).toBeGreaterThan(1)
      const [s] = await sql(db, `SELECT count(*)::int AS n, count(DISTINCT lease_owner)::int AS owners, max(attempts) AS max FROM steep_repl.work_queue WHERE operation = 'race' AND status = 'running'`)
      expect(s).toMatchObject({n: 300, max: 1})
    } finally {
      await Promise.all(claimers.map((c) => c.end()))
      await sql(db, `DELETE FROM steep_repl.work_queue WHERE operation = 'race'`)
    }
  })

  it('returns a job whose lease expired to the queue, then fails it with the reason after max attempts', async () => {
    const c = await openQueueClient(conn)
    try {
      const id = await enqueue(c, {operation: 'lease_test', params: {}, maxAttempts: 2})
      const [first] = await claim(c, {owner: 'ghost-1', operations: ['lease_test'], limit: 1, leaseSeconds: 1})
      expect(first!.id).toBe(id)
      await new Promise((r) => setTimeout(r, 1100))
      expect(await reclaimExpired(c)).toEqual([expect.objectContaining({id, status: 'pending', error_message: expect.stringMatching(/attempt 1 of 2 lost: the lease expired \(executor ghost-1/)})])
      const [second] = await claim(c, {owner: 'ghost-2', operations: ['lease_test'], limit: 1, leaseSeconds: 1})
      expect(second!.attempts).toBe(2)
      await new Promise((r) => setTimeout(r, 1100))
      await reclaimExpired(c)
      const row = (await getJob(c, id))!
      expect(row.status).toBe('failed')
      expect(row.error_message).toMatch(/failed after 2 attempts: the lease of the last one expired \(executor ghost-2/)
      expect(row.lease_owner).toBeNull()
      expect(row.completed_at).not.toBeNull()
    } finally {
      await c.end()
    }
  })

  it('an executor that lost its lease changes nothing', async () => {
    const c = await openQueueClient(conn)
    try {
      const id = await enqueue(c, {operation: 'lease_test', params: {}})
      const [row] = await claim(c, {owner: 'a', operations: ['lease_test'], limit: 1})
      await sql(db, `UPDATE steep_repl.work_queue SET lease_owner = 'b' WHERE id = $1`, [id])
      const lease = {id, owner: 'a', attempt: row!.attempts}
      expect(await renewLease(c, lease, 30)).toEqual({held: false})
      expect(await finish(c, lease, {status: 'complete', progress: '{}'})).toBe(false)
      expect((await getJob(c, id))!.status).toBe('running')
      // uninstall: a live lease counts as running, an expired one does not
      expect((await runningJobs(c)).map((j) => j.id)).toContain(id)
      await sql(db, `UPDATE steep_repl.work_queue SET lease_expires_at = now() - interval '1 s' WHERE id = $1`, [id])
      expect((await runningJobs(c)).map((j) => j.id)).not.toContain(id)
    } finally {
      await c.end()
      await sql(db, `DELETE FROM steep_repl.work_queue WHERE operation = 'lease_test'`)
    }
  })

  it('finishMany records only jobs whose lease is held and announces them in one ended: NOTIFY; finishAndClaim also claims the next ones', async () => {
    const c = await openQueueClient(conn)
    const listener = await openQueueClient(conn)
    const messages: string[] = []
    listener.on('notification', (n) => n.channel === PROGRESS_CHANNEL && messages.push(n.payload ?? ''))
    await listener.query(`LISTEN ${PROGRESS_CHANNEL}`)
    try {
      await sql(db, `INSERT INTO steep_repl.work_queue (operation, params) SELECT 'fin_test', '{}' FROM generate_series(1, 6)`)
      const rows = await claim(c, {owner: 'f1', operations: ['fin_test'], limit: 3})
      expect(rows.map((r) => r.attempts)).toEqual([1, 1, 1])
      await sql(db, `UPDATE steep_repl.work_queue SET lease_owner = 'someone-else' WHERE id = $1`, [rows[2]!.id])
      expect(await finishMany(c, rows.map((r) => outcome(r, 'f1')))).toEqual([true, true, false])
      await until('the ended: message', async () => messages.length > 0)
      expect(messages.length).toBe(1)
      expect(parseEndedMessage(messages[0])!.sort()).toEqual([rows[0]!.id, rows[1]!.id].sort())
      const first = (await getJob(c, rows[0]!.id))!
      expect(first).toMatchObject({status: 'complete', result: {job: rows[0]!.id}, lease_owner: null, error_message: null})
      const doc = decodeProgress(first.progress)
      expect(doc.ok && doc.payload.status).toBe('complete')
      expect((await getJob(c, rows[2]!.id))!.status).toBe('running')

      messages.length = 0
      const r2 = await finishAndClaim(c, [outcome(rows[2]!, 'someone-else')], {owner: 'f2', operations: ['fin_test'], limit: 10})
      expect(r2.recorded).toEqual([true])
      expect(r2.claimed.length).toBe(3)
      expect(r2.claimed.every((j) => j.operation === 'fin_test' && j.attempts === 1 && j.max_attempts === 3)).toBe(true)
      const state = await sql<{status: string; lease_owner: string | null; n: number}>(
        db,
        `SELECT status, lease_owner, count(*)::int AS n FROM steep_repl.work_queue WHERE operation = 'fin_test' GROUP BY 1, 2 ORDER BY 1`,
      )
      expect(state).toEqual([
        {status: 'complete', lease_owner: null, n: 3},
        {status: 'running', lease_owner: 'f2', n: 3},
      ])
      await until('the ended: message', async () => messages.length > 0)
      expect(messages).toEqual([`ended:${rows[2]!.id}`])
      // Nothing to record and nothing left to claim: no message, nothing claimed.
      expect(await finishAndClaim(c, [], {owner: 'f3', operations: ['fin_test'], limit: 5})).toEqual({recorded: [], claimed: []})
    } finally {
      await listener.end()
      await c.end()
      await sql(db, `DELETE FROM steep_repl.work_queue WHERE operation = 'fin_test'`)
    }
  })

  it('finishAndClaim under contention: every job is claimed once and recorded once', async () => {
    await sql(db, `INSERT INTO steep_repl.work_queue (operation, params) SELECT 'race2', '{}' FROM generate_series(1, 400)`)
    const clients = await Promise.all(Array.from({length: 4}, () => openQueueClient(conn)))
    try {
      const got = await Promise.all(
        clients.map(async (c, i) => {
          const owner = `racer-${i}`
          const ids: string[] = []
          let held = await claim(c, {owner, operations: ['race2'], limit: 7})
          while (held.length) {
            ids.push(...held.map((r) => r.id))
            const r = await finishAndClaim(c, held.map((j) => outcome(j, owner)), {owner, operations: ['race2'], limit: 1 + (ids.length % 9)})
            expect(r.recorded.every(Boolean)).toBe(true)
            held = r.claimed
          }
          return ids
        }),
      )
      const all = got.flat()
      expect(all.length).toBe(400)
      expect(new Set(all).size).toBe(400)
      const [s] = await sql(db, `SELECT count(*) FILTER (WHERE status = 'complete')::int AS done, max(attempts) AS max FROM steep_repl.work_queue WHERE operation = 'race2'`)
      expect(s).toMatchObject({done: 400, max: 1})
    } finally {
      await Promise.all(clients.map((c) => c.end()))
      await sql(db, `DELETE FROM steep_repl.work_queue WHERE operation = 'race2'`)
    }
  })

  it('two workers (claims riding along with finishes) run each of many short jobs exactly once, never more handlers than --concurrency', async () => {
    probe.runs.clear()
    probe.maxActive = 0
    const a = await startWorker({operations: ['probe_once'], concurrency: 4})
    const b = await startWorker({operations: ['probe_once'], concurrency: 4})
    try {
      await sql(db, `INSERT INTO steep_repl.work_queue (operation, params) SELECT 'probe_once', '{}' FROM generate_series(1, 300)`)
      await sql(db, `SELECT pg_notify('steep_repl_work', 'job:0:probe_once')`)
      await until(
        'all probe jobs complete',
        async () => (await sql<{n: number}>(db, `SELECT count(*)::int AS n FROM steep_repl.work_queue WHERE operation = 'probe_once' AND status = 'complete'`))[0]!.n === 300,
        60_000,
      )
      expect(probe.runs.size).toBe(300)
      expect([...probe.runs.values()].every((owners) => owners.length === 1)).toBe(true)
      expect(probe.maxActive).toBeLessThanOrEqual(4)
      const [s] = await sql(db, `SELECT max(attempts) AS max, count(*) FILTER (WHERE status <> 'complete')::int AS other FROM steep_repl.work_queue WHERE operation = 'probe_once'`)
      expect(s).toMatchObject({max: 1, other: 0})
      const done = (e: WorkerEvent[]) => e.filter((x) => x.event === 'complete').length
      expect(done(a.events) + done(b.events)).toBe(300)
    } finally {
      await Promise.all([a.worker.stop({now: true}), b.worker.stop({now: true})])
      workers.splice(workers.indexOf(a.worker), 1)
      workers.splice(workers.indexOf(b.worker), 1)
      await sql(db, `DELETE FROM steep_repl.work_queue WHERE operation = 'probe_once'`)
    }
  })

  it('a watcher learns of the end from the ended: message at once, and takes the final document from the row', async () => {
    const c = await openQueueClient(conn)
    try {
      const id = await enqueue(c, {operation: 'watch_test', params: {}})
      const [row] = await claim(c, {owner: 'hand', operations: ['watch_test'], limit: 1})
      const seen: ProgressPayload[] = []
      const t0 = Date.now()
      // The row poll is slow on purpose: only the notification can end the wait in time.
      const watching = watchJob(conn, id, {onProgress: (p) => seen.push(p), pollMs: 60_000, timeoutMs: 30_000})
      await new Promise((r) => setTimeout(r, 500))
      expect(await finishMany(c, [outcome(row!, 'hand')])).toEqual([true])
      const end = await watching
      expect(Date.now() - t0).toBeLessThan(10_000)
      expect(end.status).toBe('complete')
      expect(seen.at(-1)).toMatchObject({job: id, status: 'complete', percent: 100})
    } finally {
      await c.end()
      await sql(db, `DELETE FROM steep_repl.work_queue WHERE operation = 'watch_test'`)
    }
  })

  it('cancels a pending job at once', async () => {
    const c = await openQueueClient(conn)
    try {
      const id = await enqueue(c, {operation: 'noop', params: {seconds: 5}, runAfter: new Date(Date.now() + 3_600_000)})
      expect(await requestCancel(c, id)).toBe('cancelled')
      const row = (await getJob(c, id))!
      expect(row).toMatchObject({status: 'cancelled', attempts: 0})
      expect(row.error_message).toMatch(/cancelled by .* before it started/)
      expect(await requestCancel(c, id)).toBe('cancelled')
    } finally {
      await c.end()
    }
  })

  it('the SQL API: enqueue from SQL, a worker runs it, job_progress, wait_job, health(), and no secrets in params', async () => {
    const admin = await adminClient(db)
    const notices: string[] = []
    admin.on('notice', (n) => notices.push(n.message ?? ''))
    try {
      const {rows} = await admin.query(`SELECT steep_repl.enqueue('noop', '{"seconds": 0.6, "items": 2}') AS id`)
      const id = String(rows[0].id)
      expect(notices.join()).toMatch(/no live worker takes operation noop/)
      await expect(admin.query(`SELECT * FROM steep_repl.wait_job($1, 0.3)`, [id])).rejects.toMatchObject({code: '57014', message: expect.stringMatching(/timeout waiting for job/)})
      const {events} = await startWorker()
      const health = await admin.query(`SELECT * FROM steep_repl.health()`)
      expect(health.rows[0]).toMatchObject({live_workers: 1, wal_level: 'logical', schema_version: latestVersion()})
      const done = await admin.query(`SELECT id::text, status, result, attempts, executor FROM steep_repl.wait_job($1, 20)`, [id])
      expect(done.rows[0]).toMatchObject({id, status: 'complete', attempts: 1, executor: 'worker', result: expect.objectContaining({items: 2})})
      const p = await admin.query(`SELECT * FROM steep_repl.job_progress($1)`, [id])
      expect(p.rows[0]).toMatchObject({status: 'complete', percent: 100, bytes_done: '2097152', rows_done: '2000'})
      expect(events.map((e) => e.event)).toEqual(expect.arrayContaining(['started', 'claimed', 'complete']))
      await expect(admin.query(`SELECT steep_repl.enqueue('noop', '{"peer": "postgres://u:secret@h/db"}')`)).rejects.toMatchObject({code: '23514'})
      await expect(admin.query(`SELECT steep_repl.enqueue('noop', '{"password": "x"}')`)).rejects.toMatchObject({code: '23514'})
      await expect(admin.query(`SELECT steep_repl.enqueue('Bad Op', '{}')`)).rejects.toMatchObject({code: '22023'})
    } finally {
      await admin.end()
    }
  })

  it('cancels a running job: its handler stops at the next safe point', async () => {
    const {events} = workers.length ? {events: [] as WorkerEvent[]} : await startWorker()
    const c = await openQueueClient(conn)
    try {
      const id = await enqueue(c, {operation: 'noop', params: {seconds: 20, items: 4}})
      await until('running', async () => (await getJob(c, id))?.status === 'running')
      const t0 = Date.now()
      expect(await requestCancel(c, id)).toBe('running')
      const row = await until('cancelled', async () => {
        const r = await getJob(c, id)
        return r?.status === 'cancelled' ? r : undefined
      })
      expect(Date.now() - t0).toBeLessThan(2000)
      expect(row.error_message).toBe('cancelled by request')
      expect(row.lease_owner).toBeNull()
      expect((row.progress as ProgressPayload).status).toBe('cancelled')
      void events
    } finally {
      await c.end()
    }
  })

  it('a watcher that connects late starts from the current state and follows to the end', async () => {
    if (!workers.length) await startWorker()
    const c = await openQueueClient(conn)
    try {
      const id = await enqueue(c, {operation: 'noop', params: {seconds: 2, items: 4}})
      await new Promise((r) => setTimeout(r, 1000))
      const seen: ProgressPayload[] = []
      const row = await watchJob(conn, id, {onProgress: (p) => seen.push(p), timeoutMs: 20_000})
      expect(row.status).toBe('complete')
      expect(seen[0]!.seq).toBeGreaterThan(1)
      expect(seen[0]!.percent).toBeGreaterThan(0)
      expect(seen.length).toBeGreaterThan(3)
      for (let i = 1; i < seen.length; i++) expect(seen[i]!.seq).toBeGreaterThan(seen[i - 1]!.seq)
      expect(seen.at(-1)).toMatchObject({status: 'complete', percent: 100, itemsDone: 4})
      // at least twice a second while bytes move
      const gaps = seen.slice(1, -1).map((p, i) => p.at - seen[i]!.at)
      expect(Math.max(...gaps)).toBeLessThan(600)
    } finally {
      await c.end()
    }
  })

  it('a direct run and a worker run produce the same job record', async () => {
    const p = {seconds: 0.3, items: 2}
    const direct = await runJobCommand(silentHost(), {kind: noop, params: p, db: conn, flags: {direct: true}})
    if (!workers.length) await startWorker()
    const err = collector()
    const viaWorker = await runJobCommand(silentHost(err.stream), {kind: noop, params: p, db: conn, flags: {}})
    expect(err.text()).toMatch(/a worker runs it/)
    const shape = (j: typeof direct) => ({
      status: j.status,
      attempts: j.attempts,
      maxAttempts: j.maxAttempts,
      params: j.params,
      result: j.result,
      error: j.error,
      leaseOwner: j.leaseOwner,
      hasTimes: Boolean(j.startedAt && j.completedAt),
      progress: {status: j.progress?.status, percent: j.progress?.percent, bytes: j.progress?.bytes, rows: j.progress?.rows, phases: j.progress?.phases},
    })
    expect(shape(viaWorker)).toEqual(shape(direct))
    expect([direct.executor, viaWorker.executor]).toEqual(['direct', 'worker'])
    expect(direct.status).toBe('complete')
  })

  it('runs the job in this process, saying so, when no live worker takes it', async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop({now: true})))
    const err = collector()
    const job = await runJobCommand(silentHost(err.stream), {kind: noop, params: {seconds: 0.1}, db: conn, flags: {}})
    expect(err.text()).toMatch(/no live worker takes noop on .*: running it in this process/)
    expect(job).toMatchObject({status: 'complete', executor: 'direct'})
    const rows = await sql<JobRow>(db, `SELECT count(*)::int AS n FROM steep_repl.workers`)
    expect(rows[0]).toMatchObject({n: 0})
  })

  it('refuses bad params before queueing anything', async () => {
    const [before] = await sql(db, `SELECT count(*)::int AS n FROM steep_repl.work_queue`)
    await expect(runJobCommand(silentHost(), {kind: noop, params: {seconds: 'x'} as never, db: conn, flags: {direct: true}})).rejects.toThrow(/params\.seconds/)
    const [after] = await sql(db, `SELECT count(*)::int AS n FROM steep_repl.work_queue`)
    expect(after.n).toBe(before.n)
  })
})
