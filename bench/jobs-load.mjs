#!/usr/bin/env node
// Load: SUBMITTERS concurrent job submitters (default 50, one connection each, steep_repl.enqueue)
// and WORKERS worker processes (default 4, the real Worker) over DURATION_S seconds (default 120;
// the issue's long run: DURATION_S=600) of mixed small noop jobs: instant, short with progress items,
// failing, and cancelled by their submitter. Then it waits (bounded) until every job
// is terminal, stops the workers and checks: nothing lost (every submitted id is in the queue, in the
// status its kind must end in), nothing run twice (no job claimed twice for the same attempt, no
// job completed twice). Prints counts; stops by itself; loopback only. Needs `npm run build`.
import {fork} from 'node:child_process'
import {fileURLToPath} from 'node:url'
import pg from 'pg'
import {Worker} from '../dist/direct/worker.js'
import {benchDatabase, machine} from './jobs-common.mjs'

const SUBMITTERS = Number(process.env.SUBMITTERS ?? 50)
const WORKERS = Number(process.env.WORKERS ?? 4)
const DURATION_S = Number(process.env.DURATION_S ?? 120)
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 8)
const DRAIN_S = Number(process.env.DRAIN_S ?? 120)
const self = fileURLToPath(import.meta.url)

// Kinds of job: params and the status each must end in.
const KINDS = [
  {name: 'instant', weight: 60, params: {}, max: 3, end: 'complete'},
  {name: 'short', weight: 25, params: {seconds: 0.2, items: 4, bytesPerItem: 1024}, max: 3, end: 'complete'},
  {name: 'fails', weight: 10, params: {fail: 'planned failure'}, max: 1, end: 'failed'},
  // Cancelled by its submitter right after submitting: cancelled while pending, or stopped while running
  // (a running noop checks for the cancel every tick; it may also have finished first).
  {name: 'cancelled', weight: 5, params: {seconds: 0.5}, max: 3, end: ['cancelled', 'complete'], cancel: true},
]

