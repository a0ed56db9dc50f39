// The snapshot commands as users run them: exit codes, --json, records, bad input leaving
// everything as it was.

import {createHash} from 'node:crypto'
import {mkdirSync, mkdtempSync, readFileSync, writeFileSync, existsSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {gunzipSync} from 'node:zlib'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {runCli} from '../helpers/cli.js'
import {dropDatabase, freshDatabase, sql, startTestServer} from '../helpers/pg.js'
import type {ServerHandle} from '../helpers/servers.js'
import {manifestChecksum} from '../../src/lib/snapshot/manifest.js'
import {resolveConnection} from '../../src/lib/connection/resolve.js'
import {generateSnapshot} from '../../src/lib/snapshot/generate.js'

describe('snapshot commands', () => {
  let src: string
  const dir = mkdtempSync(path.join(tmpdir(), 'steep-snapcli-'))
  const out = path.join(dir, 'snap')
  let snapshotId: string
  beforeAll(async () => {
    src = await freshDatabase('snapcli')
    await sql(src, `CREATE TABLE "Item" (id int PRIMARY KEY, "Label" text UNIQUE); INSERT INTO "Item" SELECT i, 'l' || i FROM generate_series(1, 3000) i;
                    CREATE SEQUENCE never_used`)
    expect((await runCli(['install', '-d', src])).code).toBe(0)
  })
  afterAll(async () => {
    await sql(src, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database() AND NOT active`)
    await dropDatabase(src)
  })

  it('generate --direct --json returns the job document with the result', async () => {
    const r = await runCli(['snapshot', 'generate', '-d', src, '--output', out, '--direct', '--json', '--compression', 'gzip'])
    expect(r.code, r.stderr).toBe(0)
    const job = r.json()
    expect(job).toMatchObject({operation: 'snapshot_generate', status: 'complete', executor: 'direct'})
    expect(job.result).toMatchObject({tables: 1, rows: 3000})
    expect(job.params).not.toHaveProperty('password')
    snapshotId = job.result.snapshotId
    const m = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8'))
    // Compressed without --data-checksum: the files' own SHA-256 only.
    expect(m.formatVersion).toBe(3)
    expect(m.tables[0].parts.map((p: {dataSha256: unknown}) => p.dataSha256)).toEqual([null])
  })

  it('records the snapshot with its kept slot; list and show report it', async () => {
    const list = (await runCli(['snapshot', 'list', '-d', src, '--json'])).json()
    expect(list.snapshots[0]).toMatchObject({snapshot_id: snapshotId, status: 'complete', overall_percent: 100, slot_exists: true})
    const show = await runCli(['snapshot', 'show', snapshotId, '-d', src])
    expect(show.code).toBe(0)
    expect(show.stdout).toMatch(/complete/)
    expect((await runCli(['snapshot', 'show', 'snap_nope', '-d', src])).code).toBe(1)
  })

  it('generate --data-checksum records the SHA-256 of each compressed part\'s COPY data; apply --no-verify checks it', async () => {
    const withData = path.join(dir, 'with-data')
    const r = await runCli(['snapshot', 'generate', '-d', src, '--output', withData, '--direct', '--no-slot', '--compression', 'gzip', '--data-checksum'])
    expect(r.code, r.stderr).toBe(0)
    const m = JSON.parse(readFileSync(path.join(withData, 'manifest.json'), 'utf8'))
    const part = m.tables[0].parts[0]
    const data = gunzipSync(readFileSync(path.join(withData, part.file)))
    expect(part.dataSha256).toBe(createHash('sha256').update(data).digest('hex'))
    expect(part.rawBytes).toBe(data.length)
    const dst = await freshDatabase('snapclidata')
    try {
      const a = await runCli(['snapshot', 'apply', '-d', dst, '--input', withData, '--direct', '--no-verify'])
      expect(a.code, a.stderr).toBe(0)
      expect(await sql(dst, `SELECT count(*)::int AS n FROM "Item"`)).toEqual([{n: 3000}])
      // A manifest whose dataSha256 is not the data's (resealed, so only that differs): refused.
      const wrong = structuredClone(m)
      wrong.tables[0].parts[0].dataSha256 = 'f'.repeat(64)
      wrong.checksum = manifestChecksum(wrong)
      writeFileSync(path.join(withData, 'manifest.json'), JSON.stringify(wrong))
      const bad = await runCli(['snapshot', 'apply', '-d', dst, '--input', withData, '--direct', '--no-verify', '--clean'])
      expect(bad.code).not.toBe(0)
      expect(bad.stderr).toMatch(/does not match the manifest/)
    } finally {
      await dropDatabase(dst)
    }
  })

  it('refuses a non-empty output directory without --force, leaving it as it was', async () => {
    const r = await runCli(['snapshot', 'generate', '-d', src, '--output', out, '--direct'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/not empty/)
    const foreign = path.join(dir, 'foreign')
    mkdirSync(foreign)
    writeFileSync(path.join(foreign, 'keep.txt'), 'mine')
    const f = await runCli(['snapshot', 'generate', '-d', src, '--output', foreign, '--direct', '--force'])
    expect(f.code).toBe(2)
    expect(f.stderr).toMatch(/not a snapshot/)
    expect(readFileSync(path.join(foreign, 'keep.txt'), 'utf8')).toBe('mine')
    // The refused snapshot directory is intact.
    expect((await runCli(['snapshot', 'verify', out])).code).toBe(0)
  })

  it.each([
    [['--compression', 'brotli'], /Expected --compression/],
    [['--level', '42', '--compression', 'gzip'], /out of range/],
    [['--split-larger-than', 'huge'], /invalid size/],
    [['--split-by', 'hash'], /Expected --split-by/],
    [['--data-format', 'csv'], /Expected --data-format/],
    [['--slot', 'Bad-Name'], /invalid slot name/],
    [['--slot', 'x', '--no-slot'], /cannot also be provided/],
    [['--table', 'public.nosuch'], /no such table/],
  ])('rejects %j with exit 2 and queues nothing', async (args, re) => {
    const before = await sql(src, `SELECT count(*)::int n FROM steep_repl.work_queue`)
    const r = await runCli(['snapshot', 'generate', '-d', src, '--output', path.join(dir, 'bad'), '--direct', ...args])
    expect(r.code === 2 || r.code === 1).toBe(true)
    expect(r.stderr).toMatch(re)
    if (!String(re).includes('no such table')) expect(await sql(src, `SELECT count(*)::int n FROM steep_repl.work_queue`)).toEqual(before)
  })

  it('verify passes, then fails with exit 1 on a flipped byte and on a tampered path', async () => {
    expect((await runCli(['snapshot', 'verify', out])).code).toBe(0)
    const copy = path.join(dir, 'tampered')
    const {cpSync} = await import('node:fs')
    cpSync(out, copy, {recursive: true})
    const m = JSON.parse(readFileSync(path.join(copy, 'manifest.json'), 'utf8'))
    m.tables[0].parts[0].file = '../../etc/passwd'
    m.checksum = manifestChecksum(m)
    writeFileSync(path.join(copy, 'manifest.json'), JSON.stringify(m))
    const r = await runCli(['snapshot', 'verify', copy, '--json'])
    expect(r.code).toBe(1)
    expect(r.json().error.message).toMatch(/escapes the snapshot directory/)
  })

  it('apply refuses a target that already has the tables, and applies into an empty one', async () => {
    const dst = await freshDatabase('snapclidst')
    try {
      await sql(dst, `CREATE TABLE "Item" (id int)`)
      const refused = await runCli(['snapshot', 'apply', '-d', dst, '--input', out, '--direct'])
      expect(refused.code).toBe(1)
      expect(refused.stderr).toMatch(/already has 1 of the snapshot's tables/)
      await sql(dst, `DROP TABLE "Item"`)
      const ok = await runCli(['snapshot', 'apply', '-d', dst, '--input', out, '--direct', '--json'])
      expect(ok.code, ok.stderr).toBe(0)
      expect(ok.json().result).toMatchObject({rows: 3000, tables: 1})
      const [{n, u}] = await sql(dst, `SELECT (SELECT count(DISTINCT "Label") FROM "Item")::int n, nextval('never_used')::int u`)
      expect(n).toBe(3000)
      expect(u).toBe(1)
      const again = await runCli(['snapshot', 'apply', '-d', dst, '--input', out, '--direct'])
      expect(again.code).toBe(1)
      expect(again.stderr).toMatch(/already applied/)
      const both = await runCli(['snapshot', 'apply', '-d', dst, '--input', out, '--direct', '--clean', '--resume'])
      expect(both.code).toBe(2)
      expect(both.stderr).toMatch(/--resume|--clean/)
      // --clean replaces what is there (here: rows changed since the first apply).
      await sql(dst, `DELETE FROM "Item" WHERE id % 2 = 0`)
      const clean = await runCli(['snapshot', 'apply', '-d', dst, '--input', out, '--direct', '--clean', '--json'])
      expect(clean.code, clean.stderr).toBe(0)
      const [{m}] = await sql(dst, `SELECT count(DISTINCT "Label")::int m FROM "Item"`)
      expect(m).toBe(3000)
    } finally {
      await dropDatabase(dst)
    }
  })

  it('delete --drop-slot removes the record, the slot and the publication', async () => {
    const r = await runCli(['snapshot', 'delete', snapshotId, '-d', src, '--drop-slot', '--json'])
    expect(r.code).toBe(0)
    expect(r.json()).toMatchObject({deleted: true, slotDropped: true, publicationDropped: true})
    // This database's slots only: other test files generate snapshots on the same server meanwhile.
    expect(await sql(src, `SELECT 1 FROM pg_replication_slots WHERE slot_name LIKE 'steep_snap%' AND database = current_database()`)).toEqual([])
    expect(await sql(src, `SELECT 1 FROM pg_publication`)).toEqual([])
  })
})

describe('snapshot generate on a server with wal_level=replica', () => {
  let server: ServerHandle
  beforeAll(async () => {
    server = await startTestServer({settings: {wal_level: 'replica'}})
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('fails with the fix, and leaves no files and no slot', async () => {
    await runCli(['install', '-d', server.url()])
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'steep-replica-')), 'snap')
    const r = await runCli(['snapshot', 'generate', '-d', server.url(), '--output', out, '--direct'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/wal_level = replica/)
    expect(existsSync(path.join(out, 'manifest.json'))).toBe(false)
    expect(await sql(server.url(), `SELECT 1 FROM pg_replication_slots`)).toEqual([])
  })

  it('closes every connection it opened ahead of the check (in-process, so a leak would stay)', async () => {
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'steep-replica-')), 'snap')
    const source = resolveConnection({db: server.url()})
    await expect(generateSnapshot({source, output: out, parallel: 4, compression: 'none', selection: {}, keepSlot: false, toolVersion: 'test'})).rejects.toThrow(
      /wal_level = replica/,
    )
    // Connections end asynchronously on the server after the client's Terminate.
    let left: unknown[] = []
    for (let i = 0; i < 50; i++) {
      left = await sql(server.url(), `SELECT pid FROM pg_stat_activity WHERE application_name = 'steep-repl snapshot'`)
      if (left.length === 0) break
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(left).toEqual([])
  })
})
