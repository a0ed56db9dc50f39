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

  it('owned sequences (serial, identity, descending, a non-key serial) are advanced on the receiving node, predicted exactly, audited', async () => {
    const schema = `CREATE TABLE s1 (id serial PRIMARY KEY, v text);
      CREATE TABLE s3 (id int GENERATED BY DEFAULT AS IDENTITY (INCREMENT BY -1 START WITH -1 MAXVALUE -1) PRIMARY KEY, v text);
      CREATE TABLE s4 (code text PRIMARY KEY, n serial)`
    const n = await nodes(
      schema,
      `INSERT INTO s1 (v) VALUES ('a'), ('b'), ('c'); SELECT setval('s1_id_seq', 100);
       INSERT INTO s3 (v) VALUES ('a'), ('b'), ('c');
       INSERT INTO s4 (code) VALUES ('a'), ('b')`,
      `INSERT INTO s1 VALUES (1, 'a'), (4, 'x'), (5, 'y');
       INSERT INTO s3 VALUES (-10, 'z');
       INSERT INTO s4 VALUES ('a', 50)`,
    )
    const dry = await merge(n, 's1,s3,s4', 'prefer-node-a', {dryRun: true})
    const run = await merge(n, 's1,s3,s4', 'prefer-node-a')
    const seqs = (r: typeof run) => Object.fromEntries(r.tables.map((t) => [t.table, t.sequences]))
    // The dry run predicted exactly what the run did.
    expect(seqs(run)).toEqual(seqs(dry))
    const step = (t: string, node: string) => seqs(run)[t]!.filter((s) => s.node === node).map((s) => [s.sequence, s.columnExtreme, s.advancedTo])
    // s1: B received 2, 3 (its sequence was never called: advanced to 5); A received 4, 5 but its sequence is at 100: left alone.
    expect(step('public.s1', 'B')).toEqual([['public.s1_id_seq', '5', '5']])
    expect(step('public.s1', 'A')).toEqual([['public.s1_id_seq', '5', null]])
    // s3 (descending identity): both received rows; the minimum is -10 on both.
    expect(step('public.s3', 'A')).toEqual([['public.s3_id_seq', '-10', '-10']])
    expect(step('public.s3', 'B')).toEqual([['public.s3_id_seq', '-10', '-10']])
    // s4: B's row 'a' (n = 50) was overwritten with A's (n = 1), 'b' (n = 2) copied: max is 2, not 50.
    expect(step('public.s4', 'B')).toEqual([['public.s4_n_seq', '2', '2']])
    expect(step('public.s4', 'A')).toEqual([])
    // Nothing received the second time: no sequence touched.
    const again = await merge(n, 's1,s3,s4', 'prefer-node-a')
    expect(again.tables.flatMap((t) => t.sequences)).toEqual([])
    // The next INSERT with the default works on each node.
    for (const url of [n.a, n.b]) {
      await sql(url, `INSERT INTO s1 (v) VALUES ('new'); INSERT INTO s3 (v) VALUES ('new'); INSERT INTO s4 (code) VALUES ('new')`)
    }
    expect(await sql(n.a, `SELECT last_value::int AS v FROM s1_id_seq`)).toEqual([{v: 101}])
    expect(await sql(n.b, `SELECT last_value::int AS v FROM s1_id_seq`)).toEqual([{v: 6}])
    expect(await sql(n.b, `SELECT last_value::int AS v FROM s3_id_seq`)).toEqual([{v: -11}])
    // Audited on node A, one row per advanced sequence.
    const audit = await sql(n.a, `SELECT table_name, pk_value, resolution, coalesce(node_a_value, node_b_value) AS v FROM steep_repl.merge_audit_log
                                    WHERE merge_id = $1 AND category = 'sequence' ORDER BY 1, 3`, [run.mergeId])
    expect(audit).toEqual([
      {table_name: 's1', pk_value: {sequence: 'public.s1_id_seq', column: 'id'}, resolution: 'advanced_on_b', v: {before: '1', is_called: false, after: '5'}},
      {table_name: 's3', pk_value: {sequence: 'public.s3_id_seq', column: 'id'}, resolution: 'advanced_on_a', v: {before: '-3', is_called: true, after: '-10'}},
      {table_name: 's3', pk_value: {sequence: 'public.s3_id_seq', column: 'id'}, resolution: 'advanced_on_b', v: {before: '-1', is_called: false, after: '-10'}},
      {table_name: 's4', pk_value: {sequence: 'public.s4_n_seq', column: 'n'}, resolution: 'advanced_on_b', v: {before: '1', is_called: false, after: '2'}},
    ])
  })

  it('refuses, before any write, rows that a subscription without origin filtering would send back; merges once it filters (16+)', async () => {
    const n = await nodes(SIMPLE_SCHEMA, SIMPLE_A, SIMPLE_B)
    const slot = `echo_${Date.now()}`
    await sql(n.a, `CREATE PUBLICATION echo_pub FOR TABLE public.users`)
    await sql(n.a, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot])
    // B subscribes to A (same server: the slot exists already), not filtering by origin.
    const v = Number((await sql(n.a, `SELECT current_setting('server_version_num')::int AS v`))[0].v)
    await sql(n.b, `CREATE SUBSCRIPTION echo_sub CONNECTION '${n.a.replace(/'/g, "''")}' PUBLICATION echo_pub
                    WITH (create_slot = false, slot_name = '${slot}', copy_data = false${v >= 160000 ? ', origin = any' : ''})`)
    try {
      const before = [await dump(n.a, 'users'), await dump(n.b, 'users')]
      for (const dryRun of [true, false]) {
        await expect(merge(n, 'users', 'prefer-node-a', {dryRun})).rejects.toThrow(/would break replication: public\.users: 1 row\(s\) of node B would be copied into node A, and subscription echo_sub on node B \(origin = any\)/)
      }
      expect([await dump(n.a, 'users'), await dump(n.b, 'users')]).toEqual(before)
      // The refused run is on record, failed with the reason, and audited nothing.
      expect(await sql(n.a, `SELECT status, errors::text ~ 'would break replication' AS why FROM steep_repl.merges`)).toEqual([{status: 'failed', why: true}])
      expect(await sql(n.a, 'SELECT count(*)::int AS n FROM steep_repl.merge_audit_log')).toEqual([{n: 0}])
      if (v < 160000) return
      // With origin = none the merge's writes (under their own origin) stay on A.
      await sql(n.b, `ALTER SUBSCRIPTION echo_sub SET (origin = none)`)
      const run = await merge(n, 'users', 'prefer-node-a')
      expect(run.totals).toMatchObject({transferredBToA: 1, transferredAToB: 1})
      await sql(n.a, `INSERT INTO public.users VALUES (5, 'eve', 'v1', now())`)
      for (let i = 0; i < 200; i++) {
        if ((await sql(n.b, `SELECT 1 FROM public.users WHERE id = 5`)).length) break
        await new Promise((r) => setTimeout(r, 100))
      }
      expect(await dump(n.b, 'users')).toEqual(await dump(n.a, 'users'))
      expect(await sql(n.b, `SELECT coalesce(sum(apply_error_count), 0)::int AS e FROM pg_stat_subscription_stats`)).toEqual([{e: 0}])
    } finally {
      await sql(n.b, `ALTER SUBSCRIPTION echo_sub DISABLE; ALTER SUBSCRIPTION echo_sub SET (slot_name = NONE); DROP SUBSCRIPTION echo_sub`)
      await sql(n.a, `SELECT pg_drop_replication_slot($1)`, [slot]).catch(() => {})
    }
  })
})