if (process.argv[2] === '--child') {
  const conn = JSON.parse(process.argv[3])
  const w = new Worker({
    db: conn,
    operations: ['noop'],
    concurrency: CONCURRENCY,
    pollMs: 500,
    version: 'bench',
    onEvent: (e) => {
      if (e.event === 'claimed' || e.event === 'complete' || e.event === 'failed' || e.event === 'retry' || e.event === 'error') process.send?.({e: e.event, job: e.job, attempt: e.attempt, worker: w.id, error: e.error, message: e.message})
    },
  })
  await w.start()
  process.send?.('ready')
  process.on('message', async (m) => {
    if (m === 'stop') {
      await w.stop()
      process.send?.('stopped')
      process.exit(0)
    }
  })
} else {
  const db = await benchDatabase('bench_load')
  const kids = Array.from({length: WORKERS}, () => fork(self, ['--child', JSON.stringify(db.conn)], {stdio: ['ignore', 'inherit', 'inherit', 'ipc']}))
  const claims = new Map() // job -> [`${worker}:${attempt}`]
  const completes = new Map()
  let errors = 0
  for (const k of kids) {
    k.on('message', (m) => {
      if (typeof m !== 'object') return
      if (m.e === 'claimed') claims.set(m.job, [...(claims.get(m.job) ?? []), m.attempt])
      else if (m.e === 'complete') completes.set(m.job, (completes.get(m.job) ?? 0) + 1)
      else if (m.e === 'error') {
        errors++
        if (process.env.DEBUG) console.error('worker error', m)
      }
    })
  }
  await Promise.all(kids.map((k) => new Promise((r) => k.once('message', r))))
  const submitted = new Map() // id -> kind
  const totalWeight = KINDS.reduce((s, k) => s + k.weight, 0)
  const pick = () => {
    let r = Math.random() * totalWeight
    for (const k of KINDS) if ((r -= k.weight) < 0) return k
    return KINDS[0]
  }
  const t0 = Date.now()
  const until = t0 + DURATION_S * 1000
  let submitErrors = 0
  const submitter = async () => {
    const c = new pg.Client({connectionString: db.url})
    await c.connect()
    try {
      while (Date.now() < until) {
        const k = pick()
        try {
          const {rows} = await c.query(`SELECT steep_repl.enqueue('noop', $1::jsonb, 0, $2)::text AS id`, [JSON.stringify(k.params), k.max])
          submitted.set(rows[0].id, k)
          if (k.cancel) await c.query(`SELECT steep_repl.cancel_job($1)`, [rows[0].id])
        } catch (err) {
          submitErrors++
          if (process.env.DEBUG) console.error('submit', err.message)
        }
        // A submitter is a client doing other things too: 20-200 ms between jobs.
        await new Promise((r) => setTimeout(r, 20 + Math.random() * 180))
      }
    } finally {
      await c.end()
    }
  }
  const admin = new pg.Client({connectionString: db.url})
  await admin.connect()
  try {
    await Promise.all(Array.from({length: SUBMITTERS}, submitter))
    const submittedAt = Date.now()
    // Drain: bounded wait until nothing is pending or running.
    const drainUntil = Date.now() + DRAIN_S * 1000
    for (;;) {
      const {rows} = await admin.query(`SELECT count(*)::int AS n FROM steep_repl.work_queue WHERE status IN ('pending', 'running')`)
      if (rows[0].n === 0 || Date.now() > drainUntil) break
      await new Promise((r) => setTimeout(r, 250))
    }
    const drained = Date.now()
    await Promise.all(kids.map((k) => new Promise((r) => {
      k.once('exit', r)
      k.send('stop')
    })))
    const {rows} = await admin.query(`SELECT id::text, status, attempts FROM steep_repl.work_queue`)
    const byId = new Map(rows.map((r) => [r.id, r]))
    let lost = 0
    let wrongEnd = 0
    let runTwice = 0
    let completedTwice = 0
    const status = {}
    for (const [id, k] of submitted) {
      const row = byId.get(id)
      if (!row) {
        lost++
        continue
      }
      status[row.status] = (status[row.status] ?? 0) + 1
      if (![k.end].flat().includes(row.status)) wrongEnd++
      const attempts = claims.get(id) ?? []
      if (new Set(attempts).size !== attempts.length || attempts.length > row.attempts) runTwice++
      if ((completes.get(id) ?? 0) > 1) completedTwice++
    }
    const s = (drained - t0) / 1000
    console.log(`jobs load: ${SUBMITTERS} submitters, ${WORKERS} worker processes × concurrency ${CONCURRENCY}, ${DURATION_S}s of submissions, PostgreSQL ${db.version}, ${machine()}`)
    console.log(`submitted ${submitted.size} (${(submitted.size / DURATION_S).toFixed(0)}/s; ${submitErrors} submit errors), all terminal ${((drained - submittedAt) / 1000).toFixed(1)}s after the last submission, ${s.toFixed(1)}s in all`)
    console.log(`by kind: ${KINDS.map((k) => `${k.name} ${[...submitted.values()].filter((v) => v === k).length}`).join(', ')}`)
    console.log(`final statuses: ${JSON.stringify(status)}`)
    console.log(`claims ${[...claims.values()].reduce((a, v) => a + v.length, 0)}, completions ${[...completes.values()].reduce((a, v) => a + v, 0)}, worker errors ${errors}`)
    console.log(`lost ${lost}, ended in the wrong status ${wrongEnd}, run twice (same attempt claimed twice) ${runTwice}, completed twice ${completedTwice}: ${lost + wrongEnd + runTwice + completedTwice === 0 ? 'OK' : 'PROBLEMS'}`)
  } finally {
    for (const k of kids) if (k.exitCode === null) k.kill('SIGKILL')
    await admin.end()
    await db.close()
  }
}
