// COPY formats of snapshot data (issue 5's round trip, per format): binary for the tables whose column
// types keep their meaning in binary on another database (built-in types but the OID aliases, enums,
// domains over them), text for the rest (enum arrays, composites, user range types, regclass, types
// without a binary form); --data-format text for every table. Every table of a zoo of type families
// comes back equal in both runs, through split and compressed parts, and a PostgreSQL 15 snapshot
// applies to PostgreSQL 18 (the upgrade path) with the same contents.

import {mkdtempSync, openSync, readSync, closeSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {openClient} from '../../src/lib/connection/connect.js'
import {resolveConnection} from '../../src/lib/connection/resolve.js'
import {applySnapshot} from '../../src/lib/snapshot/apply.js'
import {binaryCopyTables, listDataTables, tableKey} from '../../src/lib/snapshot/catalog.js'
import {generateSnapshot} from '../../src/lib/snapshot/generate.js'
import {tableFormat} from '../../src/lib/snapshot/manifest.js'
import {dropDatabase, freshDatabase, shared, sql, startTestServer} from '../helpers/pg.js'
import type {ServerHandle} from '../helpers/servers.js'

const DDL = String.raw`
CREATE SCHEMA "Zoo";
CREATE TYPE "Zoo".mood AS ENUM ('sad', 'ok', 'it''s "fine"');
CREATE TYPE "Zoo".pair AS (a int, b text);
CREATE TYPE "Zoo".floatrange AS RANGE (subtype = float8);
CREATE DOMAIN "Zoo".posint AS int CHECK (VALUE > 0);
CREATE DOMAIN "Zoo".posint2 AS "Zoo".posint;
CREATE DOMAIN "Zoo".intlist AS int[] CHECK (cardinality(VALUE) < 10);
CREATE DOMAIN "Zoo".calm AS "Zoo".mood;
CREATE TABLE "Zoo"."Built in" (
  id int PRIMARY KEY, i2 int2, i8 int8, n numeric, f4 real, f8 float8, m money, t text, vc varchar(20), c char(5),
  ch "char", nm name, b bool, by bytea, d date, tm time, ttz timetz, ts timestamp, tstz timestamptz, iv interval,
  u uuid, ip inet, net cidr, mac macaddr, mac8 macaddr8, bt bit(4), vb varbit, j json, jb jsonb, x xml,
  tv tsvector, tq tsquery, pt point, ln line, ls lseg, bx box, pth path, pg polygon, ci circle,
  r4 int4range, rts tstzrange, rn numrange, mr int4multirange, ia int[], ta text[], i2d int[][], o oid, lsn pg_lsn,
  dp "Zoo".posint, dp2 "Zoo".posint2, dl "Zoo".intlist, e "Zoo".mood, ce "Zoo".calm,
  g int GENERATED ALWAYS AS (id * 2) STORED);
CREATE TABLE "Zoo".enum_array (id int PRIMARY KEY, ms "Zoo".mood[]);
CREATE TABLE "Zoo".composite (id int PRIMARY KEY, p "Zoo".pair);
CREATE TABLE "Zoo".oid_alias (id int PRIMARY KEY, r regclass, rt regtype[]);
CREATE TABLE "Zoo".user_range (id int PRIMARY KEY, fr "Zoo".floatrange);
CREATE TABLE "Zoo".no_binary (id int PRIMARY KEY, a aclitem);
CREATE TABLE "Zoo".empty ();`

const FILL = String.raw`
INSERT INTO "Zoo"."Built in" (id, i2, i8, n, f4, f8, m, t, vc, c, ch, nm, b, by, d, tm, ttz, ts, tstz, iv, u, ip, net, mac, mac8, bt, vb,
    j, jb, x, tv, tq, pt, ln, ls, bx, pth, pg, ci, r4, rts, rn, mr, ia, ta, i2d, o, lsn, dp, dp2, dl, e, ce)
  SELECT i, (i % 32767)::int2, i::int8 * 3037000499,
         CASE i % 6 WHEN 0 THEN 'NaN' WHEN 1 THEN 'Infinity' WHEN 2 THEN '-Infinity' WHEN 3 THEN '-99999999999999999999.000000001' WHEN 4 THEN '1e-100' ELSE i / 7.0 END,
         CASE i % 4 WHEN 0 THEN '-0' WHEN 1 THEN 'Infinity' WHEN 2 THEN 'NaN' ELSE (i / 3.0)::real END,
         CASE i % 4 WHEN 0 THEN '-Infinity' WHEN 1 THEN '1e-308' WHEN 2 THEN '-0' ELSE i / 3.0 END,
         (i * 1234.56 - 500000)::numeric::money,
         CASE i % 6 WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN E'back\\slash\ttab\nnewline\r' WHEN 3 THEN 'ünïcødé ✓ 𝄞' WHEN 4 THEN '\N' ELSE repeat('x', i % 300) END,
         'v' || i, 'c' || (i % 100), chr(65 + i % 26)::"char", ('name ' || i)::name, i % 3 = 0,
         CASE WHEN i % 5 = 0 THEN NULL ELSE decode('00ff' || lpad(to_hex(i), 8, '0') || '00', 'hex') END,
         CASE i % 7 WHEN 0 THEN 'infinity'::date WHEN 1 THEN '-infinity'::date ELSE date '2000-01-01' + i END,
         time '00:00' + i * interval '1 second', (time '12:00' + i * interval '1 ms')::timetz,
         CASE i % 5 WHEN 0 THEN 'infinity'::timestamp ELSE timestamp '1999-12-31 23:59:59.999999' + i * interval '1 day' END,
         CASE i % 5 WHEN 0 THEN '-infinity'::timestamptz ELSE timestamptz '2026-01-01 00:00:00.123456+05:30' + i * interval '1 minute' END,
         make_interval(months => i % 13, days => -i % 31, secs => i / 7.0),
         md5(i::text)::uuid, ('10.' || (i % 256) || '.0.1/' || (8 + i % 25))::inet, '192.168.0.0/16', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05',
         (i % 16)::bit(4), (i::bit(12))::varbit,
         json_build_object('i', i, 's', E'q"\\'), jsonb_build_object('i', i, 'nested', jsonb_build_array(i, 'x', NULL, 1.5e300)),
         ('<r n="' || i || '">a &amp; b</r>')::xml,
         to_tsvector('english', 'the quick brown fox ' || i), to_tsquery('english', 'fox & ' || (i % 9 + 1)),
         point(i, -i), line(point(0, 0), point(i, i + 1)), lseg(point(0, i), point(i, 0)), box(point(0, 0), point(i, i)),
         path(polygon(box(point(0, 0), point(1, i)))), polygon(box(point(0, 0), point(i, 2))), circle(point(i, i), i),
         int4range(i, i + 10), tstzrange(timestamptz '2026-01-01', timestamptz '2026-01-01' + i * interval '1 hour', '(]'),
         CASE WHEN i % 3 = 0 THEN 'empty'::numrange ELSE numrange(NULL, i / 3.0) END,
         int4multirange(int4range(1, 3), int4range(i + 5, i + 9)),
         ARRAY[i, NULL, -i], ARRAY['a', NULL, E'\\"{},', ''], ARRAY[[i, 1], [2, NULL]], i::oid, ('0/' || to_hex(i * 4096))::pg_lsn,
         1 + i % 1000, 1 + i % 7, ARRAY[1, i], (enum_range(NULL::"Zoo".mood))[1 + i % 3], 'ok'
    FROM generate_series(1, 3000) i;
INSERT INTO "Zoo"."Built in" (id) VALUES (0);
INSERT INTO "Zoo".enum_array SELECT i, ARRAY['sad', 'it''s "fine"', NULL]::"Zoo".mood[] FROM generate_series(1, 50) i;
INSERT INTO "Zoo".composite SELECT i, ROW(i, 'p' || i)::"Zoo".pair FROM generate_series(1, 50) i;
INSERT INTO "Zoo".oid_alias SELECT i, '"Zoo"."Built in"'::regclass, ARRAY['int4', '"Zoo".mood']::regtype[] FROM generate_series(1, 50) i;
INSERT INTO "Zoo".user_range SELECT i, "Zoo".floatrange(i, i + 0.5) FROM generate_series(1, 50) i;
INSERT INTO "Zoo".no_binary SELECT i, 'postgres=r/postgres'::aclitem FROM generate_series(1, 50) i;
INSERT INTO "Zoo".empty DEFAULT VALUES;`

const TABLES = ['Built in', 'enum_array', 'composite', 'oid_alias', 'user_range', 'no_binary', 'empty']

/** Each table's rows as text, in a stable order (same server, same session settings on both sides). */
async function contents(url: string): Promise<Record<string, {rows: number; md5: string}>> {
  const out: Record<string, {rows: number; md5: string}> = {}
  for (const t of TABLES) {
    const [r] = await sql(url, `SELECT count(*)::int AS rows, coalesce(md5(string_agg(x::text, E'\n' ORDER BY x::text)), '') AS md5 FROM "Zoo".${pg.escapeIdentifier(t)} x`)
    out[t] = r
  }
  return out
}

describe('snapshot COPY formats', () => {
  let src: string
  const dir = mkdtempSync(path.join(tmpdir(), 'steep-snapfmt-'))
  let other: ServerHandle | undefined
  beforeAll(async () => {
    src = await freshDatabase('fmtsrc')
    await sql(src, DDL + FILL)
  })
  afterAll(async () => {
    await dropDatabase(src)
    await other?.stop()
    rmSync(dir, {recursive: true, force: true})
  })

  it('a binary snapshot of PostgreSQL 15 applies to PostgreSQL 18 with the same contents', {timeout: 120_000}, async () => {
    // The older major is the source: the shared server when it is 15, else one started here.
    const sharedMajor = shared().major
    if (sharedMajor !== 15 && sharedMajor !== 18) return
    other = await startTestServer({major: sharedMajor === 15 ? 18 : 15})
    const source = sharedMajor === 15 ? src : await freshDatabase('fmtsrc15', other.url())
    const target = await freshDatabase('fmtdst18', sharedMajor === 15 ? other.url() : shared().url)
    try {
      if (source !== src) await sql(source, DDL + FILL)
      const out = path.join(dir, 'upgrade')
      const {manifest: m} = await generateSnapshot({source: resolveConnection({db: source}), output: out, parallel: 2, compression: 'lz4', selection: {schemas: ['Zoo']}, keepSlot: false, toolVersion: 'test'})
      expect(m.source.serverVersionNum).toBeLessThan(160000)
      expect(m.tables.find((t) => t.name === 'Built in')!.format).toBe('binary')
      await applySnapshot({target: resolveConnection({db: target}), input: out, parallel: 2, verify: true, resume: false})
      const [{v}] = await sql(target, `SELECT current_setting('server_version_num')::int AS v`)
      expect(v).toBeGreaterThanOrEqual(180000)
      expect(await contents(target)).toEqual(await contents(source))
    } finally {
      await dropDatabase(target)
      if (source !== src) await dropDatabase(source)
    }
  })

  it('binary only where the column types keep their meaning in binary on another database', async () => {
    const c = await openClient(resolveConnection({db: src}))
    try {
      const zoo = (await listDataTables(c)).filter((t) => t.schema === 'Zoo')
      const binary = await binaryCopyTables(c, zoo)
      expect(zoo.filter((t) => binary.has(tableKey(t))).map((t) => t.name)).toEqual(['Built in'])
    } finally {
      await c.end()
    }
  })

  it.each([
    ['auto', 'zstd'],
    ['text', 'none'],
  ] as const)('--data-format %s (%s): every table comes back equal', async (dataFormat, compression) => {
    const out = path.join(dir, dataFormat)
    const {manifest: m} = await generateSnapshot({
      source: resolveConnection({db: src}),
      output: out,
      parallel: 2,
      compression,
      selection: {schemas: ['Zoo']},
      keepSlot: false,
      splitLargerThan: 64 * 1024,
      dataFormat,
      toolVersion: 'test',
    })
    const formats = Object.fromEntries(m.tables.map((t) => [t.name, tableFormat(t)]))
    expect(formats).toEqual(Object.fromEntries(TABLES.map((t) => [t, dataFormat === 'auto' && t === 'Built in' ? 'binary' : 'text'])))
    const zoo = m.tables.find((t) => t.name === 'Built in')!
    expect(zoo.parts.length).toBeGreaterThan(1)
    if (compression === 'none') {
      // Text files are COPY text: the first row starts with its id.
      const fd = openSync(path.join(out, zoo.parts[0]!.file), 'r')
      const head = Buffer.alloc(11)
      readSync(fd, head, 0, 11, 0)
      closeSync(fd)
      expect(head.toString('latin1')).not.toBe('PGCOPY\n\xff\r\n\0')
    }
    const dst = await freshDatabase('fmtdst')
    try {
      const r = await applySnapshot({target: resolveConnection({db: dst}), input: out, parallel: 2, verify: true, resume: false})
      expect(r.rows).toBe(3001 + 5 * 50 + 1)
      expect(await contents(dst)).toEqual(await contents(src))
      // The generated column was recomputed, the OID aliases name the target's own objects.
      expect(await sql(dst, `SELECT g FROM "Zoo"."Built in" WHERE id = 21`)).toEqual([{g: 42}])
      expect(await sql(dst, `SELECT r = '"Zoo"."Built in"'::regclass AS same FROM "Zoo".oid_alias LIMIT 1`)).toEqual([{same: true}])
    } finally {
      await dropDatabase(dst)
    }
  })
})
