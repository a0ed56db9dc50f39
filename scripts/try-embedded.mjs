#!/usr/bin/env node
// The README's first command until `steep-repl demo` lands: the main job on two throwaway embedded
// PostgreSQL servers, with the commands a user would type against their own servers:
// install, health, snapshot generate --direct, snapshot verify, snapshot apply --subscribe, then a
// write on the source shown arriving on the target. Everything is stopped and removed at the end
// (also on Ctrl-C).
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {startServer} from '../dist/lib/embedded/server.js'

const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const rows = Number(process.env.ROWS ?? 200000)
const work = mkdtempSync(path.join(tmpdir(), 'steep-try-'))
const servers = []
let stopping
const stop = () =>
  (stopping ??= (async () => {
    for (const s of servers) await s.stop().catch(() => {})
    rmSync(work, {recursive: true, force: true})
  })())
process.on('SIGINT', () => stop().then(() => process.exit(130)))

const step = (args, env) => {
  console.error(`\n$ steep-repl ${args.map((a) => a.replace(/password=\S+/, 'password=********')).join(' ')}`)
  const r = spawnSync(process.execPath, [bin, ...args], {stdio: 'inherit', env: {...process.env, ...env}})
  if (r.status !== 0) throw new Error(`steep-repl ${args[0]} ${args[1] ?? ''} exited ${r.status}`)
}

let status = 0
try {
  const source = await startServer()
  servers.push(source)
  const target = await startServer()
  servers.push(target)
  // Passwords stay in PGPASSWORD-like env per step, never on the command line shown.
  const url = (s) => `postgresql://postgres@127.0.0.1:${s.port}/postgres`
  console.error(`source: embedded PostgreSQL ${source.major} on port ${source.port}; target on port ${target.port}`)
  console.error(`loading ${rows} sample rows into the source…`)
  await source.query(`
    CREATE SCHEMA shop;
    CREATE TABLE shop."Customers" (id bigserial PRIMARY KEY, name text NOT NULL, email text UNIQUE, created timestamptz DEFAULT now());
    CREATE TABLE shop.orders (id bigserial, customer_id bigint NOT NULL REFERENCES shop."Customers", placed date NOT NULL,
                              amount numeric(12,2), note text, PRIMARY KEY (id, placed)) PARTITION BY RANGE (placed);
    CREATE TABLE shop.orders_2025 PARTITION OF shop.orders FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
    CREATE TABLE shop.orders_2026 PARTITION OF shop.orders FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
    CREATE INDEX ON shop.orders (customer_id);
    INSERT INTO shop."Customers" (name, email) SELECT 'customer ' || i, 'c' || i || '@example.com' FROM generate_series(1, ${Math.max(10, rows / 20)}) i;
    INSERT INTO shop.orders (customer_id, placed, amount, note)
      SELECT 1 + i % ${Math.max(10, rows / 20)}, date '2025-03-01' + (i % 600), (i % 1000) / 7.0, CASE WHEN i % 5 = 0 THEN NULL ELSE 'order ' || i END
        FROM generate_series(1, ${rows}) i;`)
  const srcEnv = {PGPASSWORD: source.password}
  const dstEnv = {PGPASSWORD: target.password}
  step(['install', '-d', url(source)], srcEnv)
  step(['health', '-d', url(source)], srcEnv)
  const snap = path.join(work, 'snapshot')
  step(['snapshot', 'generate', '-d', url(source), '--output', snap, '--direct', '--parallel', '2', '--split-larger-than', '4MB'], srcEnv)
  step(['snapshot', 'verify', snap])
  // The target reaches the source with the source's password (stored in its pg_subscription).
  const sourceForTarget = `host=127.0.0.1 port=${source.port} user=postgres dbname=postgres password=${source.password}`
  step(['snapshot', 'apply', '-d', url(target), '--input', snap, '--direct', '--parallel', '2', '--subscribe', '--source', sourceForTarget], dstEnv)
  console.error('\nwriting a new order on the source…')
  await source.query(`INSERT INTO shop.orders (customer_id, placed, amount, note) VALUES (1, '2026-06-01', 42, 'written after the snapshot')`)
  let arrived = false
  for (let i = 0; i < 50 && !arrived; i++) {
    const r = await target.query(`SELECT count(*)::int AS n FROM shop.orders WHERE note = 'written after the snapshot'`)
    arrived = r.rows[0].n === 1
    if (!arrived) await new Promise((res) => setTimeout(res, 200))
  }
  const [a, b] = await Promise.all([source, target].map((s) => s.query(`SELECT count(*)::int AS n FROM shop.orders`)))
  console.error(`${arrived ? 'it arrived on the target through logical replication' : 'it did NOT arrive'}: source ${a.rows[0].n} orders, target ${b.rows[0].n}`)
  if (!arrived || a.rows[0].n !== b.rows[0].n) status = 1
} catch (err) {
  console.error(String(err.message ?? err))
  status = 1
} finally {
  await stop()
}
process.exit(status)
