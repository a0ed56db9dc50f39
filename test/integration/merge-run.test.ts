import {afterAll, describe, expect, it} from 'vitest'
import {analyzeOverlap} from '../../src/lib/merge/analyze.js'
import {mergeReport} from '../../src/lib/merge/audit.js'
import {runMerge} from '../../src/lib/merge/run.js'
import type {Strategy} from '../../src/lib/merge/strategy.js'
import {parseTableList} from '../../src/lib/merge/tables.js'
import {adminClient, dropDatabase, sql} from '../helpers/pg.js'
import {dump, installSchema, params, SIMPLE_A, SIMPLE_B, SIMPLE_SCHEMA, twoNodes} from './merge-fixtures.js'

const dbs: string[] = []
afterAll(async () => {
  await Promise.all(dbs.map((d) => dropDatabase(d)))
})

async function nodes(schema: string, a: string, b: string) {
  const n = await twoNodes(schema, a, b)
  dbs.push(n.a, n.b)
  await installSchema(n.a)
  return n
}

const merge = (n: {a: string; b: string}, tables: string, strategy: Strategy, extra: Record<string, unknown> = {}) =>
  runMerge({nodeA: params(n.a), nodeB: params(n.b), tables: parseTableList(tables), strategy, ...extra})

const pick = (t: {transferredAToB: number; transferredBToA: number; keptA: number; keptB: number; skipped: number}) => ({
  transferredAToB: t.transferredAToB,
  transferredBToA: t.transferredBToA,
  keptA: t.keptA,
  keptB: t.keptB,
  skipped: t.skipped,
})

