#!/usr/bin/env node
// snapshot generate / apply against pg_dump -Fd -j N / pg_restore -j N, and against raw parallel
// COPY TO STDOUT, on an embedded PostgreSQL 15 (so Debian's pg_dump 15 matches), same run, same
// machine. Prints a table of times, ratios and peak RSS. Asserts nothing. Every measured command
// starts after a CHECKPOINT and a sync(1), and each restored database is dropped as soon as it is
// measured, so neither tool pays for the other's checkpoint, write-back or autovacuum.
//
//   node bench/snapshot.mjs                 # pgbench scale 50 + a wide table, N = 2
//   SCALE=100 JOBS=4 ROUNDS=3 node bench/snapshot.mjs   # medians of 3 rounds, alternating order
//
// Needs: npm run build; Debian's postgresql-client-15 (pg_dump, pg_restore, pgbench).

import {execFileSync, spawn} from 'node:child_process'
import {cpus, totalmem} from 'node:os'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {EmbeddedServer} from '../dist/lib/embedded/server.js'

const SCALE = Number(process.env.SCALE ?? 50)
const JOBS = Number(process.env.JOBS ?? 2)
const WIDE_ROWS = Number(process.env.WIDE_ROWS ?? 300000)
const ROUNDS = Number(process.env.ROUNDS ?? 1)
const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const PGBIN = '/usr/lib/postgresql/15/bin'
const tool = (name) => path.join(PGBIN, name)
// NODE_EXTRA_CA_CERTS makes every Node.js 20 process read and parse the named CA bundle before it
// runs a line of its own (~90 ms on the 2-core machines with Debian's bundle: `node` reached its
// first line in 32-50 ms without it, 115-149 ms with it). It is the machine's set-up (the sandboxes
// set it for their npm proxy), not the tool's, and pg_dump does not pay it: the measured commands
// run without it unless KEEP_NODE_EXTRA_CA_CERTS=1. The header says which.
const CA_CERTS_KEPT = process.env.KEEP_NODE_EXTRA_CA_CERTS === '1'
const childEnv = {...process.env}
if (!CA_CERTS_KEPT) delete childEnv.NODE_EXTRA_CA_CERTS

