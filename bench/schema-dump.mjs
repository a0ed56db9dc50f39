#!/usr/bin/env node
// schema dump against pg_dump --schema-only on the same database, on an embedded PostgreSQL 15
// (the major Debian's pg_dump 15 can read). The database holds TABLES tables (PK, two indexes, a
// foreign key to the previous table, a CHECK, a comment, a grant), a view per 10 tables and a
// function per 10 tables. Prints median wall times over RUNS runs and the ratio; asserts nothing.
// Needs `npm run build` first (it imports dist/).
//
//   TABLES=500 RUNS=5 node bench/schema-dump.mjs

import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {cpus} from 'node:os'
import {fileURLToPath} from 'node:url'
import pg from 'pg'
import {EmbeddedServer} from '../dist/lib/embedded/server.js'
import {extractSchemaDdl} from '../dist/lib/schema/extract.js'
import {renderDdl} from '../dist/lib/schema/ddl.js'

const TABLES = Number(process.env.TABLES ?? 500)
const RUNS = Number(process.env.RUNS ?? 5)
const PG_DUMP = ['/usr/lib/postgresql/15/bin/pg_dump', '/usr/bin/pg_dump'].find((p) => existsSync(p))
const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url))

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const time = async (fn) => {
  const t = process.hrtime.bigint()
  await fn()
  return Number(process.hrtime.bigint() - t) / 1e6
}

const server = await new EmbeddedServer({major: 15}).start()
try {
  await server.query('CREATE DATABASE bench')
  const url = server.url('bench')
  const c = new pg.Client({connectionString: url})
  await c.connect()
  await c.query(`DO $$ BEGIN CREATE ROLE bench_reader NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`)
  const parts = []
  for (let i = 0; i < TABLES; i++) {
    parts.push(`CREATE TABLE public.t${i} (id bigserial PRIMARY KEY, ref bigint${i ? ` REFERENCES public.t${i - 1} (id)` : ''}, name text NOT NULL CHECK (name <> ''), v numeric(12,2) DEFAULT 0, at timestamptz DEFAULT now());
CREATE INDEX t${i}_name ON public.t${i} (name); CREATE INDEX t${i}_at ON public.t${i} (at) WHERE v > 0;
COMMENT ON TABLE public.t${i} IS 'table ${i}'; GRANT SELECT ON public.t${i} TO bench_reader;`)
    if (i % 10 === 9) {
      parts.push(`CREATE VIEW public.v${i} AS SELECT id, name FROM public.t${i} WHERE v > 1;
CREATE FUNCTION public.f${i}(x bigint) RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) FROM public.t${i} WHERE id > x';`)
    }
  }
  await c.query(parts.join('\n'))
  const lib = []
  for (let r = 0; r < RUNS; r++) {
    lib.push(
      await time(async () => {
        await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
        const ddl = await extractSchemaDdl(c, {lockTables: true})
        renderDdl(ddl)
        await c.query('COMMIT')
      }),
    )
  }
  await c.end()
  const cli = []
  for (let r = 0; r < RUNS; r++) {
    cli.push(
      await time(async () => {
        const res = spawnSync(process.execPath, [bin, 'schema', 'dump', '-d', url], {stdio: ['ignore', 'ignore', 'inherit'], env: {...process.env, CI: '1'}})
        if (res.status !== 0) throw new Error(`schema dump exited ${res.status}`)
      }),
    )
  }
  const pgd = []
  if (PG_DUMP) {
    for (let r = 0; r < RUNS; r++) pgd.push(await time(async () => execFileSync(PG_DUMP, ['--schema-only', '--dbname', url], {stdio: ['ignore', 'ignore', 'inherit'], maxBuffer: 1 << 28})))
  }
  const objects = TABLES * 4 + Math.floor(TABLES / 10) * 2
  console.log(`schema dump vs pg_dump --schema-only, PostgreSQL 15 (embedded), ${TABLES} tables (~${objects} tables/indexes/views/functions), ${RUNS} runs, node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}`)
  console.log('what'.padEnd(44) + 'median ms'.padStart(10))
  console.log('extractSchemaDdl + renderDdl (in process)'.padEnd(44) + median(lib).toFixed(0).padStart(10))
  console.log('steep-repl schema dump (CLI, incl. startup)'.padEnd(44) + median(cli).toFixed(0).padStart(10))
  if (pgd.length) {
    console.log('pg_dump 15 --schema-only'.padEnd(44) + median(pgd).toFixed(0).padStart(10))
    console.log(`ratio CLI / pg_dump: ${(median(cli) / median(pgd)).toFixed(2)}; in-process / pg_dump: ${(median(lib) / median(pgd)).toFixed(2)}`)
  } else console.log('pg_dump 15 not installed: no peer figure')
} finally {
  await server.stop()
}