describe('merge run (library)', () => {
  for (const [strategy, row3] of [
    ['prefer-node-a', '(3,carol,v1,"2024-01-01 10:00:00+00")'],
    ['prefer-node-b', '(3,carol,v2,"2024-01-02 10:00:00+00")'],
    ['last-modified', '(3,carol,v2,"2024-01-02 10:00:00+00")'],
  ] as const) {
    it(`${strategy}: dry run predicts exactly, the run converges both nodes, a second run finds nothing`, async () => {
      const n = await nodes(SIMPLE_SCHEMA, SIMPLE_A, SIMPLE_B)
      const before = [await dump(n.a, 'users'), await dump(n.b, 'users')]
      const dry = await merge(n, 'users', strategy, {dryRun: true})
      expect(dry.mergeId).toBeNull()
      expect([await dump(n.a, 'users'), await dump(n.b, 'users')]).toEqual(before)
      expect(await sql(n.a, 'SELECT count(*)::int AS n FROM steep_repl.merges')).toEqual([{n: 0}])

      const run = await merge(n, 'users', strategy)
      expect(pick(run.tables[0]!)).toEqual(pick(dry.tables[0]!))
      expect(run.totals).toEqual(dry.totals)
      const a = await dump(n.a, 'users')
      expect(a).toEqual(await dump(n.b, 'users'))
      expect(a).toHaveLength(4)
      expect(a[2]).toBe(row3)

      const again = await merge(n, 'users', strategy)
      expect(again.totals).toMatchObject({match: 4, conflict: 0, aOnly: 0, bOnly: 0, transferredAToB: 0, transferredBToA: 0, conflictsResolved: 0})

      // Audit: every decision of the first run, transfers included, under its merge id, on node A.
      const audit = await sql(n.a, `SELECT pk_value, category, resolution, resolved_by, node_a_value IS NOT NULL AS has_a, node_b_value IS NOT NULL AS has_b
                                      FROM steep_repl.merge_audit_log WHERE merge_id = $1 ORDER BY (pk_value->>'id')::int`, [run.mergeId])
      const resolution3 = strategy === 'prefer-node-a' ? 'kept_a' : 'kept_b'
      expect(audit).toEqual([
        {pk_value: {id: 1}, category: 'local_only', resolution: 'transferred_a_to_b', resolved_by: `strategy:${strategy}`, has_a: true, has_b: false},
        {pk_value: {id: 3}, category: 'conflict', resolution: resolution3, resolved_by: `strategy:${strategy}`, has_a: true, has_b: true},
        {pk_value: {id: 4}, category: 'remote_only', resolution: 'transferred_b_to_a', resolved_by: `strategy:${strategy}`, has_a: false, has_b: true},
      ])
      const c = await adminClient(n.a)
      try {
        const rep = await mergeReport(c, run.mergeId!, {limit: 10, offset: 0})
        expect(rep.merge).toMatchObject({status: 'complete', strategy, tables: ['public.users'], totals: {conflict: 1, aOnly: 1, bOnly: 1, transferredAToB: 1, transferredBToA: 1, conflictsResolved: 1}})
        expect(rep.conflicts.total).toBe(1)
        expect(rep.conflicts.rows[0]).toMatchObject({pk: {id: 3}, resolution: resolution3})
      } finally {
        await c.end()
      }
    })
  }

  it('manual: one-sided rows still transfer, conflicts stay and are reported', async () => {
    const n = await nodes(SIMPLE_SCHEMA, SIMPLE_A, SIMPLE_B)
    const dry = await merge(n, 'users', 'manual', {dryRun: true})
    const run = await merge(n, 'users', 'manual')
    expect(pick(run.tables[0]!)).toEqual(pick(dry.tables[0]!))
    expect(run.tables[0]).toMatchObject({transferredAToB: 1, transferredBToA: 1, skipped: 1, skippedKeys: [['3']]})
    expect((await dump(n.a, 'users'))[2]).toBe('(3,carol,v1,"2024-01-01 10:00:00+00")')
    expect((await dump(n.b, 'users'))[2]).toBe('(3,carol,v2,"2024-01-02 10:00:00+00")')
    const again = await merge(n, 'users', 'manual')
    expect(again.totals).toMatchObject({conflict: 1, aOnly: 0, bOnly: 0, transferredAToB: 0, transferredBToA: 0, conflictsSkipped: 1})
    const c = await adminClient(n.a)
    try {
      const rep = await mergeReport(c, run.mergeId!, {limit: 10, offset: 0, unresolvedOnly: true})
      expect(rep.conflicts.rows).toHaveLength(1)
      expect(rep.conflicts.rows[0]).toMatchObject({resolution: 'skipped', nodeA: {id: 3, status: 'v1'}, nodeB: {id: 3, status: 'v2'}})
    } finally {
      await c.end()
    }
  })

  it('multi-table with foreign keys: parents first, composite keys, odd values survive the COPY', async () => {
    const schema = `CREATE SCHEMA "Shop";
      CREATE TABLE "Shop".customers (id int PRIMARY KEY, name text NOT NULL, tags text[], data jsonb, pic bytea, balance numeric, seen timestamptz, f float8);
      CREATE TABLE "Shop".orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES "Shop".customers(id), note text);
      CREATE TABLE "Shop".lines (order_id int REFERENCES "Shop".orders(id), line int, qty int, total int GENERATED ALWAYS AS (qty * 2) STORED, PRIMARY KEY (order_id, line))`
    const n = await nodes(schema,
      `INSERT INTO "Shop".customers VALUES (1, 'tab\there', '{a,"b c"}', '{"k": [1, 2]}', '\\x00ff', 1.50, '2024-01-01 00:00:00.123456+00', 0.1);
       INSERT INTO "Shop".orders VALUES (10, 1, E'line1\\nline2\\\\');
       INSERT INTO "Shop".lines (order_id, line, qty) VALUES (10, 1, 5)`,
      `INSERT INTO "Shop".customers VALUES (2, 'back\\slash', NULL, NULL, NULL, NULL, NULL, 'NaN');
       INSERT INTO "Shop".orders VALUES (20, 2, NULL);
       INSERT INTO "Shop".lines (order_id, line, qty) VALUES (20, 1, 1), (20, 2, 2)`)
    const dry = await merge(n, '"Shop".lines,"Shop".orders,"Shop".customers', 'prefer-node-a', {dryRun: true})
    expect(dry.order).toEqual(['Shop.customers', 'Shop.orders', 'Shop.lines'])
    const run = await merge(n, '"Shop".lines,"Shop".orders,"Shop".customers', 'prefer-node-a', {batchRows: 1})
    expect(run.totals).toEqual(dry.totals)
    for (const t of ['"Shop".customers', '"Shop".orders', '"Shop".lines']) expect(await dump(n.a, t)).toEqual(await dump(n.b, t))
    expect(await dump(n.b, '"Shop".lines')).toEqual(['(10,1,5,10)', '(20,1,1,2)', '(20,2,2,4)'])
    const again = await analyzeOverlap({nodeA: params(n.a), nodeB: params(n.b), tables: parseTableList('"Shop".customers,"Shop".orders,"Shop".lines')})
    expect(again.totals).toEqual({total: 7, match: 7, conflict: 0, aOnly: 0, bOnly: 0})
  })

  it('reports active writers as warnings; a cancelled merge writes nothing and is recorded as cancelled', async () => {
    const n = await nodes(SIMPLE_SCHEMA, SIMPLE_A, SIMPLE_B)
    const writer = await adminClient(n.b)
    try {
      await writer.query('BEGIN')
      await writer.query(`INSERT INTO users VALUES (99, 'zed', NULL, NULL)`)
      const dry = await merge(n, 'users', 'prefer-node-a', {dryRun: true})
      expect(dry.warnings).toContain('node B: 1 other session(s) hold write locks on the tables; rows they change during the merge may be missed')
      expect(dry.warnings).toContain('node B: 1 session(s) idle in a transaction')
    } finally {
      await writer.query('ROLLBACK')
      await writer.end()
    }
    const before = [await dump(n.a, 'users'), await dump(n.b, 'users')]
    const ac = new AbortController()
    ac.abort()
    await expect(merge(n, 'users', 'prefer-node-a', {signal: ac.signal})).rejects.toThrow(/cancelled/)
    expect([await dump(n.a, 'users'), await dump(n.b, 'users')]).toEqual(before)
    expect(await sql(n.a, `SELECT status, completed_at IS NOT NULL AS done FROM steep_repl.merges`)).toEqual([{status: 'cancelled', done: true}])
  })

  it('a failure while writing a table rolls it back on both nodes and marks the merge failed', async () => {
    const n = await nodes(SIMPLE_SCHEMA, SIMPLE_A, SIMPLE_B)
    // Node B refuses node A's version of row 3 (constraints are not part of the column comparison).
    await sql(n.b, `ALTER TABLE users ADD CONSTRAINT no_v1_for_carol CHECK (name <> 'carol' OR status <> 'v1')`)
    const before = [await dump(n.a, 'users'), await dump(n.b, 'users')]
    await expect(merge(n, 'users', 'prefer-node-a')).rejects.toThrow(/no_v1_for_carol/)
    expect([await dump(n.a, 'users'), await dump(n.b, 'users')]).toEqual(before)
    const [m] = await sql(n.a, `SELECT status, errors FROM steep_repl.merges`)
    expect(m.status).toBe('failed')
    expect(m.errors[0]).toMatch(/no_v1_for_carol/)
    expect(await sql(n.a, `SELECT count(*)::int AS n FROM steep_repl.merge_audit_log`)).toEqual([{n: 0}])
  })
})
