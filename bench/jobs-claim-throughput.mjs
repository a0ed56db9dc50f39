#!/usr/bin/env node
// Claim throughput: N empty jobs (noop, seconds 0) run by 4 worker processes (the real Worker:
// claim with FOR UPDATE SKIP LOCKED, lease, executor, progress, finish), jobs per second from the
// first claim to the last completion; next to the bare SQL (4 processes looping claim + complete in
// batches, no executor) measured in the same run, and graphile-worker's published figure for scale
// (~15,600 jobs/s unbatched, i9-14900K, 4 processes × 24 concurrency). Target (issue 3): ≥ 2,000
// jobs/s here. Prints figures; asserts nothing.
import {fork} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {loadavg} from 'node:os'
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
// PROFILE=dir: the worker processes write a V8 CPU profile there (they are stopped, not killed).
const PROFILE = process.env.PROFILE
const MODES = (process.env.MODES ?? 'worker,bare').split(',')
// Jobs run before the measurement in each mode (both the same), so both are measured warm.
const WARMUP = Number(process.env.WARMUP ?? 4000)

/** CPU seconds (user + system) of a process, from /proc (Linux); null elsewhere. */
function procCpu(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) / 100
  } catch {
    return null
  }
}

let markCpu
/** The child's side of the parent's messages: `mark` starts its CPU count, `cpu` reports it. */
function cpuMessages(m) {
  if (m === 'mark') markCpu = process.cpuUsage()
  if (m === 'cpu') {
    const u = process.cpuUsage(markCpu)
    if (process.env.CPU_SPLIT) console.error(`${process.argv[3]} ${process.pid}: user ${(u.user / 1e6).toFixed(2)} s, system ${(u.system / 1e6).toFixed(2)} s`)
    process.send?.({cpu: (u.user + u.system) / 1e6})
  }
}

