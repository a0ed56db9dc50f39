// The SQL API: start_snapshot queues a generate job that a worker runs; snapshot_progress reads it.

import {mkdtempSync, existsSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {resolveConnection} from '../../src/lib/connection/resolve.js'
import {Worker} from '../../src/direct/worker.js'
import {runCli} from '../helpers/cli.js'
import {dropDatabase, freshDatabase, sql} from '../helpers/pg.js'

describe('steep_repl.start_snapshot / snapshot_progress', () => {
  let db: string
  beforeAll(async () => {
    db = await freshDatabase('snapsql')
    await sql(db, `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, 'x' FROM generate_series(1, 1000) i`)
    expect((await runCli(['install', '-d', db])).code).toBe(0)
  })
  afterAll(async () => {
    await sql(db, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database() AND NOT active`)
    await dropDatabase(db)
  })

  it('rejects bad arguments and nothing is queued', async () => {
    for (const call of [`start_snapshot('relative/path')`, `start_snapshot('/x/../etc')`, `start_snapshot('/x', 'brotli')`, `start_snapshot('/x', 'zstd', 0)`]) {
      await expect(sql(db, `SELECT * FROM steep_repl.${call}`)).rejects.toThrow()
    }
    expect(await sql(db, `SELECT id FROM steep_repl.work_queue`)).toEqual([])
  })

  it('queues a job a worker runs, with progress readable from SQL', async () => {
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'steep-sqlapi-')), 'snap')
    const [row] = await sql(db, `SELECT * FROM steep_repl.start_snapshot($1, 'lz4', 2)`, [out])
    expect(row).toMatchObject({status: 'pending', storage_path: out, compression: 'lz4'})
    const [pending] = await sql(db, `SELECT * FROM steep_repl.snapshot_progress()`)
    expect(pending).toMatchObject({snapshot_id: row.snapshot_id, job_status: 'pending'})
    const worker = new Worker({db: resolveConnection({db}), operations: ['snapshot_generate'], version: 'test', pollMs: 200, onEvent: () => {}})
    await worker.start()
    try {
      const [done] = await sql(db, `SELECT status FROM steep_repl.wait_job($1, 60)`, [row.job_id])
      expect(done.status).toBe('complete')
    } finally {
      await worker.stop()
    }
    const [p] = await sql(db, `SELECT * FROM steep_repl.snapshot_progress($1)`, [row.snapshot_id])
    expect(p).toMatchObject({status: 'complete', overall_percent: 100, job_status: 'complete', rows_written: '1000'})
    expect(existsSync(path.join(out, 'manifest.json'))).toBe(true)
  })
})
