#!/usr/bin/env node
// pgbench with a deliberately small max_wal_size (32 MB), without and with `walrus watch`, on two
// identical fresh embedded PostgreSQL servers (default 15, the major of Debian's pgbench). Prints
// requested (forced) checkpoints and TPS side by side, the final max_wal_size, and the watcher's
// own cost: peak RSS (VmHWM) and queries per cycle. Asserts nothing.
//
//   npm run build && node bench/walrus-pgbench.mjs          # DURATION=60 SCALE=10 CLIENTS=4 MAJOR=15
import {execFileSync, spawn} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {cpus, totalmem} from 'node:os'
import {fileURLToPath} from 'node:url'
import {EmbeddedServer} from '../dist/lib/embedded/server.js'

const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const DURATION = Number(process.env.DURATION ?? 60)
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
const a = await run(false)
const b = await run(true)
const row = (name, r) => `${name.padEnd(22)} ${String(r.forced).padStart(8)} ${String(r.timed).padStart(6)} ${r.tps.toFixed(1).padStart(9)} ${String(r.size).padStart(14)}`
console.log(`${'run'.padEnd(22)} ${'forced'.padStart(8)} ${'timed'.padStart(6)} ${'tps'.padStart(9)} ${'max_wal_size'.padStart(14)}`)
console.log(row('without walrus', a))
console.log(row('with walrus watch', b))
console.log(`forced checkpoints: ${a.forced} -> ${b.forced} (${a.forced ? ((1 - b.forced / a.forced) * 100).toFixed(0) : 0}% fewer); TPS ratio with/without: ${(b.tps / a.tps).toFixed(2)}`)
console.log(`watcher: peak RSS ${b.cost.peakRssMb.toFixed(1)} MB, ${b.cost.cycles} cycles, queries per cycle: ${b.cost.quietQueries} when nothing changes, ${b.cost.maxQueries} at most (with a change); changes: ${b.cost.changes.join(', ') || 'none'}`)
