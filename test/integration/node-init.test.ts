// node init end to end on three real PostgreSQL servers (the shared one holds the source, two
// extra ones the targets): a writer keeps inserting and updating on the source while the target
// is cloned and handed over to a subscription at the slot's LSN; afterwards both sides have
// identical per-table checksums. A cancel mid-copy leaves no slot, publication, subscription or
// created table behind and the node failed. Bad input: the right exit codes; --schema-sync strict
// refuses exactly on what schema compare reports as blocking. node link: a row written on each
// side arrives on the other once and does not loop.

import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {runCli} from '../helpers/cli.js'
import {adminClient, dropDatabase, freshDatabase, sql} from '../helpers/pg.js'
import {resolveConnection} from '../../src/lib/connection/resolve.js'
import {initNode, preflight} from '../../src/lib/node/init.js'
import {dropSlots, dropSubs, registerTarget, type Server, startNodeServers, stopServers, waitFor, waitSame} from './node-support.js'

const FIXTURE = `
  CREATE TABLE items (id bigserial PRIMARY KEY, v int NOT NULL, note text);
  INSERT INTO items (v, note) SELECT i, repeat('x', 40) || i FROM generate_series(1, 40000) i;
  CREATE SCHEMA "Sales";
  CREATE TABLE "Sales"."Order" (id int PRIMARY KEY, item_id bigint REFERENCES items (id), "Qty" int CHECK ("Qty" > 0));
  INSERT INTO "Sales"."Order" SELECT i, i, 1 + i % 7 FROM generate_series(1, 5000) i;
  CREATE INDEX ON items (v);
  CREATE TABLE nokey_log (at timestamptz DEFAULT now(), msg text);
  ALTER TABLE nokey_log REPLICA IDENTITY FULL;
  INSERT INTO nokey_log (msg) SELECT 'm' || i FROM generate_series(1, 1000) i;
  CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
  CREATE TYPE pair AS (a int, b text);
  CREATE DOMAIN posint AS int CHECK (VALUE > 0);
  -- Binary COPY for built-in types, enums, domains and arrays; text for the composite (a user type).
  CREATE TABLE typed (id int PRIMARY KEY, m mood, n posint, arr numeric[], ts timestamptz, j jsonb);
  INSERT INTO typed SELECT i, (ARRAY['sad','ok','happy'])[1 + i % 3]::mood, i, ARRAY[i / 3.0, NULL], '2020-01-01'::timestamptz + i * interval '1 min', jsonb_build_object('i', i) FROM generate_series(1, 500) i;
  CREATE TABLE composite (id int PRIMARY KEY, p pair);
  INSERT INTO composite SELECT i, ROW(i, 'x' || i)::pair FROM generate_series(1, 300) i;
`

async function checksums(url: string): Promise<Record<string, string>> {
  const rows = await sql(
    url,
    `SELECT 'items' AS t, count(*) || ':' || md5(coalesce(string_agg(i::text, ',' ORDER BY id), '')) AS c FROM items i
     UNION ALL SELECT 'order', count(*) || ':' || md5(coalesce(string_agg(o::text, ',' ORDER BY id), '')) FROM "Sales"."Order" o
     UNION ALL SELECT 'log', count(*) || ':' || md5(coalesce(string_agg(l.msg, ',' ORDER BY l.msg), '')) FROM nokey_log l
     UNION ALL SELECT 'typed', count(*) || ':' || md5(coalesce(string_agg(t::text, ',' ORDER BY id), '')) FROM typed t
     UNION ALL SELECT 'composite', count(*) || ':' || md5(coalesce(string_agg(c::text, ',' ORDER BY id), '')) FROM composite c`,
  )
  return Object.fromEntries(rows.map((r) => [r.t, r.c]))
}

