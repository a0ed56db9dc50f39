import {mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import type pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {type DdlStatement, postDataWaves, renderDdl, type SchemaDdl} from '../../src/lib/schema/ddl.js'
import {applyStatements, extractSchemaDdl} from '../../src/lib/schema/extract.js'
import {compareNodes} from '../../src/lib/schema/compare-io.js'
import {listSequences, listUserTables, primaryKeyColumns, setSequenceQuery} from '../../src/lib/schema/objects.js'
import {runCli} from '../helpers/cli.js'
import {adminClient, dropDatabase, freshDatabase, sql} from '../helpers/pg.js'
import {NASTY, RICH_SCHEMA_SQL} from './schema-fixture.js'

async function extract(url: string, opts: Parameters<typeof extractSchemaDdl>[1] = {}): Promise<SchemaDdl> {
  const c = await adminClient(url)
  try {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ')
    const ddl = await extractSchemaDdl(c, opts)
    await c.query('COMMIT')
    return ddl
  } finally {
    await c.end()
  }
}

/** Pre-data in order; post-data wave 1 (index builds) split over two connections at once; the rest in order. */
async function applyInParallel(url: string, ddl: SchemaDdl): Promise<void> {
  const [c1, c2] = [await adminClient(url), await adminClient(url)]
  try {
    await applyStatements(c1, ddl, ddl.preData)
    const [indexes, ...rest] = postDataWaves(ddl)
    const halves: DdlStatement[][] = [[], []]
    indexes!.forEach((s, i) => halves[i % 2]!.push(s))
    await Promise.all([applyStatements(c1, ddl, halves[0]!), applyStatements(c2, ddl, halves[1]!)])
    for (const wave of rest) await applyStatements(c1, ddl, wave)
  } finally {
    await c1.end()
    await c2.end()
  }
}

describe('schema dump', () => {
  let src: string
  let dst: string
  let ddl: SchemaDdl
  beforeAll(async () => {
    src = await freshDatabase('dump_src')
    dst = await freshDatabase('dump_dst')
    await sql(src, RICH_SCHEMA_SQL)
    ddl = await extract(src, {lockTables: true})
  })
  afterAll(async () => {
    await dropDatabase(src)
    await dropDatabase(dst)
  })

  it('round-trips every object kind: applied to an empty database, it dumps back identically', async () => {
    const kinds = new Set([...ddl.preData, ...ddl.postData].map((s) => s.kind))
    for (const k of [
      'schema',
      'extension',
      'type',
      'domain',
      'function',
      'procedure',
      'sequence',
      'sequence owned by',
      'table',
      'attach partition',
      'view',
      'materialized view',
      'index',
      'constraint',
      'attach index',
      'replica identity',
      'cluster',
      'check constraint',
      'foreign key',
      'trigger',
      'rule',
      'policy',
      'statistics',
      'refresh materialized view',
    ])
      expect(kinds, k).toContain(k)
    await applyInParallel(dst, ddl)
    const back = await extract(dst)
    expect(renderDdl(back, {header: false})).toBe(renderDdl(ddl, {header: false}))
  })

  it('the copy compares as identical to the source (schema compare agrees with schema dump)', async () => {
    const [a, b] = [await adminClient(src), await adminClient(dst)]
    try {
      const r = await compareNodes(a, b)
      expect(r.tables.length).toBeGreaterThan(20)
      expect(r.tables.filter((t) => t.status !== 'MATCH' || t.differences.length)).toEqual([])
      expect(r.identical).toBe(true)
    } finally {
      await a.end()
      await b.end()
    }
  })

  it('keeps nasty identifiers intact', async () => {
    const rows = await sql(
      dst,
      `SELECT n.nspname, c.relname, a.attname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 WHERE c.relname = $1 ORDER BY a.attnum`,
      [NASTY.table],
    )
    expect(rows.map((r) => r.attname)).toEqual([NASTY.reserved, NASTY.unicode, NASTY.newline, 'MixedCase', 'quote"d'])
    expect(rows[0].nspname).toBe(NASTY.schema)
    const [{n}] = await sql(dst, `SELECT count(*)::int AS n FROM pg_views WHERE viewname = 'View.With.Dots'`)
    expect(n).toBe(1)
  })

  it('splits pre-data and post-data: no index, key or trigger before the data', () => {
    const pre = ddl.preData.map((s) => s.sql).join('\n')
    expect(pre).not.toMatch(/CREATE (UNIQUE )?INDEX|PRIMARY KEY|FOREIGN KEY|CREATE TRIGGER/)
    expect(ddl.postData.filter((s) => s.kind === 'index').every((s) => s.wave === 1)).toBe(true)
    const pk = ddl.postData.find((s) => s.kind === 'constraint' && s.name === 'customers_pkey')!
    expect(pk.sql).toBe('ALTER TABLE ONLY "app"."customers" ADD CONSTRAINT "customers_pkey" PRIMARY KEY USING INDEX "customers_pkey";')
    const uniq = ddl.postData.find((s) => s.name === 'customers_email_key' && s.kind === 'constraint')!
    expect(uniq.sql).toContain('UNIQUE USING INDEX "customers_email_key" DEFERRABLE INITIALLY DEFERRED;')
    // every dependency of a statement comes earlier in the list
    const seen = new Set<string>()
    for (const s of [...ddl.preData, ...ddl.postData]) {
      for (const d of s.dependsOn) if ([...ddl.preData, ...ddl.postData].some((x) => x.id === d)) expect(seen.has(d), `${s.id} needs ${d}`).toBe(true)
      seen.add(s.id)
    }
  })

  it('needs a client inside a transaction, and leaves its search_path as it was', async () => {
    const c = await adminClient(src)
    try {
      await expect(extractSchemaDdl(c)).rejects.toThrow(/inside a transaction/)
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ')
      await c.query(`SET LOCAL search_path = app, public`)
      await extractSchemaDdl(c, {schemas: ['app']})
      const {rows} = await c.query(`SELECT current_setting('search_path') AS sp`)
      expect(rows[0].sp).toBe('app, public')
      await c.query('COMMIT')
    } finally {
      await c.end()
    }
  })

  it('reads inside an imported snapshot: objects created after the export are not in the DDL', async () => {
    const exporter = await adminClient(src)
    const reader = await adminClient(src)
    try {
      await exporter.query('BEGIN ISOLATION LEVEL REPEATABLE READ')
      const {rows} = await exporter.query(`SELECT pg_export_snapshot() AS s`)
      await sql(src, `CREATE TABLE app.created_after_export (id int)`)
      await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ')
      await reader.query(`SET TRANSACTION SNAPSHOT '${rows[0].s}'`)
      const inSnap = await extractSchemaDdl(reader, {schemas: ['app']})
      const tables = await listUserTables(reader, {schemas: ['app']})
      await reader.query('COMMIT')
      expect(inSnap.preData.some((s) => s.name === 'created_after_export')).toBe(false)
      expect(tables.some((t) => t.name === 'created_after_export')).toBe(false)
      const now = await extract(src, {schemas: ['app']})
      expect(now.preData.some((s) => s.name === 'created_after_export')).toBe(true)
    } finally {
      await exporter.query('ROLLBACK').catch(() => {})
      await exporter.end()
      await reader.end()
      await sql(src, `DROP TABLE IF EXISTS app.created_after_export`)
    }
  })

  it('lists tables with kind, parent, primary key, replica identity and COPY columns', async () => {
    const c: pg.Client = await adminClient(src)
    try {
      const tables = await listUserTables(c)
      const by = (n: string) => tables.find((t) => t.name === n)!
      expect(by('events')).toMatchObject({kind: 'partitioned', primaryKey: ['id', 'happened'], parent: null, sizeBytes: 0})
      expect(by('events_2024_02_h0')).toMatchObject({kind: 'partition', parent: {schema: 'app', name: 'events_2024_02'}})
      expect(by('customers')).toMatchObject({kind: 'ordinary', primaryKey: ['id'], replicaIdentity: 'default'})
      expect(by('customers').columns).toContain('lower_name')
      expect(by('customers').copyColumns).not.toContain('lower_name')
      expect(by('serials')).toMatchObject({replicaIdentity: 'index', replicaIdentityColumns: ['note']})
      expect(by('scratch')).toMatchObject({unlogged: true, primaryKey: null, replicaIdentity: 'nothing'})
      expect(by(NASTY.table)).toMatchObject({schema: NASTY.schema, primaryKey: [NASTY.reserved]})
      expect(tables.some((t) => t.schema === 'steep_repl')).toBe(false)
      expect(await primaryKeyColumns(c, 'app', 'invoices')).toEqual(['no'])
      expect(await primaryKeyColumns(c, 'app', 'base_log')).toBeNull()
    } finally {
      await c.end()
    }
  })

  it('lists sequences with last_value and is_called, and restores them exactly', async () => {
    await sql(src, `SELECT nextval('app.invoice_no'), nextval('app.invoice_no'); SELECT setval('app.countdown', -5, false)`)
    const c = await adminClient(src)
    const seqs = await listSequences(c).finally(() => c.end())
    const by = (n: string) => seqs.find((s) => s.name === n)!
    // CACHE 5: the session pre-allocated 1000..1028; the sequence on disk says 1028, which is what a copy must continue after
    expect(by('invoice_no')).toMatchObject({lastValue: '1028', isCalled: true, dataType: 'integer', identity: false, ownedBy: {schema: 'app', table: 'invoices', column: 'no'}})
    expect(by('countdown')).toMatchObject({lastValue: '-5', isCalled: false, ownedBy: null})
    expect(by('customers_id_seq')).toMatchObject({identity: true, isCalled: false, ownedBy: {table: 'customers', column: 'id'}})
    const d = await adminClient(dst)
    try {
      for (const s of seqs) await d.query(setSequenceQuery(s))
      const {rows} = await d.query(`SELECT nextval('app.invoice_no')::text AS a, nextval('app.countdown')::text AS b`)
      expect(rows[0]).toEqual({a: '1035', b: '-5'})
    } finally {
      await d.end()
    }
  })

  it('CLI: prints one section, filters schemas, leaves owners out, and --json gives the statements', async () => {
    const pre = await runCli(['schema', 'dump', '-d', src, '--section', 'pre-data', '--schema', 'app', '--no-owner'])
    expect(pre.code).toBe(0)
    expect(pre.stdout).toContain('CREATE TABLE "app"."customers"')
    expect(pre.stdout).not.toMatch(/CREATE INDEX|OWNER TO|Weird/)
    const file = join(mkdtempSync(join(tmpdir(), 'steep-dump-')), 'schema.sql')
    const f = await runCli(['schema', 'dump', '-d', src, '--file', file])
    expect(f.code).toBe(0)
    expect(f.stdout).toBe('')
    expect(f.stderr).toMatch(/wrote \d+ pre-data and \d+ post-data statements/)
    expect(readFileSync(file, 'utf8')).toContain('ALTER TABLE ONLY "app"."customers" ADD CONSTRAINT "customers_pkey" PRIMARY KEY USING INDEX')
    const j = await runCli(['schema', 'dump', '-d', src, '--section', 'post-data', '--json'])
    expect(j.code).toBe(0)
    const doc = j.json()
    expect(doc.preData).toEqual([])
    expect(doc.sql.preData).toBe('')
    expect(doc.sql.postData).toMatch(/^SET statement_timeout = 0;[\s\S]*CREATE INDEX customers_tags_idx ON app\.customers USING gin \(tags\);/)
    expect(doc.sections).toEqual(['post-data'])
    expect(doc.postData.find((s: DdlStatement) => s.name === 'customers_tags_idx')).toMatchObject({kind: 'index', wave: 1, table: {schema: 'app', name: 'customers'}})
  })

  it('CLI: warns about objects it does not dump', async () => {
    const db = await freshDatabase('dump_skip')
    try {
      await sql(db, `CREATE COLLATION public.my_coll (provider = icu, locale = 'und'); CREATE TABLE t (a int)`)
      const r = await runCli(['schema', 'dump', '-d', db])
      expect(r.code).toBe(0)
      expect(r.stderr).toMatch(/warning: not dumped: collation public\.my_coll/)
      expect(r.stdout).toMatch(/-- WARNING: not dumped: collation public\.my_coll/)
    } finally {
      await dropDatabase(db)
    }
  })
})
