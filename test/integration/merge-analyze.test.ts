import {afterAll, describe, expect, it} from 'vitest'
import {analyzeOverlap} from '../../src/lib/merge/analyze.js'
import {arithmeticCuts, arithmeticKeys} from '../../src/lib/merge/ranges.js'
import {parseTableList} from '../../src/lib/merge/tables.js'
import {dropDatabase, sql} from '../helpers/pg.js'
import {params, SIMPLE_A, SIMPLE_B, SIMPLE_SCHEMA, twoNodes} from './merge-fixtures.js'

const dbs: string[] = []
afterAll(async () => {
  await Promise.all(dbs.map((d) => dropDatabase(d)))
})

async function nodes(schema: string, a: string, b: string) {
  const n = await twoNodes(schema, a, b)
  dbs.push(n.a, n.b)
  return n
}

const analyze = (n: {a: string; b: string}, tables: string, extra: Record<string, number> = {}) =>
  analyzeOverlap({nodeA: params(n.a), nodeB: params(n.b), tables: parseTableList(tables), ...extra})

describe('merge analyze (library)', () => {
  it('upstream simple overlap: 1 match, 1 conflict, 1 A-only, 1 B-only, total 4', async () => {
    const n = await nodes(SIMPLE_SCHEMA, SIMPLE_A, SIMPLE_B)
    const r = await analyze(n, 'users')
    const t = r.tables[0]!
    expect({total: t.total, match: t.match, conflict: t.conflict, aOnly: t.aOnly, bOnly: t.bOnly}).toEqual({total: 4, match: 1, conflict: 1, aOnly: 1, bOnly: 1})
    expect(t.conflicts.map((c) => c.key)).toEqual([['3']])
    expect(t.aOnlyRows.map((c) => c.key)).toEqual([['1']])
    expect(t.bOnlyRows.map((c) => c.key)).toEqual([['4']])
  })

  it('composite keys, NULL vs value, empty tables and one empty side', async () => {
    const schema = `CREATE TABLE s1.items (order_id int, item_id text, qty int, note text, PRIMARY KEY (order_id, item_id));
                    CREATE TABLE s1.empty (id int PRIMARY KEY);
                    CREATE TABLE s1.half (id int PRIMARY KEY, v text)`
    const n = await nodes(`CREATE SCHEMA s1; ${schema}`,
      `INSERT INTO s1.items VALUES (1,'a',1,NULL),(1,'b',2,'x'),(2,'a',3,'y'),(3,'z',1,'');
       INSERT INTO s1.half SELECT g, 'v' || g FROM generate_series(1, 50) g`,
      `INSERT INTO s1.items VALUES (1,'a',1,'pending'),(1,'b',2,'x'),(2,'a',3,'y'),(3,'z',1,NULL),(2,'b',1,'new')`)
    const r = await analyze(n, 's1.items,s1.empty,s1.half')
    const [items, empty, half] = r.tables
    expect(items).toMatchObject({total: 5, match: 2, conflict: 2, aOnly: 0, bOnly: 1})
    expect(items!.conflicts.map((c) => c.key)).toEqual([['1', 'a'], ['3', 'z']])
    expect(items!.bOnlyRows.map((c) => c.key)).toEqual([['2', 'b']])
    expect(empty).toMatchObject({total: 0, match: 0, conflict: 0, aOnly: 0, bOnly: 0})
    expect(half).toMatchObject({total: 50, match: 0, aOnly: 50, bOnly: 0})
  })

  it('boundary keys are never counted twice or missed, at every split (tiny blocks)', async () => {
    // Differences sit exactly on the keys the sample and the splits cut at; every row is counted once.
    const n = await nodes(`CREATE TABLE t (id int PRIMARY KEY, v int)`,
      `INSERT INTO t SELECT g, g FROM generate_series(1, 3000) g`,
      `INSERT INTO t SELECT g, CASE WHEN g % 97 = 0 THEN -g ELSE g END FROM generate_series(2, 3001) g`)
    await Promise.all([sql(n.a, 'ANALYZE t'), sql(n.b, 'ANALYZE t')])
    for (const tune of [{blockRows: 10, leafRows: 1, fanout: 2}, {blockRows: 64, leafRows: 8, fanout: 8}, {blockRows: 100000, leafRows: 3, fanout: 3}]) {
      const t = (await analyze(n, 't', tune)).tables[0]!
      const conflicts = Math.floor(3000 / 97)
      expect({total: t.total, match: t.match, conflict: t.conflict, aOnly: t.aOnly, bOnly: t.bOnly}).toEqual({
        total: 3001, match: 2999 - conflicts, conflict: conflicts, aOnly: 1, bOnly: 1,
      })
      expect(t.aOnlyRows.map((x) => x.key)).toEqual([['1']])
      expect(t.bOnlyRows.map((x) => x.key)).toEqual([['3001']])
      expect(t.stats.cutsFrom).toBe(tune.blockRows < 3000 ? 'minmax' : 'none')
    }
  })

  it('histogram cuts (integer key with an outlier): differences exactly on the cut keys and just below them are found once', async () => {
    // The outlier makes min..max sparse, so the cuts come from the histogram's inner range.
    const load = `INSERT INTO h SELECT g, g FROM generate_series(1, 5000) g; INSERT INTO h VALUES (1000000000000, 0)`
    const n = await nodes(`CREATE TABLE h (id bigint PRIMARY KEY, v int)`, load, load)
    await Promise.all([sql(n.a, 'ANALYZE h'), sql(n.b, 'ANALYZE h')])
    const [{b}] = await sql(n.a, `SELECT histogram_bounds::text::int8[]::text[] AS b FROM pg_stats WHERE tablename = 'h' AND attname = 'id'`)
    const ar = arithmeticCuts((b as string[]).map((x) => BigInt(x)), 5001, {blockRows: 10, maxBlocks: 65536})!
    expect(ar).not.toBeNull()
    const cuts = arithmeticKeys(ar).map((k) => Number(k[0]))
    // Conflicts on every 7th cut key and the key just below it; one cut key deleted on B, one beyond the last cut added.
    const hit = cuts.filter((c, i) => i % 7 === 0 && c >= 2 && c <= 4999)
    const changed = [...new Set(hit.flatMap((c) => [c - 1, c]))].sort((x, y) => x - y)
    const gone = cuts.find((c) => c > 100 && !changed.includes(c) && c <= 5000)!
    await sql(n.b, `UPDATE h SET v = -v WHERE id = ANY ($1::int8[])`, [changed])
    await sql(n.b, `DELETE FROM h WHERE id = ${gone}; INSERT INTO h VALUES (${cuts.at(-1)! + 5000}, 0)`)
    const t = (await analyze(n, 'h', {blockRows: 10, leafRows: 2, fanout: 4})).tables[0]!
    expect(t.stats.cutsFrom).toBe('histogram')
    expect(t.stats.topBlocks).toBe(cuts.length + 1)
    expect(t.conflicts.map((x) => Number(x.key[0]))).toEqual(changed)
    expect(t.aOnlyRows.map((x) => Number(x.key[0]))).toEqual([gone])
    expect(t.bOnlyRows.map((x) => Number(x.key[0]))).toEqual([cuts.at(-1)! + 5000])
    expect({total: t.total, match: t.match}).toEqual({total: 5002, match: 5000 - changed.length})
  })

  it('partitioned tables: the partitions are read through the parent, sampling included', async () => {
    const schema = `CREATE TABLE m (id int, region text, v int, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
                    CREATE TABLE m_eu PARTITION OF m FOR VALUES IN ('eu'); CREATE TABLE m_us PARTITION OF m FOR VALUES IN ('us')`
    const n = await nodes(schema,
      `INSERT INTO m SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g FROM generate_series(1, 400) g`,
      `INSERT INTO m SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, CASE WHEN g = 333 THEN 0 ELSE g END FROM generate_series(2, 401) g`)
    await Promise.all([sql(n.a, 'ANALYZE m'), sql(n.b, 'ANALYZE m')])
    const t = (await analyze(n, 'm', {blockRows: 16, leafRows: 2, fanout: 4})).tables[0]!
    expect(t.stats.topBlocks).toBeGreaterThan(1)
    expect({total: t.total, match: t.match, conflict: t.conflict, aOnly: t.aOnly, bOnly: t.bOnly}).toEqual({total: 401, match: 398, conflict: 1, aOnly: 1, bOnly: 1})
    expect(t.conflicts[0]!.key).toEqual(['333', 'us'])
  })
})
