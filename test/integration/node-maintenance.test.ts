// node reinit of one table while replication runs, and node cancel after the init's process was
// killed mid-copy (SIGKILL: it cleaned nothing itself).

import {spawn} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {BIN, runCli} from '../helpers/cli.js'
import {adminClient, dropDatabase, freshDatabase, sql} from '../helpers/pg.js'
import {resolveConnection} from '../../src/lib/connection/resolve.js'
import {initNode} from '../../src/lib/node/init.js'
import {generateSnapshot} from '../../src/lib/snapshot/generate.js'
import {reinitNode} from '../../src/lib/node/maintenance.js'
import {ensureRegistry, registerNode} from '../../src/lib/node/registry.js'

const sameDb = `subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`

async function dropSubs(d: string): Promise<void> {
  for (const s of await sql(d, `SELECT subname FROM pg_subscription WHERE ${sameDb}`)) {
    await sql(d, `ALTER SUBSCRIPTION "${s.subname}" DISABLE`)
    await sql(d, `ALTER SUBSCRIPTION "${s.subname}" SET (slot_name = NONE)`)
    await sql(d, `DROP SUBSCRIPTION "${s.subname}"`)
  }
}

/** Drops every slot of the database, waiting for walsenders of dropped subscriptions to go away. */
async function dropSlots(d: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    await sql(d, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database() AND NOT active`)
    if (!(await sql(d, `SELECT 1 FROM pg_replication_slots WHERE database = current_database()`)).length) return
    await new Promise((res) => setTimeout(res, 100))
  }
}

async function waitSynced(src: string, slot: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const r = await sql(src, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) AS lag FROM pg_replication_slots WHERE slot_name = $1`, [slot])
    if (r.length && Number(r[0].lag) <= 0) return
    await new Promise((res) => setTimeout(res, 100))
  }
}

const orderSum = (u: string) => sql(u, `SELECT count(*)::int AS n, md5(string_agg(o::text, ',' ORDER BY id)) AS h FROM "Order" o`)

