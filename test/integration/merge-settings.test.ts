// Equal rows hash equal whatever the servers' output settings; merge writes on a node with
// replication configured run as a replica under the steep_repl_merge origin.
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {analyzeOverlap} from '../../src/lib/merge/analyze.js'
import {runMerge} from '../../src/lib/merge/run.js'
import {parseTableList} from '../../src/lib/merge/tables.js'
import {dropDatabase, freshDatabase, sql, startTestServer} from '../helpers/pg.js'
import type {ServerHandle} from '../helpers/servers.js'
import {dump, installSchema, params, twoNodes} from './merge-fixtures.js'

let other: ServerHandle
const dbs: string[] = []
beforeAll(async () => {
  other = await startTestServer({settings: {TimeZone: 'Asia/Tokyo', DateStyle: 'SQL, DMY', IntervalStyle: 'sql_standard', extra_float_digits: 0, bytea_output: 'escape', lc_monetary: 'C'}})
})
afterAll(async () => {
  await Promise.all(dbs.map((d) => dropDatabase(d)))
  await other?.stop()
})

const schema = `CREATE TABLE ev (id int PRIMARY KEY, at timestamptz, d date, iv interval, f float8, r real, b bytea, n numeric)`
const rows = `INSERT INTO ev VALUES
  (1, '2024-03-10 01:59:59.999999-05', '2024-02-29', '1 day 02:03:04.5', 0.1, 1.1, '\\x00ff10', 1.50),
  (2, '2024-03-10 07:00:00+00', '1999-12-31', '-3 years +2 mons', 1e-300, 3.4e38, '\\x', 0),
  (3, '1970-01-01 00:00:00+00', NULL, NULL, 'Infinity', '-0', NULL, 'NaN')`

describe('merge between two majors (record hash of exact per-column terms for built-in types; user types hashed as text)', () => {
  let cross: ServerHandle
  let crossDb: string | undefined
  beforeAll(async () => {
    const [{v}] = await sql((await import('../helpers/pg.js')).shared().url, `SELECT current_setting('server_version_num')::int / 10000 AS v`)
    cross = await startTestServer({major: v === 15 ? 18 : 15})
  })
  afterAll(async () => {
    if (crossDb) await dropDatabase(crossDb)
    await cross?.stop()
  })

  it('equal rows are equal and a change is a conflict, for built-in types and for enum/domain columns whose oids differ', async () => {
    const a = await freshDatabase('mx_a')
    const b = await freshDatabase('mx_b', cross.url())
    crossDb = b
    dbs.push(a)
    // An extra type first on B: the enum and the domain get other oids there than on A.
    await sql(b, `CREATE TYPE shift AS ENUM ('x')`)
    for (const d of [a, b]) {
      await sql(d, `CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy'); CREATE DOMAIN posint AS int CHECK (VALUE > 0);
        CREATE TABLE ev (id int PRIMARY KEY, at timestamptz, n numeric, t text, j jsonb, arr int[], m money);
        CREATE TABLE feel (id int PRIMARY KEY, m mood, p posint, note text);
        INSERT INTO ev SELECT i, '2024-01-01Z'::timestamptz + i * interval '1 min', i / 3.0, 'row ' || i, jsonb_build_object('i', i), ARRAY[i, -i], i FROM generate_series(1, 500) i;
        INSERT INTO feel SELECT i, (ARRAY['sad', 'ok', 'happy']::mood[])[1 + i % 3], i, 'n' || i FROM generate_series(1, 300) i`)
    }
    const both = () => analyzeOverlap({nodeA: params(a), nodeB: params(b), tables: parseTableList('ev,feel')})
    const r = await both()
    expect(r.tables.map((t) => [t.total, t.match, t.conflict])).toEqual([
      [500, 500, 0],
      [300, 300, 0],
    ])
    await sql(b, `UPDATE ev SET n = n + 0.000001 WHERE id = 77; UPDATE feel SET m = 'happy' WHERE id = 3`)
    const r2 = await both()
    expect(r2.tables.map((t) => [t.match, t.conflict, t.conflicts.map((c) => c.key[0])])).toEqual([
      [499, 1, ['77']],
      [299, 1, ['3']],
    ])
  })

  it('values that a type\'s own hash folds together are conflicts (numeric scale and sign, -0, jsonb numbers, 64-bit values that fold alike)', async () => {
    const a = await freshDatabase('mxe_a')
    const b = await freshDatabase('mxe_b', cross.url())
    dbs.push(a)
    try {
      const ddl = `CREATE TABLE ex (id int PRIMARY KEY, n numeric, f float8, j jsonb, p numeric(6,2), c char(3), t text, v varchar(5), big int8, at timestamptz)`
      const same = `'a', 't', 'v', 7, '2024-01-01Z'`
      await sql(a, `${ddl}; INSERT INTO ex VALUES (1, 1.0, 1, '{}', 1, ${same}), (2, 2, 0, '{}', 1, ${same}), (3, 3, 1, '{"a": 1.0}', 1, ${same}),
        (4, 4, 1, '{}', 1.5, 'a', 't', 'v', 1, '2024-01-01Z'), (5, 5, 1, '{}', 1.5, ${same}), (6, 6, 1, '{}', 1, 'a', 'Straße', 'v', 7, '2024-01-01Z'),
        (7, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`)
      await sql(b, `${ddl}; INSERT INTO ex VALUES (1, 1.00, 1, '{}', 1, ${same}), (2, 2, '-0', '{}', 1, ${same}), (3, 3, 1, '{"a": 1.00}', 1, ${same}),
        (4, 4, 1, '{}', 1.50, 'a  ', 't', 'v', 4294967296, '2024-01-01Z'), (5, 5, 1, '{}', -1.5, ${same}), (6, 6, 1, '{}', 1, 'a', 'Straße', 'v', 7, '2024-01-01Z'),
        (7, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`)
      // Each pair is equal under = (or hashes alike under the type's own hash), yet not the same value.
      const [f] = await sql(b, `SELECT 1.0::numeric = 1.00 AS scale, '0'::float8 = '-0' AS zero, '{"a": 1.0}'::jsonb = '{"a": 1.00}' AS json,
        hashint8extended(1, 0) = hashint8extended(4294967296, 0) AS fold, hash_numeric_extended(1.5, 0) = hash_numeric_extended(-1.5, 0) AS sign`)
      expect(f).toEqual({scale: true, zero: true, json: true, fold: true, sign: true})
      const r = await analyzeOverlap({nodeA: params(a), nodeB: params(b), tables: parseTableList('ex')})
      expect(r.tables[0]).toMatchObject({total: 7, match: 2, conflict: 5, aOnly: 0, bOnly: 0})
      expect(r.tables[0]!.conflicts.map((c) => c.key[0]).sort()).toEqual(['1', '2', '3', '4', '5'])
    } finally {
      await dropDatabase(b)
    }
  })
})

