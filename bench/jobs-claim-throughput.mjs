#!/usr/bin/env node
// Claim throughput: N empty jobs (noop, seconds 0) run by 4 worker processes (the real Worker:
// claim with FOR UPDATE SKIP LOCKED, lease, executor, progress, finish), jobs per second from the
// first claim to the last completion; next to the bare SQL (4 processes looping claim + complete in
// batches, no executor) measured in the same run, and graphile-worker's published figure for scale
// (~15,600 jobs/s unbatched, i9-14900K, 4 processes × 24 concurrency). Target (issue 3): ≥ 2,000
// jobs/s here. Prints figures; asserts nothing.
import {fork} from 'node:child_process'
import {fileURLToPath} from 'node:url'
import pg from 'pg'
import {claim} from '../dist/direct/queue.js'
import {openQueueClient} from '../dist/direct/session.js'
import {Worker} from '../dist/direct/worker.js'
import {benchDatabase, machine} from './jobs-common.mjs'

const N = Number(process.env.JOBS ?? 20000)
const PROCS = Number(process.env.PROCS ?? 4)
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 32)
const self = fileURLToPath(import.meta.url)

if (process.argv[2] === '--child') {
  const conn = JSON.parse(process.argv[4])
  if (process.argv[3] === 'worker') {
    const w = new Worker({db: conn, operations: ['noop'], concurrency: CONCURRENCY, pollMs: 2000, version: 'bench', onEvent: () => {}})
    await w.start()
    process.send?.('ready')
    process.on('message', async (m) => {
      if (m === 'stop') {
        await w.stop()
        process.exit(0)
      }
    })
  } else {
    const c = await openQueueClient(conn)
    process.send?.('ready')
    await new Promise((r) => process.once('message', r))
    for (;;) {
      const rows = await claim(c, {owner: `bare-${process.pid}`, operations: ['noop'], limit: CONCURRENCY})
      if (rows.length === 0) break
      await c.query(
        `UPDATE steep_repl.work_queue SET status = 'complete', completed_at = now(), lease_owner = NULL, lease_expires_at = NULL WHERE id = ANY ($1::bigint[])`,
        [rows.map((r) => r.id)],
      )
    }
    await c.end()
    process.exit(0)
  }
} else {
  const db = await benchDatabase('bench_claim')
  const admin = new pg.Client({connectionString: db.url})
  await admin.connect()
  const fill = async () => {
    await admin.query(`INSERT INTO steep_repl.work_queue (operation, params) SELECT 'noop', '{}' FROM generate_series(1, $1)`, [N])
    // A long-lived queue has statistics; a freshly truncated and filled one would get guessed plans.
    await admin.query('ANALYZE steep_repl.work_queue')
  }
  const completed = async () => (await admin.query(`SELECT count(*)::int AS n FROM steep_repl.work_queue WHERE status = 'complete'`)).rows[0].n

  async function measure(mode) {
    await admin.query('TRUNCATE steep_repl.work_queue')
    await admin.query(`INSERT INTO steep_repl.work_queue (operation, params) SELECT 'noop', '{}' FROM generate_series(1, $1)`, [N])
    await admin.query('ANALYZE steep_repl.work_queue')
    await admin.query('TRUNCATE steep_repl.work_queue')
    if (mode === 'bare') await fill()
    const kids = Array.from({length: PROCS}, () => fork(self, ['--child', mode, JSON.stringify(db.conn)], {stdio: 'inherit'}))
    await Promise.all(kids.map((k) => new Promise((r) => k.once('message', r))))
    const t0 = process.hrtime.bigint()
    if (mode === 'worker') {
      await fill()
      await admin.query(`SELECT pg_notify('steep_repl_work', 'job:0:noop')`)
    } else kids.forEach((k) => k.send('go'))
    for (let n = 0; (n = await completed()) < N; ) {
      if (process.env.DEBUG) console.error(mode, n)
      await new Promise((r) => setTimeout(r, 20))
    }
    const s = Number(process.hrtime.bigint() - t0) / 1e9
    // The measurement is over: the children are not needed any more (their rows go with the database).
    const exits = kids.map((k) => new Promise((r) => k.once('exit', r)))
    kids.forEach((k) => k.kill('SIGKILL'))
    await Promise.all(exits)
    const failed = (await admin.query(`SELECT count(*)::int AS n FROM steep_repl.work_queue WHERE status <> 'complete'`)).rows[0].n
    return {s, rate: N / s, failed}
  }

  try {
    const worker = await measure('worker')
    const bare = await measure('bare')
    console.log(`claim throughput, ${N} empty jobs, ${PROCS} processes × concurrency ${CONCURRENCY}, PostgreSQL ${db.version}, ${machine()}`)
    console.log('path'.padEnd(52) + 'seconds'.padStart(9) + 'jobs/s'.padStart(9))
    console.log('steep-repl Worker (claim, lease, executor, finish)'.padEnd(52) + worker.s.toFixed(2).padStart(9) + worker.rate.toFixed(0).padStart(9))
    console.log('bare SQL (claim + batched complete)'.padEnd(52) + bare.s.toFixed(2).padStart(9) + bare.rate.toFixed(0).padStart(9))
    console.log('graphile-worker, published (unbatched, i9-14900K)'.padEnd(52) + '-'.padStart(9) + '15600'.padStart(9))
    console.log(`Worker at ${(worker.rate / bare.rate).toFixed(2)}× the bare SQL; ${(worker.rate / 15600).toFixed(2)}× graphile-worker's published figure (different machine)`)
    console.log(`target ≥ 2000 jobs/s: ${worker.rate >= 2000 ? 'met' : 'NOT met'}${worker.failed || bare.failed ? ` (${worker.failed + bare.failed} jobs not complete!)` : ''}`)
  } finally {
    await admin.end()
    await db.close()
  }
}
