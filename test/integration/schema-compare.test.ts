import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {compareNodes, diffTable} from '../../src/lib/schema/compare-io.js'
import {runCli} from '../helpers/cli.js'
import {adminClient, dropDatabase, freshDatabase, sql} from '../helpers/pg.js'

const COMMON = `
CREATE SCHEMA same;
CREATE TABLE same.t (id integer PRIMARY KEY, v text DEFAULT 'x');
CREATE TABLE public.t_match (id integer PRIMARY KEY, v varchar(20) COLLATE "C");
CREATE TABLE public.nopk (x integer);
`
const A_SQL = `${COMMON}
CREATE TABLE public.t_default (id integer PRIMARY KEY, v text DEFAULT 'a');
CREATE TABLE public.t_type (id integer PRIMARY KEY, v numeric(10,2));
CREATE TABLE public.t_null (id integer PRIMARY KEY, v text);
CREATE TABLE public.t_missing (id integer PRIMARY KEY, v text, extra integer);
CREATE TABLE public.t_order (id integer PRIMARY KEY, a text, b text);
CREATE TABLE public.only_a (id integer PRIMARY KEY);
CREATE TABLE "Mixed Case"."Tab le" (id integer PRIMARY KEY);
`.replace('CREATE TABLE "Mixed Case"', 'CREATE SCHEMA "Mixed Case"; CREATE TABLE "Mixed Case"')
const B_SQL = `${COMMON}
CREATE TABLE public.t_default (id integer PRIMARY KEY, v text DEFAULT 'b');
CREATE TABLE public.t_type (id integer PRIMARY KEY, v numeric(12,2));
CREATE TABLE public.t_null (id integer PRIMARY KEY, v text NOT NULL);
CREATE TABLE public.t_missing (id integer PRIMARY KEY, v text);
CREATE TABLE public.t_order (id integer PRIMARY KEY, b text, a text);
CREATE TABLE public.only_b (id integer PRIMARY KEY);
ALTER TABLE same.t ALTER COLUMN v SET DEFAULT 'y';
CREATE SCHEMA "Mixed Case"; CREATE TABLE "Mixed Case"."Tab le" (id integer PRIMARY KEY);
`