describe('merge under different server settings', () => {
  it('rows differing only in the servers\' time zone and output styles are equal; a one-microsecond change is a conflict', async () => {
    const a = await freshDatabase('mset_a')
    const b = await freshDatabase('mset_b', other.url())
    dbs.push(a, b)
    await sql(a, schema)
    await sql(b, schema)
    await sql(a, rows)
    await sql(b, rows)
    // The servers really do print differently.
    const [pa] = await sql(a, `SELECT at::text AS t FROM ev WHERE id = 1`)
    const [pb] = await sql(b, `SELECT at::text AS t FROM ev WHERE id = 1`)
    expect(pa.t).not.toBe(pb.t)
    const r = await analyzeOverlap({nodeA: params(a), nodeB: params(b), tables: parseTableList('ev')})
    expect(r.tables[0]).toMatchObject({total: 3, match: 3, conflict: 0, aOnly: 0, bOnly: 0})
    await sql(b, `UPDATE ev SET at = at + interval '1 microsecond' WHERE id = 2`)
    const r2 = await analyzeOverlap({nodeA: params(a), nodeB: params(b), tables: parseTableList('ev')})
    expect(r2.tables[0]).toMatchObject({total: 3, match: 2, conflict: 1})
    expect(r2.tables[0]!.conflicts[0]!.key).toEqual(['2'])
  })

  it('replication configured on node B: writes there run as a replica (user triggers do not fire) under the steep_repl_merge origin', async () => {
    const n = await twoNodes(
      `CREATE TABLE kv (id int PRIMARY KEY, v text); CREATE TABLE trigger_log (id int);
       CREATE FUNCTION log_it() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO trigger_log VALUES (NEW.id); RETURN NEW; END$$;
       CREATE TRIGGER kv_log AFTER INSERT OR UPDATE ON kv FOR EACH ROW EXECUTE FUNCTION log_it()`,
      `INSERT INTO kv VALUES (1, 'a'), (2, 'b')`,
      `INSERT INTO kv VALUES (2, 'B'), (3, 'c')`,
      'mrepl',
    )
    dbs.push(n.a, n.b)
    await installSchema(n.a)
    await sql(n.b, `CREATE PUBLICATION merge_test_pub FOR TABLE kv`)
    await sql(n.a, `TRUNCATE trigger_log`)
    await sql(n.b, `TRUNCATE trigger_log`)
    const r = await runMerge({nodeA: params(n.a), nodeB: params(n.b), tables: parseTableList('kv'), strategy: 'prefer-node-a'})
    expect(r.tables[0]!.replicaRole).toEqual({a: false, b: true})
    expect(await dump(n.a, 'kv')).toEqual(await dump(n.b, 'kv'))
    // Node A (no replication): its trigger fired for the row copied in; node B's did not.
    expect(await sql(n.a, `SELECT id FROM trigger_log ORDER BY id`)).toEqual([{id: 3}])
    expect(await sql(n.b, `SELECT id FROM trigger_log`)).toEqual([])
    const [{oid}] = await sql(n.b, `SELECT oid::text FROM pg_database WHERE datname = current_database()`)
    expect(await sql(n.b, `SELECT roname FROM pg_replication_origin WHERE roname = $1`, [`steep_repl_merge_${oid}`])).toEqual([{roname: `steep_repl_merge_${oid}`}])
  })
})
