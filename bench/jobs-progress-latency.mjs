#!/usr/bin/env node
// Progress latency: from an executor publishing a payload (persist on the job row + NOTIFY on
// steep_repl_progress, the executor's own statement) to a watcher's callback (LISTEN, zod check),
// p50 and p99 over N events, next to a bare pg_notify of the same payload (the floor) measured in
// the same run; and the end of a job (finish statement with its `ended:` NOTIFY, then the watcher
// reads the final document from the row). Target (issue 3): p99 < 250 ms. Prints figures; asserts nothing.
import {ProgressTracker} from '../dist/direct/progress-model.js'
import {encodeProgress} from '../dist/direct/progress-schema.js'
import {subscribeProgress} from '../dist/direct/progress.js'
import {claim, enqueue, finishMany, getJob, publishProgress} from '../dist/direct/queue.js'
import {openQueueClient} from '../dist/direct/session.js'
import {benchDatabase, machine, pct} from './jobs-common.mjs'

const N = Number(process.env.EVENTS ?? 1000)
const ENDS = Number(process.env.ENDS ?? 200)
const GAP_MS = Number(process.env.GAP_MS ?? 5)

const db = await benchDatabase('bench_progress')
const pub = await openQueueClient(db.conn)
try {
  const id = await enqueue(pub, {operation: 'noop', params: {}})
  const [row] = await claim(pub, {owner: 'bench', operations: ['noop'], limit: 1, leaseSeconds: 600})
  const lease = {id, owner: 'bench', attempt: row.attempts}
  const tracker = new ProgressTracker(id, 'noop', 1)
  tracker.plan(['copy', 'finish'])
  tracker.startPhase('copy', {bytes: 1e12, items: 100})
  for (let i = 0; i < 8; i++) tracker.startItem(`t${i}`, {label: `public.table_${i}`, bytesTotal: 1e11})

  async function run(send) {
    const sent = new Map()
    const lat = []
    let resolveAll
    const all = new Promise((r) => (resolveAll = r))
    const sub = await subscribeProgress(db.conn, (p) => {
      const t = sent.get(p.seq)
      if (t === undefined) return
      lat.push(Number(process.hrtime.bigint() - t) / 1e6)
      if (lat.length === N) resolveAll()
    })
    for (let i = 0; i < N; i++) {
      tracker.advance({bytes: 65536, rows: 100}, `t${i % 8}`)
      const p = tracker.snapshot()
      const text = encodeProgress(p)
      sent.set(p.seq, process.hrtime.bigint())
      await send(text)
      if (GAP_MS) await new Promise((r) => setTimeout(r, GAP_MS))
    }
    await Promise.race([all, new Promise((r) => setTimeout(r, 10_000))])
    await sub.stop()
    lat.sort((a, b) => a - b)
    return {n: lat.length, p50: pct(lat, 0.5), p99: pct(lat, 0.99), max: lat.at(-1), bytes: Buffer.byteLength(encodeProgress(tracker.snapshot()))}
  }

  const full = await run((text) => publishProgress(pub, lease, text))
  const bare = await run((text) => pub.query(`SELECT pg_notify('steep_repl_progress', $1)`, [text]))

  // The end of a job: from the executor's finish statement (row + `ended:` NOTIFY) to a watcher
  // holding the final document, read from the row after the message (what watchJob does).
  async function ends() {
    const reader = await openQueueClient(db.conn)
    const lat = []
    let waiting
    const sub = await subscribeProgress(db.conn, () => {}, async (ids) => {
      if (!waiting || !ids.includes(waiting.id)) return
      const row = await getJob(reader, waiting.id)
      if (row?.status === 'complete' && row.progress?.status === 'complete') waiting.done()
    })
    for (let i = 0; i < ENDS; i++) {
      const jid = await enqueue(pub, {operation: 'noop_end', params: {}})
      const [r] = await claim(pub, {owner: 'bench', operations: ['noop_end'], limit: 1})
      const t = new ProgressTracker(jid, 'noop_end', 1)
      const seen = new Promise((resolve) => (waiting = {id: jid, done: resolve}))
      const t0 = process.hrtime.bigint()
      await finishMany(pub, [{lease: {id: jid, owner: 'bench', attempt: r.attempts}, status: 'complete', progress: encodeProgress(t.snapshot('complete', {slim: true}))}])
      await Promise.race([seen, new Promise((resolve) => setTimeout(resolve, 5000))])
      lat.push(Number(process.hrtime.bigint() - t0) / 1e6)
    }
    await sub.stop()
    await reader.end()
    lat.sort((a, b) => a - b)
    return {n: lat.length, p50: pct(lat, 0.5), p99: pct(lat, 0.99), max: lat.at(-1)}
  }
  const end = await ends()
  console.log(`progress latency, ${N} events ${GAP_MS} ms apart, PostgreSQL ${db.version}, ${machine()}`)
  console.log(`payload ${full.bytes} bytes (8 active items)`)
  console.log('path'.padEnd(40) + 'received'.padStart(10) + 'p50 ms'.padStart(10) + 'p99 ms'.padStart(10) + 'max ms'.padStart(10))
  for (const [name, r] of [['publishProgress (UPDATE row + NOTIFY)', full], ['bare pg_notify (floor)', bare]]) {
    console.log(name.padEnd(40) + String(r.n).padStart(10) + r.p50.toFixed(2).padStart(10) + r.p99.toFixed(2).padStart(10) + r.max.toFixed(2).padStart(10))
  }
  console.log('job end (finish → final row read)'.padEnd(40) + String(end.n).padStart(10) + end.p50.toFixed(2).padStart(10) + end.p99.toFixed(2).padStart(10) + end.max.toFixed(2).padStart(10))
  console.log(`p99 ${full.p99.toFixed(1)} ms (target < 250 ms): ${full.p99 < 250 ? 'met' : 'NOT met'}; persisting costs ${(full.p50 / bare.p50).toFixed(2)}× the bare NOTIFY at p50`)
} finally {
  await pub.end()
  await db.close()
}