describe('schema compare and diff', () => {
  let a: string
  let b: string
  beforeAll(async () => {
    a = await freshDatabase('cmp_a')
    b = await freshDatabase('cmp_b')
    await sql(a, A_SQL)
    await sql(b, B_SQL)
  })
  afterAll(async () => {
    await dropDatabase(a)
    await dropDatabase(b)
  })

  it('classifies every table and column difference with the blocking rules', async () => {
    const [ca, cb] = [await adminClient(a), await adminClient(b)]
    try {
      const r = await compareNodes(ca, cb)
      const status = Object.fromEntries(r.tables.map((t) => [t.key, [t.status, t.blocking]]))
      expect(r.tables.map((t) => t.key)).toEqual([
        'Mixed Case.Tab le',
        'public.nopk',
        'public.only_a',
        'public.only_b',
        'public.t_default',
        'public.t_match',
        'public.t_missing',
        'public.t_null',
        'public.t_order',
        'public.t_type',
        'same.t',
      ])
      expect(status).toMatchObject({
        'public.t_match': ['MATCH', false],
        'public.t_default': ['MATCH', false],
        'public.t_type': ['MISMATCH', true],
        'public.t_null': ['MISMATCH', true],
        'public.t_missing': ['MISMATCH', true],
        'public.t_order': ['MISMATCH', false],
        'public.only_a': ['LOCAL_ONLY', true],
        'public.only_b': ['REMOTE_ONLY', true],
      })
      const diff = (k: string) => r.tables.find((t) => t.key === k)!.differences.map((d) => [d.column, d.kind, d.blocking])
      expect(diff('public.t_type')).toEqual([['v', 'type', true]])
      expect(r.tables.find((t) => t.key === 'public.t_type')!.differences[0]).toMatchObject({a: 'numeric(10,2)', b: 'numeric(12,2)'})
      expect(diff('public.t_null')).toEqual([['v', 'nullable', true]])
      expect(diff('public.t_missing')).toEqual([['extra', 'missing_on_b', true]])
      expect(diff('public.t_default')).toEqual([['v', 'default', false]])
      expect(r.summary).toEqual({match: 5, mismatch: 4, localOnly: 1, remoteOnly: 1})
      expect(r.readiness.filter((i) => i.blocking).map((i) => [i.kind, i.object, i.node])).toEqual([['no_replica_identity', 'public.nopk', 'both']])
      expect(r.blocking).toBe(true)
    } finally {
      await ca.end()
      await cb.end()
    }
  })

  it('compare CLI: exit 3 and the full report with --json when something blocks', async () => {
    const r = await runCli(['schema', 'compare', '--node-a', a, '--node-b', b, '--json'])
    expect(r.code).toBe(3)
    const doc = r.json()
    expect(doc.blocking).toBe(true)
    expect(doc.summary).toEqual({match: 5, mismatch: 4, localOnly: 1, remoteOnly: 1})
    expect(doc.nodeA).not.toMatch(/password|:[^@/]*@/)
    expect(doc.tables.find((t: {key: string}) => t.key === 'public.t_type').differences[0].kind).toBe('type')
  })

  it('compare CLI: exit 0 with only non-blocking differences, human output on stdout', async () => {
    const r = await runCli(['schema', 'compare', '--node-a', a, '--node-b', b, '--schema', 'same'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/✓ MATCH \(1 table\)/)
    expect(r.stdout).toMatch(/same\.t\n\s+· v: default 'x'::text vs 'y'::text/)
    expect(r.stdout).toMatch(/Compatible for replication/)
  })

  it('compare: --publication makes a table missing from it blocking', async () => {
    await sql(a, `CREATE TABLE same.u (id integer PRIMARY KEY); CREATE PUBLICATION cmp_pub FOR TABLE same.t`)
    await sql(b, `CREATE TABLE same.u (id integer PRIMARY KEY)`)
    try {
      const r = await runCli(['schema', 'compare', '--node-a', a, '--node-b', b, '--schema', 'same', '--publication', 'cmp_pub', '--json'])
      expect(r.code).toBe(3)
      const issues = r.json().readiness.filter((i: {blocking: boolean}) => i.blocking)
      expect(issues).toMatchObject([{kind: 'not_in_publication', object: 'same.u', node: 'a'}])
      await sql(a, `ALTER PUBLICATION cmp_pub ADD TABLE same.u`)
      const ok = await runCli(['schema', 'compare', '--node-a', a, '--node-b', b, '--schema', 'same', '--publication', 'cmp_pub'])
      expect(ok.code).toBe(0)
      expect(ok.stdout).toMatch(/publication cmp_pub does not exist on node B/)
    } finally {
      await sql(a, `DROP PUBLICATION IF EXISTS cmp_pub; DROP TABLE same.u`)
      await sql(b, `DROP TABLE same.u`)
    }
  })

  it('diff: one table, same rules and exit codes; error when the table exists on neither node', async () => {
    const [ca, cb] = [await adminClient(a), await adminClient(b)]
    try {
      expect((await diffTable(ca, cb, {schema: 'Mixed Case', name: 'Tab le'})).status).toBe('MATCH')
    } finally {
      await ca.end()
      await cb.end()
    }
    const t = await runCli(['schema', 'diff', '--node-a', a, '--node-b', b, '--table', 't_type', '--json'])
    expect(t.code).toBe(3)
    expect(t.json()).toMatchObject({key: 'public.t_type', status: 'MISMATCH', blocking: true, differences: [{column: 'v', kind: 'type'}]})
    const d = await runCli(['schema', 'diff', '--node-a', a, '--node-b', b, '--table', 'public.t_default'])
    expect(d.code).toBe(0)
    expect(d.stdout).toMatch(/· v: default 'a'::text vs 'b'::text \(ok for replication\)/)
    expect(d.stdout).toMatch(/Compatible for replication \(1 non-blocking difference\(s\)\)/)
    const only = await runCli(['schema', 'diff', '--node-a', a, '--node-b', b, '--table', 'only_b'])
    expect(only.code).toBe(3)
    expect(only.stdout).toMatch(/exists only on node B/)
    const none = await runCli(['schema', 'diff', '--node-a', a, '--node-b', b, '--table', 'public.nowhere'])
    expect(none.code).toBe(1)
    expect(none.stderr).toMatch(/table public\.nowhere not found on either node/)
  })
})

describe('schema fingerprint and capture', () => {
  let db: string
  beforeAll(async () => {
    db = await freshDatabase('capture')
    await sql(db, `CREATE TABLE public.keep (id integer PRIMARY KEY, v varchar(5)); CREATE TABLE public.gone (id integer); CREATE SCHEMA other; CREATE TABLE other.x (a int)`)
  })
  afterAll(async () => {
    await dropDatabase(db)
  })

  it('fingerprint CLI: one row per table, --show-input shows the hashed string, --json has the column definitions', async () => {
    const r = await runCli(['schema', 'fingerprint', '-d', db, '--table', 'keep', '--table', 'nope.x', '--json'])
    expect(r.code, r.stderr).toBe(1)
    expect(r.stderr).toContain('error: table nope.x not found')
    const doc = r.json()
    expect(doc.missing).toEqual(['nope.x'])
    expect(doc.tables).toHaveLength(1)
    expect(doc.tables[0]).toMatchObject({schema: 'public', table: 'keep', kind: 'ordinary', columnCount: 2})
    expect(doc.tables[0].input).toBe('"id" integer NOT NULL\n"v" character varying(5) NULL COLLATE "pg_catalog"."default"')
    expect(doc.tables[0].columns[1]).toMatchObject({name: 'v', type: 'character varying(5)', nullable: true, default: null, position: 2})
    const h = await runCli(['schema', 'fingerprint', '-d', db, '--show-input'])
    expect(h.stdout).toContain(doc.tables[0].fingerprint)
    expect(h.stdout).toContain('  "v" character varying(5) NULL COLLATE "pg_catalog"."default"')
  })

  it('capture needs the steep_repl schema (exit 3), then stores and refreshes a node\'s rows', async () => {
    const missing = await runCli(['schema', 'capture', '-d', db, '--node', 'n1'])
    expect(missing.code).toBe(3)
    expect(missing.stderr).toMatch(/steep-repl install/)
    expect((await runCli(['install', '-d', db])).code).toBe(0)
    const first = await runCli(['schema', 'capture', '-d', db, '--node', 'n1', '--json'])
    expect(first.code).toBe(0)
    expect(first.json()).toMatchObject({nodeId: 'n1', captured: 3, removed: []})
    const rows = await sql(db, `SELECT table_schema, table_name, fingerprint, column_count, column_definitions FROM steep_repl.schema_fingerprints WHERE node_id = 'n1' ORDER BY 1, 2`)
    expect(rows.map((r) => `${r.table_schema}.${r.table_name}`)).toEqual(['other.x', 'public.gone', 'public.keep'])
    const [{f}] = await sql(db, `SELECT steep_repl.compute_fingerprint('public', 'keep') AS f`)
    expect(rows[2].fingerprint).toBe(f)
    expect(rows[2].column_definitions[0]).toMatchObject({name: 'id', type: 'integer', nullable: false, position: 1})
    await sql(db, `DROP TABLE public.gone; ALTER TABLE public.keep ADD COLUMN w int`)
    const second = await runCli(['schema', 'capture', '-d', db, '--node', 'n1', '--schema', 'public', '--json'])
    expect(second.json()).toMatchObject({captured: 1, removed: [{schema: 'public', table: 'gone'}]})
    const after = await sql(db, `SELECT table_schema || '.' || table_name AS k, column_count FROM steep_repl.schema_fingerprints WHERE node_id = 'n1' ORDER BY 1`)
    expect(after).toEqual([
      {k: 'other.x', column_count: 1},
      {k: 'public.keep', column_count: 3},
    ])
  })
})
