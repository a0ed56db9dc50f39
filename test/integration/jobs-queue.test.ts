// The work queue and its SQL API against a real server, through the library (no CLI processes):
// claims under contention, leases and attempts, cancel, late watchers, direct and worker runs.

import {Writable} from 'node:stream'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {withClient} from '../../src/lib/connection/connect.js'
import {type ConnParams, resolveConnection} from '../../src/lib/connection/resolve.js'
import {install, latestVersion} from '../../src/lib/install/migrations.js'
import {runningJobs} from '../../src/lib/install/uninstall.js'
import {noop} from '../../src/direct/operations/noop.js'
import {watchJob} from '../../src/direct/progress.js'
import type {ProgressPayload} from '../../src/direct/progress-schema.js'
import {claim, enqueue, finish, getJob, type JobRow, reclaimExpired, renewLease, requestCancel} from '../../src/direct/queue.js'
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