describe('node init', {timeout: 120_000}, () => {
  let servers: Server[] = []
  let src: string
  let dst: string
  let dst2: string
  beforeAll(async () => {
    servers = await startNodeServers(2)
    src = await freshDatabase('ninit_src')
    dst = await freshDatabase('ninit_dst', servers[0]!.url())
    dst2 = await freshDatabase('ninit_dst2', servers[1]!.url())
    await sql(src, FIXTURE)
    await registerTarget(dst, 'dst', servers[0]!.info.port)
    await registerTarget(dst2, 'dst', servers[1]!.info.port)
  })
  afterAll(async () => {
    for (const d of [src, dst, dst2]) await dropSubs(d).catch(() => {})
    for (const d of [src, dst]) await dropSlots(d)
    await dropDatabase(src)
    await stopServers(servers)
  })

  it('clones while a writer runs, hands over at the LSN, and ends with identical checksums', async () => {
    let stop = false
    let writes = 0
    const writer = (async () => {
      const c = await adminClient(src)
      try {
        while (!stop) {
          await c.query(`INSERT INTO items (v, note) VALUES ($1, 'live')`, [writes])
          await c.query(`UPDATE items SET v = v + 1 WHERE id = $1`, [1 + (writes * 97) % 40000])
          await c.query(`UPDATE "Sales"."Order" SET "Qty" = "Qty" + 1 WHERE id = $1`, [1 + (writes % 5000)])
          await c.query(`INSERT INTO nokey_log (msg) VALUES ($1)`, [`w${writes}`])
          writes++
        }
      } finally {
        await c.end()
      }
    })()
    const states: string[] = []
    const r = await initNode({
      target: resolveConnection({db: dst}),
      source: resolveConnection({db: src}),
      nodeId: 'dst',
      fromNodeId: 'src',
      parallel: 3,
      schemaSync: 'strict',
      selection: {},
      splitLargerThan: 256 * 1024,
      reporter: {phase: (n) => states.push(n), part: () => {}},
    })
    stop = true
    await writer
    expect(writes).toBeGreaterThan(10)
    expect(r).toMatchObject({state: 'synchronized', subscription: 'steep_sub_dst_from_src', tables: 5, createdTables: 5})
    expect(r.parts).toBeGreaterThan(3)
    expect(states).toEqual(['prepare', 'schema', 'data', 'sequences', 'post-data', 'analyze', 'catch-up', 'done'])
    // The writer stopped: the target converges on the source (a difference times out, showing both).
    await waitSame(src, dst, checksums, 'identical per-table checksums')
    const node = await sql(dst, `SELECT init_state, init_source_node, init_completed_at IS NOT NULL AS done FROM steep_repl.nodes WHERE node_id = 'dst'`)
    expect(node[0]).toEqual({init_state: 'synchronized', init_source_node: 'src', done: true})
    const prog = await sql(dst, `SELECT phase, overall_percent, tables_completed, tables_total, rows_copied > 0 AS rows FROM steep_repl.init_progress WHERE node_id = 'dst'`)
    expect(prog[0]).toEqual({phase: 'complete', overall_percent: 100, tables_completed: 5, tables_total: 5, rows: true})
    // Indexes and constraints came with post-data; the source registered itself in the target's registry.
    expect((await sql(dst, `SELECT count(*)::int AS n FROM pg_indexes WHERE tablename = 'items'`))[0].n).toBe(2)
    // ANALYZE ran (during the copy or after it) on every table.
    expect((await sql(dst, `SELECT count(DISTINCT tablename)::int AS n FROM pg_stats WHERE tablename IN ('items', 'Order', 'nokey_log', 'typed', 'composite')`))[0].n).toBe(5)
    expect((await sql(dst, `SELECT count(*)::int AS n FROM pg_constraint WHERE conname LIKE 'Order%' AND contype = 'f'`))[0].n).toBe(1)
    expect((await sql(dst, `SELECT init_state FROM steep_repl.nodes WHERE node_id = 'src'`)).length).toBe(1)
    // A later write arrives once.
    await sql(src, `INSERT INTO items (v, note) VALUES (-1, 'after')`)
    await waitFor('the row written after the handover on the target', async () => (await sql(dst, `SELECT count(*)::int AS n FROM items WHERE note = 'after'`))[0].n > 0)
    expect(await checksums(dst)).toEqual(await checksums(src))
    // node progress shows it; a second init is refused.
    const p = await runCli(['node', 'progress', 'dst', '-d', dst, '--json'])
    expect(p.code, p.stderr).toBe(0)
    expect(p.json()).toMatchObject({nodeId: 'dst', state: 'synchronized', phase: 'complete', overallPercent: 100})
    const again = await runCli(['node', 'init', 'dst', '--from', 'src', '-d', dst, '--source', src, '--direct'])
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/node dst is synchronized/)
  })

  it('a cancel mid-copy drops the slot, publication and created tables and leaves the node failed', async () => {
    const ac = new AbortController()
    let sawData = false
    await expect(
      initNode({
        target: resolveConnection({db: dst2}),
        source: resolveConnection({db: src}),
        nodeId: 'dst',
        fromNodeId: 'src2',
        parallel: 2,
        schemaSync: 'strict',
        selection: {},
        splitLargerThan: 64 * 1024,
        signal: ac.signal,
        reporter: {
          phase: () => {},
          part: (e) => {
            if (e.state === 'progress' && !sawData) {
              sawData = true
              ac.abort()
            }
          },
        },
      }),
    ).rejects.toThrow()
    expect(sawData).toBe(true)
    expect(await sql(src, `SELECT slot_name FROM pg_replication_slots WHERE slot_name = 'steep_sub_dst_from_src2'`)).toEqual([])
    expect(await sql(src, `SELECT pubname FROM pg_publication WHERE pubname = 'steep_pub_src2_to_dst'`)).toEqual([])
    expect(await sql(dst2, `SELECT subname FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`)).toEqual([])
    expect(await sql(dst2, `SELECT relname FROM pg_class WHERE relname IN ('items', 'Order', 'nokey_log', 'typed', 'composite')`)).toEqual([])
    const node = await sql(dst2, `SELECT n.init_state, p.phase, p.error_message FROM steep_repl.nodes n JOIN steep_repl.init_progress p USING (node_id) WHERE node_id = 'dst'`)
    expect(node[0]).toMatchObject({init_state: 'failed', phase: 'failed'})
    expect(node[0].error_message).toMatch(/cancel/i)
  })

  it('refuses bad input with the right exit code and leaves nothing behind', async () => {
    // Unknown target node.
    let r = await runCli(['node', 'init', 'nosuch', '--from', 'src', '-d', dst2, '--source', src, '--direct'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/node nosuch is not registered/)
    // The slot of dst from src is in use (by the first init).
    r = await runCli(['node', 'init', 'dst', '--from', 'src', '-d', dst2, '--source', src, '--direct'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/replication slot steep_sub_dst_from_src already exists/)
    // A target that is not empty.
    await sql(dst2, `CREATE TABLE items (id bigserial PRIMARY KEY, v int NOT NULL, note text)`)
    r = await runCli(['node', 'init', 'dst', '--from', 'src3', '-d', dst2, '--source', src, '--direct'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/target is not empty/)
    // With an explicit table list, a differing schema is a schema mismatch (exit 3).
    await sql(dst2, `ALTER TABLE items ADD COLUMN extra int`)
    r = await runCli(['node', 'init', 'dst', '--from', 'src3', '-d', dst2, '--source', src, '--tables', 'public.items', '--direct'])
    expect(r.code, r.stderr).toBe(3)
    expect(r.stderr).toMatch(/schema mismatch/)
    expect(await sql(src, `SELECT slot_name FROM pg_replication_slots WHERE slot_name = 'steep_sub_dst_from_src3'`)).toEqual([])
    expect((await sql(dst2, `SELECT init_state FROM steep_repl.nodes WHERE node_id = 'dst'`))[0].init_state).toBe('failed')
  })

  it('--schema-sync strict refuses exactly on what schema compare reports as blocking; manual warns', async () => {
    // dst2 has items with an extra column (previous test): schema compare calls it blocking.
    await sql(dst2, `ALTER TABLE items ALTER COLUMN note SET DEFAULT 'n/a'`)
    const blockingOf = async () => {
      const cmp = await runCli(['schema', 'compare', '--node-a', src, '--node-b', dst2, '--json'])
      const items = cmp.json().tables.find((t: {key: string}) => t.key === 'public.items')
      return {
        blocking: items.differences.filter((d: {blocking: boolean}) => d.blocking).map((d: {column: string; message: string}) => `public.items.${d.column}: ${d.message}`),
        other: items.differences.filter((d: {blocking: boolean}) => !d.blocking).map((d: {column: string; message: string}) => `public.items.${d.column}: ${d.message}`),
      }
    }
    let want = await blockingOf()
    expect(want.blocking).toEqual(['public.items.extra: missing on node A (breaks replication)'])
    expect(want.other).toHaveLength(1)
    const r = await runCli(['node', 'init', 'dst', '--from', 'src3', '-d', dst2, '--source', src, '--tables', 'public.items', '--schema-sync', 'strict', '--direct'])
    expect(r.code, r.stderr).toBe(3)
    const error = r.stderr.split('\n').find((l) => l.startsWith('Error:')) ?? ''
    expect(error).toContain(`(1 differences): ${want.blocking[0]}`)
    expect(error).not.toContain(want.other[0])
    // What does not block is noted, not refused.
    expect(r.stderr).toContain(want.other[0])
    // manual: the same finding is a warning, and nothing stops the init.
    const notes: string[] = []
    const opts = {source: resolveConnection({db: src}), nodeId: 'dst', fromNodeId: 'src3', selection: {tables: ['public.items']}}
    await expect(preflight(resolveConnection({db: dst2}), {...opts, schemaSync: 'manual'}, (m) => notes.push(m))).resolves.toEqual({tables: 1, existing: 1})
    expect(notes.join('\n')).toContain(`WARNING: schema mismatch (1 differences): ${want.blocking[0]}`)
    // Only a default differs now: schema compare does not block, neither does strict (it notes it).
    await sql(dst2, `ALTER TABLE items DROP COLUMN extra`)
    want = await blockingOf()
    expect(want.blocking).toEqual([])
    notes.length = 0
    await expect(preflight(resolveConnection({db: dst2}), {...opts, schemaSync: 'strict'}, (m) => notes.push(m))).resolves.toEqual({tables: 1, existing: 1})
    expect(notes.join('\n')).toContain(want.other[0])
    expect(await sql(src, `SELECT slot_name FROM pg_replication_slots WHERE slot_name = 'steep_sub_dst_from_src3'`)).toEqual([])
  })

  it('node link makes the pair bidirectional: a row written on each side arrives on the other once, and nothing loops', async () => {
    const major = Number((await sql(src, `SELECT current_setting('server_version_num')::int / 10000 AS m`))[0].m)
    const r = await runCli(['node', 'link', 'dst', 'src', '-d', dst, '--source', src, '--json'])
    if (major < 16) {
      expect(r.code).toBe(1)
      expect(r.stdout + r.stderr).toMatch(/older than 16/)
      return
    }
    expect(r.code, r.stderr).toBe(0)
    expect(r.json()).toMatchObject({subscription: 'steep_sub_src_from_dst', publication: 'steep_pub_dst_to_src', tables: 5})
    // nokey_log has no key: a change that looped would arrive twice.
    await sql(dst, `INSERT INTO nokey_log (msg) VALUES ('from-dst')`)
    await sql(src, `INSERT INTO nokey_log (msg) VALUES ('from-src')`)
    const count = async (u: string) => (await sql(u, `SELECT msg, count(*)::int AS n FROM nokey_log WHERE msg LIKE 'from-%' GROUP BY msg ORDER BY msg`))
    const want = [{msg: 'from-dst', n: 1}, {msg: 'from-src', n: 1}]
    await waitSame(src, dst, count, 'both rows on both sides')
    expect(await count(src)).toEqual(want)
    // A marker written on each side after that travels the same ordered stream as a looped copy
    // would: once each marker has arrived, a loop would have shown.
    await sql(src, `INSERT INTO nokey_log (msg) VALUES ('marker-src')`)
    await sql(dst, `INSERT INTO nokey_log (msg) VALUES ('marker-dst')`)
    await waitFor('the markers on the other side', async () => (await sql(dst, `SELECT 1 FROM nokey_log WHERE msg = 'marker-src'`)).length > 0 && (await sql(src, `SELECT 1 FROM nokey_log WHERE msg = 'marker-dst'`)).length > 0)
    expect(await count(src)).toEqual(want)
    expect(await count(dst)).toEqual(want)
    // Linking twice is refused.
    const again = await runCli(['node', 'link', 'dst', 'src', '-d', dst, '--source', src])
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/already linked/)
  })
})
