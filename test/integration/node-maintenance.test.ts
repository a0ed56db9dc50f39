// node reinit of one table while replication runs (as a job), node cancel after the init's process
// was killed mid-copy (SIGKILL: it cleaned nothing itself), the two-step path (node prepare →
// snapshot apply → node complete) and a prepare that fails, and init --bidirectional. Three real
// servers: the sources on the shared one, the targets on two extra ones. Every wait polls a
// condition with a deadline (no fixed sleeps), so the file holds under load and on PostgreSQL 15.

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
import {dropSlots, dropSubs, registerTarget, type Server, startNodeServers, stopServers, waitFor, waitSame} from './node-support.js'

const orderSum = (u: string) => sql(u, `SELECT count(*)::int AS n, md5(string_agg(o::text, ',' ORDER BY id)) AS h FROM "Order" o`)
const itemSum = (u: string) => sql(u, `SELECT count(*)::int AS n, md5(string_agg(i::text, ',' ORDER BY id)) AS h FROM item i`)
const stateOf = async (u: string, id: string) => (await sql(u, `SELECT init_state FROM steep_repl.nodes WHERE node_id = $1`, [id]))[0]?.init_state

describe('node reinit, cancel, prepare/complete', {timeout: 180_000}, () => {
  let servers: Server[] = []
  let src: string
  let big: string
  let dst: string
  let bigDst: string
  const dirs: string[] = []
  const tmp = () => {
    const d = mkdtempSync(path.join(tmpdir(), 'steep-node-two-'))
    dirs.push(d)
    return d
  }
  beforeAll(async () => {
    servers = await startNodeServers(2)
    ;[src, big] = await Promise.all([freshDatabase('nre_src'), freshDatabase('nre_big')])
    ;[dst, bigDst] = await Promise.all([freshDatabase('nre_dst', servers[0]!.url()), freshDatabase('nre_bigdst', servers[1]!.url())])
    await sql(src, `CREATE TABLE item (id int PRIMARY KEY, v int); INSERT INTO item SELECT i, i FROM generate_series(1, 2000) i;
      CREATE TABLE "Order" (id serial PRIMARY KEY, item_id int REFERENCES item (id), qty int); INSERT INTO "Order" (item_id, qty) SELECT 1 + i % 2000, i FROM generate_series(1, 20000) i`)
    await sql(big, `CREATE TABLE payload (id int PRIMARY KEY, body text); INSERT INTO payload SELECT i, repeat(md5(i::text), 6) FROM generate_series(1, 400000) i`)
    await registerTarget(dst, 'n2', servers[0]!.info.port)
    await registerTarget(bigDst, 'n2', servers[1]!.info.port)
  })
  afterAll(async () => {
    for (const d of [dst, bigDst, src]) await dropSubs(d).catch(() => {})
    for (const d of [src, big]) await dropSlots(d)
    for (const d of [src, big]) await dropDatabase(d)
    await stopServers(servers)
    for (const d of dirs) rmSync(d, {recursive: true, force: true})
  })

  it('reinit of one table while replication runs: a job that re-copies it and catches it up', async () => {
    const r = await initNode({target: resolveConnection({db: dst}), source: resolveConnection({db: src}), nodeId: 'n2', fromNodeId: 'n1', parallel: 2, schemaSync: 'strict', selection: {}})
    expect(r.state).toBe('synchronized')
    // The copy on the target drifts (a local write nobody replicates).
    await sql(dst, `UPDATE "Order" SET qty = -1 WHERE id <= 10`)
    await waitSame(src, dst, itemSum, 'item replicated')
    expect(await orderSum(dst)).not.toEqual(await orderSum(src))
    let stop = false
    let writes = 0
    const writer = (async () => {
      const c = await adminClient(src)
      try {
        while (!stop) {
          await c.query(`INSERT INTO "Order" (item_id, qty) VALUES (1, $1)`, [writes])
          await c.query(`UPDATE "Order" SET qty = qty + 1 WHERE id = $1`, [1 + (writes % 20000)])
          await c.query(`UPDATE item SET v = v + 1 WHERE id = $1`, [1 + (writes % 2000)])
          writes++
        }
      } finally {
        await c.end()
      }
    })()
    const states: string[] = []
    const poll = setInterval(() => {
      void sql(dst, `SELECT init_state FROM steep_repl.nodes WHERE node_id = 'n2'`).then((x) => states.push(x[0]?.init_state)).catch(() => {})
    }, 50)
    // The apply worker lags: a lock on the target's item stalls it, with changes to "Order" from
    // before the reinit still queued behind. They must be applied before the truncate, not after
    // it (where table sync's COPY would then fail on their keys, again and again).
    const blocker = await adminClient(dst)
    await blocker.query(`BEGIN; LOCK TABLE item IN EXCLUSIVE MODE`)
    await new Promise((res) => setTimeout(res, 500))
    const unblock = setTimeout(() => void blocker.query('COMMIT').finally(() => blocker.end()), 4000)
    const cli = await runCli(['node', 'reinit', 'n2', '-d', dst, '--source', src, '--tables', 'public."Order"', '--direct', '--json'], {timeoutMs: 150_000})
    clearTimeout(unblock)
    await blocker.query('COMMIT').then(() => blocker.end()).catch(() => {})
    clearInterval(poll)
    stop = true
    await writer
    expect(cli.code, cli.stderr + cli.stdout).toBe(0)
    const job = cli.json()
    expect(job).toMatchObject({operation: 'node_reinit', status: 'complete', result: {state: 'synchronized', tables: ['public.Order']}})
    expect(job.progress.phases.map((p: {name: string}) => p.name)).toEqual(['prepare', 'truncate', 'copy'])
    expect(writes).toBeGreaterThan(5)
    expect(states).toContain('reinitializing')
    // The writer stopped: both tables converge (the drifted rows were re-copied).
    await waitSame(src, dst, orderSum, 'identical "Order" checksums')
    await waitSame(src, dst, itemSum, 'identical item checksums')
    // The reinit truncate carried the steep_reinit origin.
    expect((await sql(dst, `SELECT count(*)::int AS n FROM pg_replication_origin WHERE roname = 'steep_reinit'`))[0].n).toBe(1)
    // --no-wait only queues it (no worker here); the queued job is cancelled.
    const queued = await runCli(['node', 'reinit', 'n2', '-d', dst, '--source', src, '--tables', 'public.item', '--no-wait', '--json'])
    expect(queued.code, queued.stderr).toBe(0)
    expect(queued.json()).toMatchObject({operation: 'node_reinit', status: 'pending', params: {nodeId: 'n2', tables: ['public.item']}})
    expect(JSON.stringify(queued.json().params)).not.toMatch(/password/i)
    expect((await runCli(['jobs', 'cancel', queued.json().id, '-d', dst])).code).toBe(0)
    // Usage errors.
    expect((await runCli(['node', 'reinit', 'n2', '-d', dst, '--source', src])).code).toBe(2)
    expect((await runCli(['node', 'reinit', 'n2', '-d', dst, '--source', src, '--full', '--schema', 'public'])).code).toBe(2)
    expect(await stateOf(dst, 'n2')).toBe('synchronized')
    // A table another one references cannot be truncated alone: refused before anything is touched.
    const alone = await runCli(['node', 'reinit', 'n2', '-d', dst, '--source', src, '--tables', 'public.item', '--direct'])
    expect(alone.code, alone.stderr).toBe(2)
    expect(alone.stderr).toContain('cannot reinit public.item alone: public."Order" references public.item')
    expect(alone.stderr).toContain('--tables public.item,public."Order"')
    expect(await stateOf(dst, 'n2')).toBe('synchronized')
    expect(await sql(src, `SELECT count(*)::int AS n FROM pg_publication_tables`)).toEqual([{n: 2}])
    // A table sync that keeps failing (a constraint on the target that the source's rows break)
    // ends the reinit failed with the reason instead of waiting out its deadline.
    await sql(dst, `ALTER TABLE "Order" ADD CONSTRAINT qty_negative CHECK (qty < 0) NOT VALID`)
    const failing = await runCli(['node', 'reinit', 'n2', '-d', dst, '--source', src, '--tables', 'public."Order"', '--direct', '--json'], {timeoutMs: 120_000})
    expect(failing.code, failing.stderr + failing.stdout).toBe(1)
    expect(failing.json().error.message).toMatch(/table synchronization failed \d+ times for 1 of 1 tables/)
    expect(await stateOf(dst, 'n2')).toBe('failed')
    await sql(dst, `ALTER TABLE "Order" DROP CONSTRAINT qty_negative`)
    // --full: replication goes away, the tables are emptied (origin set), the node starts over.
    const full = await runCli(['node', 'reinit', 'n2', '-d', dst, '--source', src, '--full', '--direct', '--json'])
    expect(full.code, full.stderr + full.stdout).toBe(0)
    expect(full.json()).toMatchObject({operation: 'node_reinit', status: 'complete', result: {state: 'uninitialized'}})
    expect(full.json().result.tables).toEqual(['public.Order', 'public.item'])
    expect(await stateOf(dst, 'n2')).toBe('uninitialized')
    expect(await sql(dst, `SELECT count(*)::int AS n FROM pg_subscription`)).toEqual([{n: 0}])
    expect(await sql(src, `SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = 'steep_sub_n2_from_n1'`)).toEqual([{n: 0}])
    expect(await sql(src, `SELECT count(*)::int AS n FROM pg_publication`)).toEqual([{n: 0}])
    expect(await sql(dst, `SELECT (SELECT count(*) FROM "Order")::int AS o, (SELECT count(*) FROM item)::int AS i`)).toEqual([{o: 0, i: 0}])
    expect((await sql(src, `SELECT count(*)::int AS n FROM "Order"`))[0].n).toBeGreaterThan(20000)
  })

  it('node cancel after the init process was killed mid-copy leaves no slot, publication, subscription or table', async () => {
    const child = spawn(process.execPath, [BIN, 'node', 'init', 'n2', '--from', 'big', '-d', bigDst, '--source', big, '--direct', '--parallel', '1', '--split-larger-than', '0'], {
      env: {...process.env, CI: '1', NO_COLOR: '1', XDG_CONFIG_HOME: '/nonexistent-steep-test-config'},
      stdio: 'ignore',
    })
    await waitFor('the init to copy rows', async () => {
      const r = await sql(bigDst, `SELECT phase, bytes_copied FROM steep_repl.init_progress WHERE node_id = 'n2'`)
      return {ok: r[0]?.phase === 'copying' && Number(r[0].bytes_copied) > 0, seen: r[0]}
    }, 60_000, 50)
    child.kill('SIGKILL')
    await new Promise((res) => child.on('exit', res))
    expect(await sql(big, `SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = 'steep_sub_n2_from_big'`)).toEqual([{n: 1}])
    const r = await runCli(['node', 'cancel', 'n2', '-d', bigDst, '--source', big, '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.json()).toMatchObject({nodeId: 'n2', slotDropped: true, publicationDropped: true, tablesDropped: 1, state: 'failed'})
    expect(await sql(big, `SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = 'steep_sub_n2_from_big'`)).toEqual([{n: 0}])
    expect(await sql(big, `SELECT count(*)::int AS n FROM pg_publication`)).toEqual([{n: 0}])
    expect(await sql(bigDst, `SELECT count(*)::int AS n FROM pg_class WHERE relname = 'payload'`)).toEqual([{n: 0}])
    expect(await sql(bigDst, `SELECT count(*)::int AS n FROM pg_subscription`)).toEqual([{n: 0}])
    expect(await stateOf(bigDst, 'n2')).toBe('failed')
    const again = await runCli(['node', 'progress', 'n2', '-d', bigDst])
    expect(again.stdout).toMatch(/State:\s+failed/)
  })

  it('a node prepare that fails leaves the node failed with the reason and no slot or publication', async () => {
    // bigDst's n2 is failed (previous test): prepare may start from there. A 1 s budget cancels the
    // direct run, held (test-only failpoint) in its snapshot's schema phase, the slot created.
    const out = path.join(tmp(), 'seed')
    const r = await runCli(['node', 'prepare', 'n2', '--from', 'big', '-d', bigDst, '--source', big, '--output', out, '--direct', '--parallel', '1', '--timeout', '1', '--json'], {
      env: {STEEP_REPL_FAILPOINT: 'generate:schema'},
    })
    expect(r.stderr).toMatch(/failpoint generate:schema: paused/)
    expect(r.code, r.stderr + r.stdout).toBe(5)
    expect(await stateOf(bigDst, 'n2')).toBe('failed')
    const p = await sql(bigDst, `SELECT phase, error_message, snapshot_id FROM steep_repl.init_progress WHERE node_id = 'n2'`)
    expect(p[0]).toMatchObject({phase: 'failed'})
    expect(p[0].error_message).toMatch(/cancel/i)
    expect(p[0].snapshot_id).toMatch(/^snap_/)
    expect(await sql(big, `SELECT slot_name FROM pg_replication_slots WHERE database = current_database()`)).toEqual([])
    expect(await sql(big, `SELECT pubname FROM pg_publication`)).toEqual([])
    expect((await sql(big, `SELECT status FROM steep_repl.snapshots WHERE snapshot_id = $1`, [p[0].snapshot_id]))[0].status).toMatch(/cancelled|failed/)
  })

  it('two-step path: node prepare → snapshot apply → node complete, then writes on the source arrive once', async () => {
    const two = await freshDatabase('nre_two', servers[1]!.url())
    await registerTarget(two, 'n3', servers[1]!.info.port)
    const out = path.join(tmp(), 'seed')
    // Bad input first: unknown node, non-empty output.
    let r = await runCli(['node', 'prepare', 'nosuch', '--from', 'n1', '-d', two, '--source', src, '--output', out, '--direct'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/node nosuch is not registered/)
    // A prepare that is no longer wanted: node cancel drops its slot and publication.
    const first = path.join(tmp(), 'seed')
    r = await runCli(['node', 'prepare', 'n3', '--from', 'n1', '-d', two, '--source', src, '--output', first, '--direct', '--parallel', '2', '--json'])
    expect(r.code, r.stderr + r.stdout).toBe(0)
    const dropped = r.json().result
    expect(await sql(src, `SELECT count(*)::int AS n FROM pg_publication WHERE pubname = $1`, [dropped.publication])).toEqual([{n: 1}])
    r = await runCli(['node', 'cancel', 'n3', '-d', two, '--source', src, '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.json()).toMatchObject({slotDropped: true, publicationDropped: true, state: 'failed'})
    expect(await sql(src, `SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = 'steep_sub_n3_from_n1'`)).toEqual([{n: 0}])
    expect(await sql(src, `SELECT count(*)::int AS n FROM pg_publication WHERE pubname = $1`, [dropped.publication])).toEqual([{n: 0}])
    // From failed, prepare again.
    r = await runCli(['node', 'prepare', 'n3', '--from', 'n1', '-d', two, '--source', src, '--output', out, '--direct', '--parallel', '2', '--compression', 'gzip', '--json'])
    expect(r.code, r.stderr + r.stdout).toBe(0)
    const prep = r.json()
    expect(prep).toMatchObject({operation: 'node_prepare', status: 'complete', result: {nodeId: 'n3', state: 'preparing', slot: 'steep_sub_n3_from_n1', output: out}})
    const snapshotId = prep.result.snapshotId as string
    expect(await stateOf(two, 'n3')).toBe('preparing')
    expect(await sql(two, `SELECT snapshot_id, snapshot_path, slot_name, lsn FROM steep_repl.init_progress WHERE node_id = 'n3'`)).toEqual([
      {snapshot_id: snapshotId, snapshot_path: out, slot_name: 'steep_sub_n3_from_n1', lsn: prep.result.lsn},
    ])
    expect(await sql(src, `SELECT slot_name FROM pg_replication_slots WHERE slot_name = 'steep_sub_n3_from_n1'`)).toHaveLength(1)
    // Writes after the snapshot: they must arrive through the subscription, once.
    await sql(src, `INSERT INTO "Order" (item_id, qty) VALUES (1, 424242); UPDATE item SET v = -7 WHERE id = 2`)
    // complete before the apply: refused, nothing changes.
    r = await runCli(['node', 'complete', 'n3', '--from', 'n1', '-d', two, '--source', src])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/is not applied to this database yet/)
    expect(await stateOf(two, 'n3')).toBe('preparing')
    r = await runCli(['snapshot', 'apply', '-d', two, '--input', out, '--direct', '--json'])
    expect(r.code, r.stderr + r.stdout).toBe(0)
    r = await runCli(['node', 'complete', 'n3', '--from', 'n1', '-d', two, '--source', src, '--json'])
    expect(r.code, r.stderr + r.stdout).toBe(0)
    expect(r.json()).toMatchObject({state: 'synchronized', snapshotId, applied: false, subscription: 'steep_sub_n3_from_n1', slot: 'steep_sub_n3_from_n1'})
    expect(await stateOf(two, 'n3')).toBe('synchronized')
    await waitSame(src, two, orderSum, 'identical "Order" checksums')
    await waitSame(src, two, itemSum, 'identical item checksums')
    expect((await sql(two, `SELECT count(*)::int AS n FROM "Order" WHERE qty = 424242`))[0].n).toBe(1)
    await sql(src, `INSERT INTO "Order" (item_id, qty) VALUES (1, 434343)`)
    await waitFor('a later write on the target', async () => (await sql(two, `SELECT count(*)::int AS n FROM "Order" WHERE qty = 434343`))[0].n > 0)
    await waitSame(src, two, orderSum, 'identical "Order" checksums after a later write')
    await dropSubs(two)
    await sql(src, `SELECT pg_drop_replication_slot('steep_sub_n3_from_n1')`).catch(() => {})
  })

  it('node complete --input applies a snapshot generated by hand (kept slot) itself, then subscribes at its slot', async () => {
    const three = await freshDatabase('nre_three', servers[0]!.url())
    await registerTarget(three, 'n4', servers[0]!.info.port)
    const out = path.join(tmp(), 's')
    const g = await generateSnapshot({source: resolveConnection({db: src}), output: out, parallel: 2, compression: 'gzip', selection: {}, keepSlot: true, toolVersion: 'test'})
    await sql(src, `INSERT INTO "Order" (item_id, qty) VALUES (1, 454545)`)
    const r = await runCli(['node', 'complete', 'n4', '--from', 'n1', '-d', three, '--source', src, '--input', out, '--json'])
    expect(r.code, r.stderr + r.stdout).toBe(0)
    expect(r.json()).toMatchObject({state: 'synchronized', snapshotId: g.snapshotId, applied: true, tables: 2, subscription: 'steep_sub_n4_from_n1', slot: g.manifest.slot!.name})
    await waitSame(src, three, orderSum, 'identical "Order" checksums')
    expect((await sql(three, `SELECT count(*)::int AS n FROM "Order" WHERE qty = 454545`))[0].n).toBe(1)
    await dropSubs(three)
    await sql(src, `SELECT pg_drop_replication_slot($1)`, [g.manifest.slot!.name]).catch(() => {})
  })

  it('node init --bidirectional links both directions once synchronized (refused up front before PostgreSQL 16); a reinit on one side does not empty the other', async () => {
    const a = await freshDatabase('nre_bia', servers[0]!.url())
    const b = await freshDatabase('nre_bib', servers[1]!.url())
    try {
      await sql(a, `CREATE TABLE kv (k text PRIMARY KEY, v int); INSERT INTO kv VALUES ('a', 1)`)
      await registerTarget(b, 'b', servers[1]!.info.port)
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
      await sql(a, `INSERT INTO kv VALUES ('from-a', 3)`)
      const all = (u: string) => sql(u, `SELECT k, v FROM kv ORDER BY k`)
      await waitSame(a, b, all, 'the rows of both sides on both sides')
      expect(await all(a)).toEqual([{k: 'a', v: 1}, {k: 'from-a', v: 3}, {k: 'from-b', v: 2}])
      // A reinit of the table on b truncates it under the steep_reinit origin: a, subscribed to b
      // with origin = none, must not receive that truncate (nor the re-copied rows back).
      const re = await runCli(['node', 'reinit', 'b', '-d', b, '--source', a, '--tables', 'public.kv', '--direct', '--json'])
      expect(re.code, re.stdout + re.stderr).toBe(0)
      await waitSame(a, b, all, 'kv re-copied on b')
      await sql(a, `INSERT INTO kv VALUES ('after-reinit', 4)`)
      await waitSame(a, b, all, 'a write after the reinit on both sides')
      expect(await all(a)).toEqual([{k: 'a', v: 1}, {k: 'after-reinit', v: 4}, {k: 'from-a', v: 3}, {k: 'from-b', v: 2}])
    } finally {
      await dropSubs(a)
      await dropSubs(b)
      for (const d of [a, b]) await dropSlots(d)
    }
  })
})
