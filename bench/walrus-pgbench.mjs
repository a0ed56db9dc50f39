#!/usr/bin/env node
// pgbench with a deliberately small max_wal_size (32 MB), without and with `walrus watch`, on two
// identical fresh embedded PostgreSQL servers (default 15, the major of Debian's pgbench). Prints
// requested (forced) checkpoints and TPS side by side, the final max_wal_size, and the watcher's
// own cost: peak RSS (VmHWM) and queries per cycle. Rounds run in ABBA order (without, with, with,
// without) so drift in the machine's load cancels out. Asserts nothing.
//
//   npm run build && node bench/walrus-pgbench.mjs     # DURATION=45 ROUNDS=2 SCALE=10 CLIENTS=4 MAJOR=15
import {execFileSync, spawn} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {cpus, totalmem} from 'node:os'
import {fileURLToPath} from 'node:url'
import {EmbeddedServer} from '../dist/lib/embedded/server.js'

const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const DURATION = Number(process.env.DURATION ?? 45)
// ABBA order (without, with, with, without) so load drift from other work on the machine cancels out
const ROUNDS = Number(process.env.ROUNDS ?? 2)
const SCALE = Number(process.env.SCALE ?? 10)
const CLIENTS = Number(process.env.CLIENTS ?? 4)
const MAJOR = Number(process.env.MAJOR ?? 15)
const INTERVAL = process.env.INTERVAL ?? '10s'
const PGBENCH = process.env.PGBENCH ?? 'pgbench'

async function server() {
  // Real durability (fsync, full_page_writes): forced checkpoints cost what they cost in production.
  const s = await new EmbeddedServer({major: MAJOR, throwaway: false, settings: {max_wal_size: '32MB', min_wal_size: '32MB', checkpoint_timeout: '5min', log_checkpoints: 'on'}}).start()
  return s
}

function pgbench(s, args) {
  const env = {...process.env, PGHOST: s.dataDir, PGPORT: String(s.port), PGUSER: 'postgres', PGDATABASE: 'postgres'}
  return execFileSync(PGBENCH, args, {env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20})
}

async function requested(s) {
  const v = (await s.query(`SELECT current_setting('server_version_num')::int AS v`)).rows[0].v
  const q = v >= 170000 ? 'SELECT num_requested AS r, num_timed AS t FROM pg_stat_checkpointer' : 'SELECT checkpoints_req AS r, checkpoints_timed AS t FROM pg_stat_bgwriter'
  const row = (await s.query(q)).rows[0]
  return {req: Number(row.r), timed: Number(row.t)}
}

async function run(withWatcher) {
  const s = await server()
  try {
    pgbench(s, ['-i', '-q', '-s', String(SCALE)])
    await s.query('CHECKPOINT')
    let watcher
    const events = []
    if (withWatcher) {
      execFileSync(process.execPath, [BIN, 'install', '-d', s.url()], {stdio: 'ignore'})
      watcher = spawn(process.execPath, [BIN, 'walrus', 'watch', '-d', s.url(), '--json', '--interval', INTERVAL, '--cooldown', '0', '--min', '32MB', '--max', '4GB', '--max-changes-per-hour', '100'], {stdio: ['ignore', 'pipe', 'pipe']})
      let buf = ''
      watcher.stderr.on('data', (d) => {
        buf += d
        const lines = buf.split('\n')
        buf = lines.pop()
        for (const l of lines) {
          try {
            events.push(JSON.parse(l))
          } catch {
            /* not JSON */
          }
        }
      })
      const t0 = Date.now()
      while (!events.some((e) => e.event === 'decision') && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 100))
    }
    const before = await requested(s)
    const out = pgbench(s, ['-c', String(CLIENTS), '-j', String(Math.min(CLIENTS, 2)), '-T', String(DURATION)])
    const after = await requested(s)
    const tps = Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? Number.NaN)
    const size = (await s.query(`SHOW max_wal_size`)).rows[0].max_wal_size
    let cost
    if (watcher) {
      const status = readFileSync(`/proc/${watcher.pid}/status`, 'utf8')
      const hwmKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0)
      watcher.kill('SIGTERM')
      await new Promise((r) => watcher.on('close', r))
      const decisions = events.filter((e) => e.event === 'decision')
      cost = {
        peakRssMb: hwmKb / 1024,
        cycles: decisions.length,
        maxQueries: Math.max(...decisions.map((d) => d.queries)),
        quietQueries: Math.max(0, ...decisions.filter((d) => !d.applied).map((d) => d.queries)),
        changes: decisions.filter((d) => d.applied).map((d) => `${d.current_mb}->${d.target_mb}`),
      }
    }
    return {forced: after.req - before.req, timed: after.timed - before.timed, tps, size, cost}
  } finally {
    await s.stop()
  }
}

console.log(`walrus pgbench: PostgreSQL ${MAJOR}, pgbench -s ${SCALE} -c ${CLIENTS} -T ${DURATION}, max_wal_size 32MB at start, watcher interval ${INTERVAL}`)
console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version}`)
const without = []
const withW = []
for (let i = 0; i < ROUNDS; i++) {
  for (const w of i % 2 === 0 ? [false, true] : [true, false]) {
    const r = await run(w)
    ;(w ? withW : without).push(r)
    console.log(`  round ${i + 1} ${w ? 'with   ' : 'without'}: forced ${r.forced}, timed ${r.timed}, tps ${r.tps.toFixed(1)}, max_wal_size ${r.size}${r.cost ? `, changes ${r.cost.changes.join(' ')}` : ''}`)
  }
}
const mean = (xs, f) => xs.reduce((a, x) => a + f(x), 0) / xs.length
const a = {forced: mean(without, (r) => r.forced), timed: mean(without, (r) => r.timed), tps: mean(without, (r) => r.tps), size: without.map((r) => r.size).join('/')}
const b = {forced: mean(withW, (r) => r.forced), timed: mean(withW, (r) => r.timed), tps: mean(withW, (r) => r.tps), size: withW.map((r) => r.size).join('/')}
const row = (name, r) => `${name.padEnd(22)} ${r.forced.toFixed(1).padStart(8)} ${r.timed.toFixed(1).padStart(6)} ${r.tps.toFixed(1).padStart(9)} ${String(r.size).padStart(16)}`
console.log(`mean of ${ROUNDS} round(s) each:`)
console.log(`${'run'.padEnd(22)} ${'forced'.padStart(8)} ${'timed'.padStart(6)} ${'tps'.padStart(9)} ${'max_wal_size'.padStart(16)}`)
console.log(row('without walrus', a))
console.log(row('with walrus watch', b))
console.log(`forced checkpoints: ${a.forced.toFixed(1)} -> ${b.forced.toFixed(1)} (${a.forced ? ((1 - b.forced / a.forced) * 100).toFixed(0) : 0}% fewer); TPS ratio with/without: ${(b.tps / a.tps).toFixed(2)}`)
const cost = withW.map((r) => r.cost)
console.log(`watcher: peak RSS ${Math.max(...cost.map((c) => c.peakRssMb)).toFixed(1)} MB, ${cost.map((c) => c.cycles).join('/')} cycles, queries per cycle: ${Math.max(...cost.map((c) => c.quietQueries))} when nothing changes, ${Math.max(...cost.map((c) => c.maxQueries))} at most (with a change)`)
