// The data path of generate/apply without the job layer: exported slot, imported snapshots, parts
// copied to compressed files and back, checksums equal, rows written after the slot not included.

import {existsSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {openClient} from '../../src/lib/connection/connect.js'
import {resolveConnection} from '../../src/lib/connection/resolve.js'
import {COMPRESSIONS, EXTENSION} from '../../src/lib/snapshot/codec.js'
import {copyFileToTable, copyPartDirect, copyPartToFile, FileChangedError} from '../../src/lib/snapshot/copy.js'
import {fileIdentity} from '../../src/lib/snapshot/manifest-io.js'
import {planParts} from '../../src/lib/snapshot/plan.js'
import {createExportedSlot, importSnapshot, prepareSession} from '../../src/lib/snapshot/source.js'
import {Meter} from '../../src/lib/snapshot/streams.js'
import {dropDatabase, freshDatabase, sql} from '../helpers/pg.js'
import copyStreams from 'pg-copy-streams'
import {pipeline} from 'node:stream/promises'
import {Writable} from 'node:stream'
import type pg from 'pg'

const TABLE_DDL = `CREATE TABLE "Odd ""Name"" tbl" (
  id bigint PRIMARY KEY, t text, b bytea, j jsonb, a int[], n numeric, f float8, ts timestamptz, iv interval, u uuid,
  g int GENERATED ALWAYS AS (id * 2) STORED)`

const FILL = `INSERT INTO "Odd ""Name"" tbl" (id, t, b, j, a, n, f, ts, iv, u)
  SELECT i,
         CASE i % 7 WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN E'back\\\\slash\\ttab\\nnewline' WHEN 3 THEN 'ünïcødé ✓ 𝄞' ELSE 'row ' || i END,
         CASE WHEN i % 5 = 0 THEN '\\x00ff00'::bytea ELSE NULL END,
         jsonb_build_object('i', i, 'nested', jsonb_build_array(i, 'x')),
         ARRAY[i, NULL, -i],
         CASE i % 4 WHEN 0 THEN 'NaN' WHEN 1 THEN '1e-100' WHEN 2 THEN '-99999999999999999999.000000001' ELSE i::numeric END,
         CASE i % 4 WHEN 0 THEN 'Infinity' WHEN 1 THEN '-Infinity' WHEN 2 THEN 'NaN' ELSE i / 3.0 END,
         CASE WHEN i % 3 = 0 THEN 'infinity'::timestamptz ELSE '2026-01-01 00:00:00+00'::timestamptz + i * interval '1 minute' END,
         i * interval '1 second',
         md5(i::text)::uuid
    FROM generate_series(1, 20000) i`

const COLS = ['id', 't', 'b', 'j', 'a', 'n', 'f', 'ts', 'iv', 'u']
const REF = {schema: 'public', name: 'Odd "Name" tbl', columns: COLS}

async function tableSha(client: pg.Client): Promise<{sha: string; rows: number}> {
  const m = new Meter()
  const source = client.query(copyStreams.to(`COPY (SELECT ${COLS.map((c) => `"${c}"`).join(', ')} FROM "Odd ""Name"" tbl" ORDER BY id) TO STDOUT`))
  await pipeline(source, m, new Writable({write: (_c, _e, cb) => cb()}))
  return {sha: m.digest(), rows: source.rowCount}
}

describe('snapshot data path', () => {
  let src: string
  let dst: string
  const dir = mkdtempSync(path.join(tmpdir(), 'steep-copy-'))

  beforeAll(async () => {
    src = await freshDatabase('copysrc')
    dst = await freshDatabase('copydst')
    await sql(src, TABLE_DDL)
    await sql(src, FILL)
    await sql(dst, TABLE_DDL)
  })
  afterAll(async () => {
    await dropDatabase(src)
    await dropDatabase(dst)
    rmSync(dir, {recursive: true, force: true})
  })

  it('loads a verified file without hashing it again, and refuses one changed or replaced since (the part rolled back)', async () => {
    await sql(dst, `CREATE TABLE vt (id int, t text)`)
    const ref = {schema: 'public', name: 'vt', columns: ['id', 't']}
    const file = path.join(dir, 'verified.copy')
    const text = '1\tone\n2\ttwo\n3\t\\N\n'
    writeFileSync(file, text)
    const identity = fileIdentity(statSync(file, {bigint: true}))
    const target = await openClient(resolveConnection({db: dst}))
    try {
      await target.query('BEGIN')
      const r = await copyFileToTable(target, ref, file, 'none', false, {verifiedIdentity: identity})
      expect(r).toEqual({rows: 3, rawBytes: Buffer.byteLength(text), sha256: '', dataSha256: ''})
      await target.query('COMMIT')
      // Same bytes written again: the times move, the identity no longer matches.
      await new Promise((res) => setTimeout(res, 20))
      writeFileSync(file, text)
      await target.query('BEGIN')
      await expect(copyFileToTable(target, ref, file, 'none', false, {verifiedIdentity: identity})).rejects.toBeInstanceOf(FileChangedError)
      await target.query('ROLLBACK')
      // Replaced by another file under the same name (another inode).
      const again = fileIdentity(statSync(file, {bigint: true}))
      writeFileSync(`${file}.new`, text)
      renameSync(`${file}.new`, file)
      await target.query('BEGIN')
      await expect(copyFileToTable(target, ref, file, 'none', false, {verifiedIdentity: again})).rejects.toThrow(/changed after verification/)
      await target.query('ROLLBACK')
      expect((await target.query(`SELECT count(*)::int AS n FROM vt`)).rows[0].n).toBe(3)
    } finally {
      await target.end()
    }
  })

  it('copies split parts at the exported snapshot, through every codec, and back identically', async () => {
    const params = resolveConnection({db: src})
    const slot = await createExportedSlot(params, `t_${Date.now()}`, true)
    try {
      expect(slot.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/)
      const readers = await Promise.all([openClient(params), openClient(params)])
      for (const r of readers) {
        await prepareSession(r)
        await importSnapshot(r, slot.snapshotName)
      }
      // Written after the slot: must not be in the snapshot.
      await sql(src, `INSERT INTO "Odd ""Name"" tbl" (id, t) VALUES (999999, 'late')`)
      await sql(src, `DELETE FROM "Odd ""Name"" tbl" WHERE id = 1`)

      const [{min, max, bytes}] = await readers[0]!.query(`SELECT min(id)::text min, max(id)::text max, pg_relation_size('"Odd ""Name"" tbl"')::float8 bytes FROM "Odd ""Name"" tbl"`).then((r) => r.rows)
      const parts = planParts([{schema: 'public', name: REF.name, bytes, pages: Math.ceil(bytes / 8192), rows: 20000, intKey: {column: 'id', min, max}}], {splitLargerThan: bytes / 4, by: 'key'})
      expect(parts.length).toBe(4)

      for (const compression of COMPRESSIONS) {
        const files = await Promise.all(
          parts.map(async (p, i) => {
            const file = path.join(dir, `${compression}.${p.index}.copy${EXTENSION[compression]}`)
            // Every other part with the COPY data's own hash (always there without compression).
            const dataChecksum = i % 2 === 0
            const r = await copyPartToFile(readers[i % 2]!, REF, p.range, file, compression, undefined, {dataChecksum})
            // The fsync and rename follow the COPY: until sealed, the file has only its temporary name.
            await r.sealed
            expect(existsSync(file)).toBe(true)
            expect(existsSync(`${file}.partial`)).toBe(false)
            if (compression === 'none') expect(r.dataSha256).toBe(r.sha256)
            else if (dataChecksum) expect(r.dataSha256).toMatch(/^[0-9a-f]{64}$/)
            else expect(r.dataSha256).toBeNull()
            return {file, ...r}
          }),
        )
        expect(files.reduce((s, f) => s + f.rows, 0)).toBe(20000)
        expect(readdirSync(dir).some((f) => f.endsWith('.partial'))).toBe(false)
        const target = await openClient(resolveConnection({db: dst}))
        try {
          await target.query('BEGIN')
          await target.query(`TRUNCATE "Odd ""Name"" tbl"`)
          for (const f of files) {
            const back = await copyFileToTable(target, REF, f.file, compression, false, {dataChecksum: f.dataSha256 !== null})
            expect(back.sha256).toBe(f.sha256)
            expect(back.dataSha256).toBe(f.dataSha256 ?? '')
            expect(back.rows).toBe(f.rows)
          }
          await target.query('COMMIT')
          const a = await tableSha(readers[0]!)
          const b = await tableSha(target)
          expect(b).toEqual(a)
          expect(a.rows).toBe(20000)
          const [{g}] = (await target.query(`SELECT g FROM "Odd ""Name"" tbl" WHERE id = 21`)).rows
          expect(g).toBe(42)
        } finally {
          await target.end()
        }
      }

      // And straight from connection to connection (node init's path).
      const target = await openClient(resolveConnection({db: dst}))
      await target.query('BEGIN')
      await target.query(`TRUNCATE "Odd ""Name"" tbl"`)
      let rows = 0
      for (const p of parts) rows += (await copyPartDirect(readers[0]!, target, REF, p.range, false)).rows
      await target.query('COMMIT')
      expect(rows).toBe(20000)
      expect(await tableSha(target)).toEqual(await tableSha(readers[1]!))
      await target.end()
      for (const r of readers) await r.end()
    } finally {
      await slot.conn.end()
    }
  })
})