function timeCmd(cmd, args, env = {}) {
  // /usr/bin/time gives the peak RSS of the process (and its waited-for children, for pg_dump -j).
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    const child = spawn('/usr/bin/time', ['-f', '%M', cmd, ...args], {env: {...childEnv, ...env}, stdio: ['ignore', 'ignore', 'pipe']})
    let err = ''
    child.stderr.on('data', (d) => (err += d))
    child.on('close', (code) => {
      const secs = Number(process.hrtime.bigint() - t0) / 1e9
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.slice(-2000)}`))
      const rssKb = Number(err.trim().split('\n').at(-1))
      resolve({secs, rssMb: rssKb / 1024})
    })
  })
}

async function rawCopy(port, db, tables, jobs, env, binary = false) {
  // N psql processes (libpq, C), each \copy of whole tables (largest first) into /dev/null: the
  // server's own COPY TO STDOUT throughput at this parallelism, with the thinnest client there is.
  // In text (COPY's default, what pg_dump reads) or in binary (what generate reads for tables of
  // built-in types).
  const t0 = process.hrtime.bigint()
  let next = 0
  const worker = async () => {
    while (next < tables.length) {
      const t = tables[next++]
      await new Promise((resolve, reject) => {
        const child = spawn(tool('psql'), ['-X', '-q', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', db, '-c', `\\copy ${t} TO '/dev/null'${binary ? ' WITH (FORMAT binary)' : ''}`], {env: {...childEnv, ...env}, stdio: ['ignore', 'ignore', 'pipe']})
        let err = ''
        child.stderr.on('data', (d) => (err += d))
        child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`psql \\copy ${t}: ${err}`))))
      })
    }
  }
  await Promise.all(Array.from({length: jobs}, worker))
  return {secs: Number(process.hrtime.bigint() - t0) / 1e9}
}

/**
 * The server's dirty buffers written (CHECKPOINT) and then the kernel's dirty pages on disk
 * (sync). The embedded server runs with fsync = off, so a CHECKPOINT only hands its pages to the
 * kernel, which writes them back up to 30 s later (vm.dirty_expire_centisecs), during whatever
 * runs then: the databases' load, or the gigabyte a restore or an apply just wrote.
 */
async function quiesce(server) {
  await server.query('CHECKPOINT')
  execFileSync('sync')
}

/** One round's times and peak RSS of ours and the peer. */
function record(m, ours, peer) {
  m.ours.push(ours.secs)
  m.peer.push(peer.secs)
  m.rss.push(ours.rssMb)
  m.peerRss.push(peer.rssMb)
}

/** The median of a list of numbers. */
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

async function main() {
  execFileSync(tool('pg_dump'), ['--version'])
  const work = mkdtempSync(path.join(tmpdir(), 'steep-bench-'))
  const server = await new EmbeddedServer({major: 15, settings: {max_wal_size: '4GB', checkpoint_timeout: '30min', maintenance_work_mem: '256MB'}}).start()
  const env = {PGPASSWORD: server.password}
  const url = (db) => `postgresql://postgres@127.0.0.1:${server.port}/${db}`
  const results = []
  try {
    for (const db of ['bench', 'onebig']) await server.query(`CREATE DATABASE ${db}`)
    console.error(`loading pgbench scale ${SCALE} and a wide table (${WIDE_ROWS} rows)…`)
    execFileSync(tool('pgbench'), ['-i', '-q', '-s', String(SCALE), '-h', '127.0.0.1', '-p', String(server.port), '-U', 'postgres', 'bench'], {env: {...childEnv, ...env}, stdio: 'ignore'})
    const wideCols = Array.from({length: 40}, (_, i) => `c${i} ${i % 3 === 0 ? 'text' : i % 3 === 1 ? 'numeric' : 'timestamptz'}`).join(', ')
    const wideVals = Array.from({length: 40}, (_, i) => (i % 3 === 0 ? `md5((i + ${i})::text)` : i % 3 === 1 ? `(i * ${i + 1}) / 7.0` : `now() - (i || ' s')::interval`)).join(', ')
    await server.query(`CREATE TABLE wide (id bigint PRIMARY KEY, ${wideCols}); INSERT INTO wide SELECT i, ${wideVals} FROM generate_series(1, ${WIDE_ROWS}) i`, [], 'bench')
    // One big table only (pgbench_accounts alone).
    execFileSync(tool('pgbench'), ['-i', '-q', '-I', 'dtgp', '-s', String(SCALE), '-h', '127.0.0.1', '-p', String(server.port), '-U', 'postgres', 'onebig'], {env: {...childEnv, ...env}, stdio: 'ignore'})
    await server.query(`DROP TABLE pgbench_branches, pgbench_tellers, pgbench_history`, [], 'onebig')
    await server.query('VACUUM ANALYZE', [], 'bench')
    await server.query('VACUUM ANALYZE', [], 'onebig')
    await server.query(`CREATE EXTENSION IF NOT EXISTS pg_prewarm`, [], 'bench').catch(() => {})

    for (const db of ['bench', 'onebig']) {
      await runCli(['install', '-d', url(db)], env)
      const size = (await server.query(`SELECT pg_size_pretty(pg_database_size(current_database())) s`, [], db)).rows[0].s
      const tables = (await server.query(`SELECT format('%I.%I', schemaname, relname) t FROM pg_stat_user_tables ORDER BY pg_relation_size(relid) DESC`, [], db)).rows.map((r) => r.t)
      // Each measure ROUNDS times, peer and ours alternating which goes first (load drift cancels
      // out); medians reported, every round printed.
      const raws = {}
      for (const fmt of ['text', 'binary']) {
        const rawTimes = []
        for (let r = 0; r < ROUNDS; r++) {
          await quiesce(server)
          rawTimes.push((await rawCopy(server.port, db, tables, JOBS, env, fmt === 'binary')).secs)
        }
        raws[fmt] = median(rawTimes)
        results.push({db, size, what: `raw COPY TO STDOUT ${fmt} -j${JOBS}`, secs: raws[fmt], peer: null, rounds: rawTimes.map((x) => x.toFixed(1))})
      }
      for (const [label, ourArgs, dumpArgs] of [
        ['none', ['--compression', 'none'], ['-Z', '0']],
        ['gzip 1', ['--compression', 'gzip', '--level', '1'], ['-Z', '1']],
      ]) {
        const gen = {ours: [], peer: [], rss: [], peerRss: []}
        const app = {ours: [], peer: [], rss: [], peerRss: []}
        for (let r = 0; r < ROUNDS; r++) {
          const out = path.join(work, `${db}-${label.replace(' ', '')}`)
          const dumpDir = path.join(work, `${db}-dump-${label.replace(' ', '')}`)
          rmSync(out, {recursive: true, force: true})
          rmSync(dumpDir, {recursive: true, force: true})
          // Each measured command starts from the same state: the WAL and dirty pages of the one
          // before written out (quiesce), and a restored database dropped as soon as it is measured
          // (else autovacuum works on the peer's fresh tables during ours, or the other way round).
          const settled = (f) => quiesce(server).then(f)
          const restoredInto = async (t, f) => {
            await server.query(`DROP DATABASE IF EXISTS ${t}`)
            await server.query(`CREATE DATABASE ${t}`)
            const res = await settled(f)
            await server.query(`DROP DATABASE ${t}`)
            return res
          }
          const runDump = () => settled(() => timeCmd(tool('pg_dump'), ['-Fd', '-j', String(JOBS), ...dumpArgs, '-f', dumpDir, '-h', '127.0.0.1', '-p', String(server.port), '-U', 'postgres', db], env))
          const runOurs = () => settled(() => timeCmd(process.execPath, [BIN, 'snapshot', 'generate', '--direct', '-d', url(db), '--output', out, '--parallel', String(JOBS), '--no-slot', '--split-larger-than', '64MB', ...ourArgs], env))
          const [dump, ours] = r % 2 === 0 ? [await runDump(), await runOurs()] : await runOurs().then(async (o) => [await runDump(), o])
          record(gen, ours, dump)
          // Restore both into fresh databases.
          const runRestore = () => restoredInto('r_dump', () => timeCmd(tool('pg_restore'), ['-j', String(JOBS), '-d', `postgresql://postgres@127.0.0.1:${server.port}/r_dump`, dumpDir], env))
          const runApply = () => restoredInto('r_ours', () => timeCmd(process.execPath, [BIN, 'snapshot', 'apply', '--direct', '-d', url('r_ours'), '--input', out, '--parallel', String(JOBS)], env))
          const [restore, apply] = r % 2 === 0 ? [await runRestore(), await runApply()] : await runApply().then(async (a) => [await runRestore(), a])
          record(app, apply, restore)
          rmSync(out, {recursive: true, force: true})
          rmSync(dumpDir, {recursive: true, force: true})
        }
        const row = (what, m) => ({db, size, what, secs: median(m.ours), peer: median(m.peer), rss: Math.max(...m.rss), peerRss: Math.max(...m.peerRss), rounds: m.ours.map((o, i) => `${o.toFixed(1)}/${m.peer[i].toFixed(1)}`)})
        results.push(row(`generate ${label} vs pg_dump -Fd -j${JOBS}`, gen))
        if (label === 'none') for (const fmt of ['text', 'binary']) results.push({db, size, what: `generate none vs raw COPY ${fmt}`, secs: median(gen.ours), peer: raws[fmt]})
        results.push(row(`apply ${label} vs pg_restore -j${JOBS}`, app))
      }
    }
  } finally {
    await server.stop()
    rmSync(work, {recursive: true, force: true})
  }
  console.log(`\nsnapshot benchmark — PostgreSQL 15 embedded, pgbench scale ${SCALE} + wide(${WIDE_ROWS}), jobs ${JOBS}, ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}${process.env.NODE_EXTRA_CA_CERTS ? `, NODE_EXTRA_CA_CERTS ${CA_CERTS_KEPT ? 'kept' : 'unset for the measured commands'}` : ''}`)
  console.log('db'.padEnd(8) + 'size'.padEnd(9) + 'measure'.padEnd(40) + 'ours s'.padStart(8) + 'peer s'.padStart(8) + 'speed ×'.padStart(9) + 'RSS MB'.padStart(8) + 'peer RSS'.padStart(9))
  for (const r of results) {
    const ratio = r.peer ? (r.peer / r.secs).toFixed(2) : ''
    console.log(r.db.padEnd(8) + r.size.padEnd(9) + r.what.padEnd(40) + r.secs.toFixed(1).padStart(8) + (r.peer ? r.peer.toFixed(1) : '').padStart(8) + ratio.padStart(9) + (r.rss ? r.rss.toFixed(0) : '').padStart(8) + (r.peerRss ? r.peerRss.toFixed(0) : '').padStart(9) + (r.rounds ? '   rounds (ours/peer): ' + r.rounds.join(' ') : ''))
  }
  console.log(`speed × = peer time / our time (above 1: we are faster), medians of ${ROUNDS} round(s). "generate none vs raw COPY": raw time / ours (target ≥ 0.9); raw = N psql \\copy … TO '/dev/null' [WITH (FORMAT binary)].`)
}

function runCli(args, env) {
  execFileSync(process.execPath, [BIN, ...args], {env: {...childEnv, ...env}, stdio: 'ignore'})
}

await main()