if (process.argv[2] === '--child') {
  const conn = JSON.parse(process.argv[4])
  process.on('message', cpuMessages)
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
    // The bare loop: on each `go`, claim and complete until the queue is empty, then say `idle`.
    const c = await openQueueClient(conn)
    process.send?.('ready')
    process.on('message', async (m) => {
      if (m !== 'go') return
      for (;;) {
        const rows = await claim(c, {owner: `bare-${process.pid}`, operations: ['noop'], limit: CONCURRENCY})
        if (rows.length === 0) break
        await c.query(
          `UPDATE steep_repl.work_queue SET status = 'complete', completed_at = now(), lease_owner = NULL, lease_expires_at = NULL WHERE id = ANY ($1::bigint[])`,
          [rows.map((r) => r.id)],
        )
      }
      process.send?.('idle')
    })
  }
} else {
  const db = await benchDatabase('bench_claim')
  const admin = new pg.Client({connectionString: db.url})
  await admin.connect()
  const completed = async () => (await admin.query(`SELECT count(*)::int AS n FROM steep_repl.work_queue WHERE status = 'complete'`)).rows[0].n

  const pgCpuNow = async () => {
    const pids = (await admin.query(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)).rows.map((r) => r.pid)
    return pids.map(procCpu).reduce((a, b) => a + (b ?? 0), 0)
  }

  /** Queues n jobs (visible at once, when the INSERT commits) and runs them; returns the seconds. */
  async function run(mode, kids, n) {
    await admin.query('TRUNCATE steep_repl.work_queue')
    await admin.query(`INSERT INTO steep_repl.work_queue (operation, params) SELECT 'noop', '{}' FROM generate_series(1, $1)`, [n])
    const idle = mode === 'bare' ? Promise.all(kids.map((k) => new Promise((r) => k.on('message', (m) => m === 'idle' && r())))) : undefined
    const t0 = process.hrtime.bigint()
    if (mode === 'worker') await admin.query(`SELECT pg_notify('steep_repl_work', 'job:0:noop')`)
    else kids.forEach((k) => k.send('go'))
    for (let done = 0; (done = await completed()) < n; ) {
      if (process.env.DEBUG) console.error(mode, done)
      await new Promise((r) => setTimeout(r, 20))
    }
    const s = Number(process.hrtime.bigint() - t0) / 1e9
    await idle
    return s
  }

  async function measure(mode) {
    // A long-lived queue has statistics (kept by TRUNCATE); a fresh one would get guessed plans.
    await admin.query('TRUNCATE steep_repl.work_queue')
    await admin.query(`INSERT INTO steep_repl.work_queue (operation, params) SELECT 'noop', '{}' FROM generate_series(1, $1)`, [N])
    await admin.query('ANALYZE steep_repl.work_queue')
    await admin.query('TRUNCATE steep_repl.work_queue')
    const execArgv = PROFILE && mode === 'worker' ? ['--cpu-prof', '--cpu-prof-dir', PROFILE] : []
    const kids = Array.from({length: PROCS}, () => fork(self, ['--child', mode, JSON.stringify(db.conn)], {stdio: 'inherit', execArgv}))
    await Promise.all(kids.map((k) => new Promise((r) => k.once('message', r))))
    // Warm-up (not timed): a long-running worker has its code compiled and its statements prepared.
    if (WARMUP > 0) await run(mode, kids, WARMUP)
    kids.forEach((k) => k.send('mark'))
    const pg0 = await pgCpuNow()
    const s = await run(mode, kids, N)
    // CPU time of the client processes and of the server backends serving this database, per job.
    const nodeCpu = (
      await Promise.all(kids.map((k) => new Promise((r) => {
        k.on('message', (m) => m?.cpu !== undefined && r(m.cpu))
        k.send('cpu')
      })))
    ).reduce((a, b) => a + b, 0)
    const pgCpu = (await pgCpuNow()) - pg0
    // The measurement is over: the children are not needed any more (their rows go with the database).
    const exits = kids.map((k) => new Promise((r) => k.once('exit', r)))
    kids.forEach((k) => (PROFILE && mode === 'worker' ? k.send('stop') : k.kill('SIGKILL')))
    await Promise.all(exits)
    const failed = (await admin.query(`SELECT count(*)::int AS n FROM steep_repl.work_queue WHERE status <> 'complete'`)).rows[0].n
    return {s, rate: N / s, failed, nodeMs: (nodeCpu * 1000) / N, pgMs: (pgCpu * 1000) / N}
  }

  try {
    const r = {}
    for (const m of MODES) r[m] = await measure(m)
    const {worker, bare} = r
    console.log(`claim throughput, ${N} empty jobs (after ${WARMUP} warm-up jobs), ${PROCS} processes × concurrency ${CONCURRENCY}, PostgreSQL ${db.version}, ${machine()}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`)
    console.log('path'.padEnd(52) + 'seconds'.padStart(9) + 'jobs/s'.padStart(9) + 'node ms/job'.padStart(13) + 'pg ms/job'.padStart(11))
    const line = (name, x) => console.log(name.padEnd(52) + x.s.toFixed(2).padStart(9) + x.rate.toFixed(0).padStart(9) + x.nodeMs.toFixed(3).padStart(13) + x.pgMs.toFixed(3).padStart(11))
    if (worker) line('steep-repl Worker (claim, lease, executor, finish)', worker)
    if (bare) line('bare SQL (claim + batched complete)', bare)
    console.log('graphile-worker, published (unbatched, i9-14900K)'.padEnd(52) + '-'.padStart(9) + '15600'.padStart(9))
    if (worker && bare) console.log(`Worker at ${(worker.rate / bare.rate).toFixed(2)}× the bare SQL; ${(worker.rate / 15600).toFixed(2)}× graphile-worker's published figure (different machine)`)
    const failed = Object.values(r).reduce((a, x) => a + x.failed, 0)
    if (worker) console.log(`target ≥ 2000 jobs/s: ${worker.rate >= 2000 ? 'met' : 'NOT met'}${failed ? ` (${failed} jobs not complete!)` : ''}`)
  } finally {
    await admin.end()
    await db.close()
  }
}
