// The pg_dump 15 fidelity oracle, and fingerprints across majors. Starts its own PostgreSQL 15 (the
// oracle needs a server pg_dump 15 can dump, whatever PG_MAJOR is) and compares with a second major:
// the shared server, or PostgreSQL 18 when the shared one is 15.

import {execFile} from 'node:child_process'
import {existsSync} from 'node:fs'
import {promisify} from 'node:util'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {install} from '../../src/lib/install/migrations.js'
import {extractSchemaDdl, applyDdl} from '../../src/lib/schema/extract.js'
import {computeFingerprints} from '../../src/lib/schema/fingerprint-io.js'
import {adminClient, dropDatabase, freshDatabase, shared, sql, startTestServer} from '../helpers/pg.js'
import type {ServerHandle} from '../helpers/servers.js'
import {RICH_SCHEMA_SQL} from './schema-fixture.js'

const PG_DUMP_15 = ['/usr/lib/postgresql/15/bin/pg_dump', '/usr/bin/pg_dump'].find((p) => existsSync(p))

/**
 * The only normalisation of pg_dump output: pg_dump 15.14+ wraps the script in `\restrict KEY` /
 * `\unrestrict KEY` with a random KEY per run (CVE-2025-8714); those two lines are dropped.
 */
function normalisePgDump(text: string): string {
  return text.replace(/^\\(un)?restrict \S+$/gm, '')
}

async function pgDump15(url: string): Promise<string> {
  const {stdout} = await promisify(execFile)(PG_DUMP_15!, ['--schema-only', '--dbname', url], {maxBuffer: 64 * 1024 * 1024, env: {...process.env, PGCONNECT_TIMEOUT: '10'}})
  return normalisePgDump(stdout)
}

async function isPgDump15(): Promise<boolean> {
  if (!PG_DUMP_15) return false
  const {stdout} = await promisify(execFile)(PG_DUMP_15, ['--version'])
  return /\(PostgreSQL\) 15\./.test(stdout)
}

const HAVE_PG_DUMP_15 = await isPgDump15()

describe('schema across majors', () => {
  let pg15: ServerHandle
  let other: ServerHandle | undefined
  let otherUrl: string
  let otherMajor: number
  const dbs: string[] = []
  beforeAll(async () => {
    pg15 = await startTestServer({major: 15})
    if (shared().major === 15) {
      other = await startTestServer({major: 18})
      otherUrl = other.url()
      otherMajor = 18
    } else {
      otherUrl = shared().url
      otherMajor = shared().major
    }
  })
  afterAll(async () => {
    for (const d of dbs) await dropDatabase(d).catch(() => {})
    await other?.stop()
    await pg15?.stop()
  })

  const fresh = async (prefix: string, server: string) => {
    const d = await freshDatabase(prefix, server)
    dbs.push(d)
    return d
  }

  it.runIf(HAVE_PG_DUMP_15)('pg_dump 15 --schema-only of the source and of the target built from schema dump are identical', async () => {
    const src = await fresh('oracle_src', pg15.url())
    const dst = await fresh('oracle_dst', pg15.url())
    await sql(src, RICH_SCHEMA_SQL)
    const c = await adminClient(src)
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ')
    const ddl = await extractSchemaDdl(c, {lockTables: true})
    await c.query('COMMIT')
    await c.end()
    expect(ddl.serverVersionNum).toBeGreaterThanOrEqual(150000)
    expect(ddl.serverVersionNum).toBeLessThan(160000)
    const d = await adminClient(dst)
    await applyDdl(d, ddl).finally(() => d.end())
    const [a, b] = [await pgDump15(src), await pgDump15(dst)]
    // the oracle is not vacuous: the source dump has every object kind of the fixture
    for (const needle of [
      'CREATE EXTENSION IF NOT EXISTS citext',
      'CREATE TYPE app.mood AS ENUM',
      'CREATE TYPE app.floatrange AS RANGE',
      'CREATE DOMAIN app.posint',
      'CREATE SEQUENCE app.invoice_no',
      'CREATE UNLOGGED TABLE app.scratch',
      'PARTITION BY RANGE (happened)',
      'ATTACH PARTITION app.events_2024_02_h0',
      'GENERATED ALWAYS AS IDENTITY',
      'GENERATED ALWAYS AS (lower((name)::text)) STORED',
      'CREATE VIEW app.happy_customers',
      'CREATE MATERIALIZED VIEW app.mood_counts',
      'CREATE FUNCTION app.customer_count()',
      'CREATE PROCEDURE app.noop',
      'EXCLUDE USING gist',
      'FOREIGN KEY (customer_id) REFERENCES app.customers(id) ON DELETE CASCADE DEFERRABLE',
      'CREATE TRIGGER customers_touch',
      'CREATE POLICY documents_owner',
      'CREATE RULE documents_protect',
      'CREATE STATISTICS app.customers_stats',
      'REPLICA IDENTITY FULL',
      'OWNED BY app.invoices.no',
      'COMMENT ON COLUMN "Weird ""Schema"".x"."Order Items"."line',
    ])
      expect(a, needle).toContain(needle)
    expect(b).toBe(a)
    // and it does catch a difference
    await sql(dst, `COMMENT ON TABLE app.customers IS 'changed'`)
    expect(await pgDump15(dst)).not.toBe(a)
  })

  it(`fingerprints are equal on PostgreSQL 15 and the other major for the same DDL, in TypeScript and in SQL`, async () => {
    const a = await fresh('fp15', pg15.url())
    const b = await fresh(`fp${otherMajor}`, otherUrl)
    await sql(a, RICH_SCHEMA_SQL)
    await sql(b, RICH_SCHEMA_SQL)
    const [ca, cb] = [await adminClient(a), await adminClient(b)]
    try {
      const [fa, fb] = [await computeFingerprints(ca), await computeFingerprints(cb)]
      expect(fa.length).toBeGreaterThan(15)
      expect(fb.map((t) => [t.schema, t.table, t.fingerprint, t.input])).toEqual(fa.map((t) => [t.schema, t.table, t.fingerprint, t.input]))
      for (const c of [ca, cb]) {
        await install(c)
        const {rows} = await c.query(`SELECT steep_repl.compute_fingerprint($1, $2) AS f, steep_repl.fingerprint_input($1, $2) AS i`, [fa[0]!.schema, fa[0]!.table])
        expect(rows[0]).toEqual({f: fa[0]!.fingerprint, i: fa[0]!.input})
        const all = await c.query(
          `SELECT n.nspname AS schema, c.relname AS table, steep_repl.compute_fingerprint(n.nspname, c.relname) AS f
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'steep_repl') AND n.nspname !~ '^pg_'`,
        )
        const sqlMap = Object.fromEntries(all.rows.map((r) => [`${r.schema}.${r.table}`, r.f]))
        for (const t of fa) expect(sqlMap[`${t.schema}.${t.table}`], `${t.schema}.${t.table}`).toBe(t.fingerprint)
        expect(Object.keys(sqlMap)).toHaveLength(fa.length)
      }
      const none = await ca.query(`SELECT steep_repl.compute_fingerprint('app', 'no_such_table') AS f`)
      expect(none.rows[0].f).toBeNull()
    } finally {
      await ca.end()
      await cb.end()
    }
  })
})
