#!/usr/bin/env node
// node init (to synchronized: clone + subscription + catch-up) against `pgcopydb clone` (Debian's
// pgcopydb, same table and index job counts) and against pg_dump -Fd -j N followed by
// pg_restore -j N, on one embedded PostgreSQL 15 (wal_level = logical), same run, same machine.
// Each tool copies the same source database into an empty database of its own. Prints times and
// ratios; asserts nothing.
//
//   node bench/node-init.mjs                   # pgbench scale 10 + a wide table, N = 2
//   SCALE=50 JOBS=4 node bench/node-init.mjs
//
// Needs: npm run build; postgresql-client-15 (pg_dump, pg_restore, pgbench); pgcopydb (apt).

import {execFileSync, spawn} from 'node:child_process'
import {cpus, totalmem, tmpdir} from 'node:os'
import {mkdtempSync, rmSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {EmbeddedServer} from '../dist/lib/embedded/server.js'

const SCALE = Number(process.env.SCALE ?? 10)
const JOBS = Number(process.env.JOBS ?? 2)
const WIDE_ROWS = Number(process.env.WIDE_ROWS ?? 100000)
const ROUNDS = Number(process.env.ROUNDS ?? 3)
const SPLIT = process.env.SPLIT ?? '32MB'
const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const PGBIN = '/usr/lib/postgresql/15/bin'
const tool = (name) => path.join(PGBIN, name)

let lastStdout = ''
function timed(cmd, args, env = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    const child = spawn(cmd, args, {env: {...process.env, PATH: `${PGBIN}:${process.env.PATH}`, ...env}, stdio: ['ignore', 'pipe', 'pipe']})
    let err = ''
    lastStdout = ''
    child.stdout.on('data', (d) => (lastStdout += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.slice(-2000)}`))
      resolve(Number(process.hrtime.bigint() - t0) / 1e9)
    })
  })
}

async function main() {
  execFileSync('pgcopydb', ['--version'], {stdio: 'ignore'})
  const work = mkdtempSync(path.join(tmpdir(), 'steep-nodebench-'))
  const server = await new EmbeddedServer({major: 15, settings: {wal_level: 'logical', max_replication_slots: 20, max_wal_senders: 20, max_wal_size: '4GB', checkpoint_timeout: '30min', maintenance_work_mem: '256MB'}}).start()
  const env = {PGPASSWORD: server.password}
  const url = (db) => `postgresql://postgres@127.0.0.1:${server.port}/${db}`
  const runCli = (args) => execFileSync(process.execPath, [BIN, ...args], {env: {...process.env, ...env}, stdio: 'ignore'})
  try {
    for (const db of ['src', 't_ours', 't_pgcopydb', 't_dump']) await server.query(`CREATE DATABASE ${db}`)
    console.error(`loading pgbench scale ${SCALE} and a wide table (${WIDE_ROWS} rows)…`)
    execFileSync(tool('pgbench'), ['-i', '-q', '-s', String(SCALE), '-h', '127.0.0.1', '-p', String(server.port), '-U', 'postgres', 'src'], {env: {...process.env, ...env}, stdio: 'ignore'})
    // pgbench_history has no key: give it one so it can replicate (and be split).
    await server.query(`ALTER TABLE pgbench_history ADD COLUMN id bigserial PRIMARY KEY`, [], 'src')
    const wideCols = Array.from({length: 30}, (_, i) => `c${i} ${i % 3 === 0 ? 'text' : i % 3 === 1 ? 'numeric' : 'timestamptz'}`).join(', ')
    const wideVals = Array.from({length: 30}, (_, i) => (i % 3 === 0 ? `md5((i + ${i})::text)` : i % 3 === 1 ? `(i * ${i + 1}) / 7.0` : `now() - (i || ' s')::interval`)).join(', ')
    await server.query(`CREATE TABLE wide (id bigint PRIMARY KEY, ${wideCols}); INSERT INTO wide SELECT i, ${wideVals} FROM generate_series(1, ${WIDE_ROWS}) i; CREATE INDEX ON wide (c1); CREATE INDEX ON wide (c2)`, [], 'src')
    await server.query('VACUUM ANALYZE', [], 'src')
    const size = (await server.query(`SELECT pg_size_pretty(pg_database_size('src')) s`)).rows[0].s
    runCli(['install', '-d', url('t_ours')])
    runCli(['node', 'register', 'tgt', '--host', '127.0.0.1', '--port', String(server.port), '-d', url('t_ours')])

    const times = {ours: [], pgcopydb: [], dump: []}
    let phases = null
    let counts = null
    const count = async (db) => (await server.query(`SELECT (SELECT count(*) FROM pgbench_accounts) + (SELECT count(*) FROM wide) AS n`, [], db)).rows[0].n
    const runs = {
      ours: async () => {
        const secs = await timed(process.execPath, [BIN, 'node', 'init', 'tgt', '--from', 'src', '-d', url('t_ours'), '--source', url('src'), '--direct', '--parallel', String(JOBS), '--split-larger-than', SPLIT, '--json'], env)
        phases = JSON.parse(lastStdout).result.phaseSeconds
        return secs
      },
      pgcopydb: () => timed('pgcopydb', ['clone', '--source', url('src'), '--target', url('t_pgcopydb'), '--table-jobs', String(JOBS), '--index-jobs', String(JOBS), '--split-tables-larger-than', SPLIT === '0' ? '0' : SPLIT, '--dir', path.join(work, 'pgcopydb'), '--no-owner', '--no-acl'], env),
      dump: async () => {
        const dumpDir = path.join(work, 'dump')
        rmSync(dumpDir, {recursive: true, force: true})
        const a = await timed(tool('pg_dump'), ['-Fd', '-Z', '0', '-j', String(JOBS), '-f', dumpDir, url('src')], env)
        return a + (await timed(tool('pg_restore'), ['-j', String(JOBS), '-d', url('t_dump'), dumpDir], env))
      },
    }
    const order = ['ours', 'pgcopydb', 'dump']
    for (let round = 0; round < ROUNDS; round++) {
      // Fresh targets each round; the order rotates so load drift does not favour one tool.
      if (round > 0) {
        await server.query(`ALTER SUBSCRIPTION steep_sub_tgt_from_src DISABLE; ALTER SUBSCRIPTION steep_sub_tgt_from_src SET (slot_name = NONE); DROP SUBSCRIPTION steep_sub_tgt_from_src`, [], 't_ours')
        await server.query(`SELECT pg_drop_replication_slot('steep_sub_tgt_from_src')`, [], 'src')
        await server.query(`DROP PUBLICATION steep_pub_src_to_tgt`, [], 'src')
        for (const db of ['t_ours', 't_pgcopydb', 't_dump']) {
          await server.query(`DROP DATABASE ${db} WITH (FORCE)`)
          await server.query(`CREATE DATABASE ${db}`)
        }
        rmSync(path.join(work, 'pgcopydb'), {recursive: true, force: true})
        runCli(['install', '-d', url('t_ours')])
        runCli(['node', 'register', 'tgt', '--host', '127.0.0.1', '--port', String(server.port), '-d', url('t_ours')])
      }
      for (let i = 0; i < order.length; i++) {
        const k = order[(i + round) % order.length]
        times[k].push(await runs[k]())
      }
    }
    counts = {src: await count('src'), ours: await count('t_ours'), pgcopydb: await count('t_pgcopydb'), dump: await count('t_dump')}
    await server.query(`ALTER SUBSCRIPTION steep_sub_tgt_from_src DISABLE; ALTER SUBSCRIPTION steep_sub_tgt_from_src SET (slot_name = NONE); DROP SUBSCRIPTION steep_sub_tgt_from_src`, [], 't_ours')
    await server.query(`SELECT pg_drop_replication_slot('steep_sub_tgt_from_src')`, [], 'src')
    const best = (a) => Math.min(...a)
    const ours = best(times.ours)
    const pgcopydb = best(times.pgcopydb)
    const dumpRestore = best(times.dump)

    console.log(`\nnode init benchmark — PostgreSQL 15 embedded, source ${size} (pgbench scale ${SCALE} + wide(${WIDE_ROWS})), jobs ${JOBS}, ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`)
    console.log(`row counts (accounts + wide): ${JSON.stringify(counts)}; best of ${ROUNDS} rounds, all times (s): ${JSON.stringify(times, (k, v) => (typeof v === 'number' ? Math.round(v * 10) / 10 : v))}`)
    const rows = [
      ['node init (clone + subscription, to synchronized)', ours, null],
      [`pgcopydb clone --table-jobs ${JOBS} --index-jobs ${JOBS}`, pgcopydb, ours],
      [`pg_dump -Fd -j${JOBS} + pg_restore -j${JOBS}`, dumpRestore, ours],
    ]
    console.log('measure'.padEnd(56) + 'seconds'.padStart(9) + 'node init ×'.padStart(13))
    for (const [what, secs, vs] of rows) console.log(what.padEnd(56) + secs.toFixed(1).padStart(9) + (vs ? (secs / vs).toFixed(2) : '').padStart(13))
    console.log(`node init phases (s): ${JSON.stringify(phases)}`)
    console.log('node init × = peer time / node init time (above 1: node init is faster).')
  } finally {
    await server.stop()
    rmSync(work, {recursive: true, force: true})
  }
}

await main()
