// Rows written on the source while generate runs are either in the snapshot or arrive through the
// subscription: never both, never neither.

import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {resolveConnection} from '../../src/lib/connection/resolve.js'
import {applySnapshot} from '../../src/lib/snapshot/apply.js'
import {generateSnapshot} from '../../src/lib/snapshot/generate.js'
import {adminClient, dropDatabase, freshDatabase, sql} from '../helpers/pg.js'

const PRE = `CREATE TABLE ledger (id bigint, writer int, note text); CREATE TABLE other (id int, v text)`
const POST = `ALTER TABLE ledger ADD PRIMARY KEY (id); ALTER TABLE other ADD PRIMARY KEY (id)`

describe('snapshot consistency under concurrent writes', () => {
  let src: string
  beforeAll(async () => {
    src = await freshDatabase('conssrc')
    await sql(src, PRE + ';' + POST)
    await sql(src, `INSERT INTO ledger SELECT i, 0, repeat('x', 200) FROM generate_series(1, 50000) i; INSERT INTO other SELECT i, 'v' FROM generate_series(1, 20000) i`)
  })
  afterAll(async () => {
    await sql(src, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database() AND NOT active`)
    await dropDatabase(src)
  })

  // Split tables cut on page ranges (the default) and on key ranges: both read at the snapshot.
  it.each(['pages', 'key'] as const)('every committed row is in the target exactly once (split by %s)', async (splitBy) => {
    const dst = await freshDatabase(`consdst_${splitBy}`)
    const writer = await adminClient(src)
    let stop = false
    let next = splitBy === 'key' ? 2_000_000 : 1_000_000 // the second case writes to the same source
    let committed = 0
    // Single-row transactions, a multi-row one, updates and deletes, all while generate runs.
    const loop = (async () => {
      while (!stop) {
        await writer.query('BEGIN')
        await writer.query(`INSERT INTO ledger VALUES ($1, 1, 'during'), ($2, 1, 'during')`, [next, next + 1])
        await writer.query(`UPDATE other SET v = 'changed ' || $1 WHERE id = $2`, [next, (next % 20000) + 1])
        await writer.query(`DELETE FROM ledger WHERE id = $1`, [(next % 50000) + 1])
        await writer.query('COMMIT')
        next += 2
        committed++
      }
    })()
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'steep-cons-')), 'snap')
    try {
      await new Promise((r) => setTimeout(r, 200))
      await generateSnapshot({
        source: resolveConnection({db: src}),
        output: out,
        parallel: 2,
        compression: 'lz4',
        selection: {},
        keepSlot: true,
        splitLargerThan: 1024 * 1024,
        splitBy,
        toolVersion: 'test',
      })
      await new Promise((r) => setTimeout(r, 300))
    } finally {
      stop = true
      await loop
      await writer.end()
    }
    expect(committed).toBeGreaterThan(5)
    const r = await applySnapshot({target: resolveConnection({db: dst}), input: out, parallel: 2, verify: true, resume: false, subscribeFrom: resolveConnection({db: src})})
    const q = `SELECT (SELECT count(*) FROM ledger)::int n, (SELECT sum(hashtext(l::text)) FROM ledger l)::text lh, (SELECT sum(hashtext(o::text)) FROM other o)::text oh`
    let same = false
    let a: unknown
    let b: unknown
    for (let i = 0; i < 150 && !same; i++) {
      ;[a] = await sql(src, q)
      ;[b] = await sql(dst, q)
      same = JSON.stringify(a) === JSON.stringify(b)
      if (!same) await new Promise((res) => setTimeout(res, 200))
    }
    expect(b).toEqual(a)
    await sql(dst, `ALTER SUBSCRIPTION ${r.subscription} DISABLE; ALTER SUBSCRIPTION ${r.subscription} SET (slot_name = NONE); DROP SUBSCRIPTION ${r.subscription}`)
    await dropDatabase(dst)
  })
})