// Catch-up after a reinit or a two-step handover is slower on PostgreSQL 15 under load: more room than the default 60 s.
describe('node reinit and cancel', {timeout: 180_000}, () => {
  let src: string
  let dst: string
  let big: string
  let bigDst: string
  beforeAll(async () => {
    ;[src, dst, big, bigDst] = await Promise.all([freshDatabase('nre_src'), freshDatabase('nre_dst'), freshDatabase('nre_big'), freshDatabase('nre_bigdst')])
    await sql(src, `CREATE TABLE item (id int PRIMARY KEY, v int); INSERT INTO item SELECT i, i FROM generate_series(1, 2000) i;
      CREATE TABLE "Order" (id serial PRIMARY KEY, item_id int REFERENCES item (id), qty int); INSERT INTO "Order" (item_id, qty) SELECT 1 + i % 2000, i FROM generate_series(1, 20000) i`)
    await sql(big, `CREATE TABLE payload (id int PRIMARY KEY, body text); INSERT INTO payload SELECT i, repeat(md5(i::text), 6) FROM generate_series(1, 400000) i`)
    for (const d of [dst, bigDst]) {
      const c = await adminClient(d)
      await ensureRegistry(c)
      await registerNode(c, {nodeId: 'n2', host: 'localhost', port: 5432, priority: 50})
      await c.end()
    }
  })
  afterAll(async () => {
    for (const d of [dst, bigDst]) await dropSubs(d)
    for (const d of [src, big]) await dropSlots(d)
    for (const d of [src, dst, big, bigDst]) await dropDatabase(d)
  })

  it('reinit of one table while replication runs re-copies it and catches it up', async () => {
    const r = await initNode({target: resolveConnection({db: dst}), source: resolveConnection({db: src}), nodeId: 'n2', fromNodeId: 'n1', parallel: 2, schemaSync: 'strict', selection: {}})
    expect(r.state).toBe('synchronized')
    // The copy on the target drifts (a local write nobody replicates).
    await sql(dst, `UPDATE "Order" SET qty = -1 WHERE id <= 10`)
    expect(await orderSum(dst)).not.toEqual(await orderSum(src))
    let stop = false
    const writer = (async () => {
      const c = await adminClient(src)
      let i = 0
      while (!stop) {
        await c.query(`INSERT INTO "Order" (item_id, qty) VALUES (1, $1)`, [i])
        await c.query(`UPDATE "Order" SET qty = qty + 1 WHERE id = $1`, [1 + (i++ % 20000)])
        await c.query(`UPDATE item SET v = v + 1 WHERE id = $1`, [1 + (i % 2000)])
      }
      await c.end()
    })()
    const states: string[] = []
    const poll = setInterval(() => {
      void sql(dst, `SELECT init_state FROM steep_repl.nodes WHERE node_id = 'n2'`).then((x) => states.push(x[0]?.init_state)).catch(() => {})
    }, 50)
    const rr = await reinitNode({target: resolveConnection({db: dst}), source: resolveConnection({db: src}), nodeId: 'n2', mode: {tables: ['public.Order'.replace('Order', '"Order"')]}, timeoutMs: 60_000})
    clearInterval(poll)
    stop = true
    await writer
    expect(rr).toMatchObject({state: 'synchronized', tables: ['public.Order']})
    expect(states).toContain('reinitializing')
    await waitSynced(src, r.slot)
    await new Promise((res) => setTimeout(res, 300))
    expect(await orderSum(dst)).toEqual(await orderSum(src))
    expect(await sql(dst, `SELECT md5(string_agg(i::text, ',' ORDER BY id)) AS h FROM item i`)).toEqual(await sql(src, `SELECT md5(string_agg(i::text, ',' ORDER BY id)) AS h FROM item i`))
    // The reinit truncate carried the steep_reinit origin.
    expect((await sql(dst, `SELECT count(*)::int AS n FROM pg_replication_origin WHERE roname = 'steep_reinit'`))[0].n).toBe(1)
    // Usage errors.
    let cli = await runCli(['node', 'reinit', 'n2', '-d', dst, '--source', src])
    expect(cli.code).toBe(2)
    cli = await runCli(['node', 'reinit', 'n2', '-d', dst, '--source', src, '--full', '--schema', 'public'])
    expect(cli.code).toBe(2)
  })

  it('node cancel after the init process was killed mid-copy leaves no slot, publication, subscription or table', async () => {
    const child = spawn(process.execPath, [BIN, 'node', 'init', 'n2', '--from', 'big', '-d', bigDst, '--source', big, '--direct', '--parallel', '1', '--split-larger-than', '0'], {
      env: {...process.env, CI: '1', NO_COLOR: '1', XDG_CONFIG_HOME: '/nonexistent-steep-test-config'},
      stdio: 'ignore',
    })
    let phase = ''
    for (let i = 0; i < 400 && phase !== 'copying'; i++) {
      await new Promise((res) => setTimeout(res, 50))
      const r = await sql(bigDst, `SELECT phase, bytes_copied FROM steep_repl.init_progress WHERE node_id = 'n2'`).catch(() => [])
      if (r[0]?.phase === 'copying' && Number(r[0].bytes_copied) > 0) phase = 'copying'
    }
    expect(phase).toBe('copying')
    child.kill('SIGKILL')
    await new Promise((res) => child.on('exit', res))
    expect(await sql(big, `SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = 'steep_sub_n2_from_big'`)).toEqual([{n: 1}])
    const r = await runCli(['node', 'cancel', 'n2', '-d', bigDst, '--source', big, '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.json()).toMatchObject({nodeId: 'n2', slotDropped: true, publicationDropped: true, tablesDropped: 1, state: 'failed'})
    expect(await sql(big, `SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = 'steep_sub_n2_from_big'`)).toEqual([{n: 0}])
    expect(await sql(big, `SELECT count(*)::int AS n FROM pg_publication`)).toEqual([{n: 0}])
    expect(await sql(bigDst, `SELECT count(*)::int AS n FROM pg_class WHERE relname = 'payload'`)).toEqual([{n: 0}])
    expect((await sql(bigDst, `SELECT init_state FROM steep_repl.nodes WHERE node_id = 'n2'`))[0].init_state).toBe('failed')
    // The node can be initialized again.
    const again = await runCli(['node', 'progress', 'n2', '-d', bigDst])
    expect(again.stdout).toMatch(/State:\s+failed/)
  })

  it('two-step path: snapshot generate on the source, node complete on the target, then writes arrive once', async () => {
    const two = await freshDatabase('nre_two')
    const dir = mkdtempSync(path.join(tmpdir(), 'steep-node-two-'))
    try {
      const c = await adminClient(two)
      await ensureRegistry(c)
      await registerNode(c, {nodeId: 'n3', host: 'localhost', port: 5432, priority: 50})
      await c.end()
      const g = await generateSnapshot({source: resolveConnection({db: src}), output: path.join(dir, 's'), parallel: 2, compression: 'gzip', selection: {}, keepSlot: true, toolVersion: 'test'})
      await sql(src, `INSERT INTO "Order" (item_id, qty) VALUES (1, 424242)`)
      const r = await runCli(['node', 'complete', 'n3', '--from', 'n1', '-d', two, '--source', src, '--input', path.join(dir, 's'), '--json'])
      expect(r.code, r.stderr + r.stdout).toBe(0)
      expect(r.json()).toMatchObject({state: 'synchronized', snapshotId: g.snapshotId, subscription: 'steep_sub_n3_from_n1'})
      await waitSynced(src, g.manifest.slot!.name)
      await new Promise((res) => setTimeout(res, 300))
      expect(await orderSum(two)).toEqual(await orderSum(src))
      expect((await sql(two, `SELECT count(*)::int AS n FROM "Order" WHERE qty = 424242`))[0].n).toBe(1)
      expect((await sql(two, `SELECT init_state FROM steep_repl.nodes WHERE node_id = 'n3'`))[0].init_state).toBe('synchronized')
    } finally {
      await dropSubs(two)
      await dropDatabase(two)
      rmSync(dir, {recursive: true, force: true})
    }
  })

  it('node init --bidirectional links both directions once synchronized (refused up front before PostgreSQL 16)', async () => {
    const [a, b] = await Promise.all([freshDatabase('nre_bia'), freshDatabase('nre_bib')])
    try {
      await sql(a, `CREATE TABLE kv (k text PRIMARY KEY, v int); INSERT INTO kv VALUES ('a', 1)`)
      const c = await adminClient(b)
      await ensureRegistry(c)
      await registerNode(c, {nodeId: 'b', host: 'localhost', port: 5432, priority: 50})
      await c.end()
      const major = Number((await sql(a, `SELECT current_setting('server_version_num')::int / 10000 AS m`))[0].m)
      const r = await runCli(['node', 'init', 'b', '--from', 'a', '-d', b, '--source', a, '--direct', '--bidirectional', '--json'])
      if (major < 16) {
        expect(r.code).toBe(1)
        expect(r.stdout + r.stderr).toMatch(/--bidirectional needs PostgreSQL 16/)
        expect(await sql(a, `SELECT slot_name FROM pg_replication_slots WHERE slot_name = 'steep_sub_b_from_a'`)).toEqual([])
        return
      }
      expect(r.code, r.stdout + r.stderr).toBe(0)
      expect(r.json()).toMatchObject({status: 'complete', link: {subscription: 'steep_sub_a_from_b'}})
      await sql(b, `INSERT INTO kv VALUES ('from-b', 2)`)
      for (let i = 0; i < 100 && !(await sql(a, `SELECT 1 FROM kv WHERE k = 'from-b'`)).length; i++) await new Promise((res) => setTimeout(res, 100))
      expect(await sql(a, `SELECT k, v FROM kv ORDER BY k`)).toEqual([{k: 'a', v: 1}, {k: 'from-b', v: 2}])
    } finally {
      await dropSubs(a)
      await dropSubs(b)
      for (const d of [a, b]) await dropSlots(d)
      await dropDatabase(a)
      await dropDatabase(b)
    }
  })
})
