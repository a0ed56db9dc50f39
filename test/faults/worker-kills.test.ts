// Fault catalogue, workers: a `steep-repl worker` process killed with SIGKILL while it runs a queued
// snapshot apply, node init or merge run. Each case queues the job with --no-wait, starts a real
// worker, waits until the job is observably mid-data (from outside: pg_stat_progress_copy, the
// job's committed per-part state, an open writing transaction), kills the worker, checks what the
// dead attempt left, expires the lease (its 60 s are not what is tested, as in case 1c), starts a
// second worker and checks that the job is reclaimed (attempt 2), completes, and leaves exactly
// what a clean run leaves: per-table checksums, sequences, replication objects, audit rows.
//
// All on the shared test server (the source and target of each case are databases of it): small
// data, just enough that a COPY or a table's writes last long enough to be killed in the middle.
// The three cases touch separate databases and run concurrently (each observes its own).

import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {runCli} from '../helpers/cli.js'
import {dropDatabase, freshDatabase, shared, sql} from '../helpers/pg.js'
import {installSchema} from '../integration/merge-fixtures.js'
import {dropSlots, dropSubs, registerTarget} from '../integration/node-support.js'
import {checksums, expireLease, jobRow, killCli, socketConninfo, spawnCli, twoSidedMergeTables, waitFor, waitWriting, workerRun} from './harness.js'

const ROWS = 150_000
const TABLES = ['public.big', 'public.small']
const FIXTURE = `
  CREATE TABLE big (id int PRIMARY KEY, v int NOT NULL, pad text NOT NULL);
  INSERT INTO big SELECT i, i % 9973, repeat('p', 60) || i FROM generate_series(1, ${ROWS}) i;
  CREATE INDEX big_v_idx ON big (v);
  CREATE TABLE small (id int PRIMARY KEY, s text);
  INSERT INTO small SELECT i, 'row ' || i FROM generate_series(1, 1000) i;
  CREATE SEQUENCE seq; SELECT nextval('seq') FROM generate_series(1, 5);`

const dbName = (url: string) => decodeURIComponent(new URL(url).pathname.slice(1))

describe('fault catalogue: a worker killed with SIGKILL mid-job', {timeout: 180_000}, () => {
  let src: string
  let srcSums: Record<string, string>
  const dir = mkdtempSync(path.join(tmpdir(), 'steep-worker-kills-'))
  const snap = path.join(dir, 'snap')
  const dbs: string[] = []

  beforeAll(async () => {
    src = await freshDatabase('wk_src')
    dbs.push(src)
    await sql(src, FIXTURE)
    await installSchema(src)
    srcSums = await checksums(src, TABLES)
    // Split into parts of ~2 MB, so an apply commits some parts of the big table before the kill
    // and its attempt 2 has something to resume from. No slot: the apply case does not subscribe.
    const g = await runCli(['snapshot', 'generate', '-d', src, '--output', snap, '--direct', '--parallel', '1', '--compression', 'none', '--no-slot', '--split-larger-than', '2MB'], {
      timeoutMs: 100_000,
    })
    expect(g.code, g.stderr).toBe(0)
  }, 120_000)

  afterAll(async () => {
    for (const d of dbs) await dropSubs(d).catch(() => {})
    for (const d of dbs) await dropSlots(d).catch(() => {})
    await Promise.all(dbs.map((d) => dropDatabase(d).catch(() => {})))
    rmSync(dir, {recursive: true, force: true})
  })

  it.concurrent('snapshot apply: killed after some parts committed; attempt 2 resumes (skips them) and ends identical to the source', async () => {
    const t = await freshDatabase('wk_apply')
    dbs.push(t)
    const q = await runCli(['snapshot', 'apply', '-d', t, '--input', snap, '--parallel', '1', '--no-wait', '--json'])
    expect(q.code, q.stderr).toBe(0)
    const jobId = String(q.json().id)
    const first = spawnCli(['worker', '-d', t, '--operations', 'snapshot_apply', '--poll-interval', '300ms'])
    // Mid-data: at least one part committed (with its state row) and the next one's COPY moving rows.
    await waitFor(
      'a committed part and a COPY moving the next one',
      async () =>
        (
          await sql(
            t,
            `SELECT 1 FROM pg_stat_progress_copy p WHERE p.datname = current_database() AND p.command = 'COPY FROM' AND p.tuples_processed >= 1000
                AND (SELECT count(*) FROM steep_repl.snapshot_apply_parts WHERE file NOT LIKE 'ddl:%') >= 1`,
          )
        ).length > 0,
      60_000,
      20,
    )
    await killCli(first)

    const dead = await jobRow(t, jobId)
    expect(dead).toMatchObject({status: 'running', attempts: 1, max_attempts: 2, executor: 'worker'})
    expect(dead.lease_owner).toMatch(/^worker/)
    // The killed part's transaction is rolled back: only whole committed parts are in the table.
    await waitFor('the killed COPY backend to go', async () => (await sql(t, `SELECT 1 FROM pg_stat_progress_copy WHERE datname = current_database()`)).length === 0)
    const [st] = await sql(t, `SELECT phase, (SELECT count(*)::int FROM steep_repl.snapshot_apply_parts WHERE file NOT LIKE 'ddl:%') AS parts, (SELECT coalesce(sum(rows), 0)::int FROM steep_repl.snapshot_apply_parts) AS rows FROM steep_repl.snapshot_apply`)
    expect(st.phase).toBe('data')
    expect(st.parts).toBeGreaterThanOrEqual(1)
    const [{n}] = await sql(t, `SELECT (SELECT count(*) FROM big) + (SELECT count(*) FROM small) AS n`)
    expect(Number(n)).toBe(st.rows)
    expect(st.rows).toBeLessThan(ROWS)

    const fin = await takeOver(t, jobId, 'snapshot_apply', dead.lease_owner)
    // Attempt 2 resumed: the parts attempt 1 committed were skipped, not loaded twice.
    expect(fin.result.partsSkipped).toBe(st.parts)
    expect(await checksums(t, TABLES)).toEqual(srcSums)
    expect((await sql(t, `SELECT last_value::int, is_called FROM seq`))[0]).toEqual({last_value: 5, is_called: true})
    // The index the post-data built exists once; the apply's state says done.
    expect((await sql(t, `SELECT count(*)::int n FROM pg_indexes WHERE tablename = 'big'`))[0].n).toBe(2)
    expect((await sql(t, `SELECT phase FROM steep_repl.snapshot_apply`))[0].phase).toBe('done')
    await expectNoLeftovers(t)
  })

  it.concurrent('node init: killed mid-copy; attempt 2 removes what attempt 1 left, starts over and hands over to a subscription that delivers a later write once', async () => {
    const t = await freshDatabase('wk_node')
    dbs.push(t)
    const {port} = shared()
    await registerTarget(t, 'wk_dst', port)
    // The source by socket, no password: the worker resolves it with its own (trust) access.
    const source = socketConninfo(dbName(src))
    const q = await runCli(['node', 'init', 'wk_dst', '--from', 'wk_src', '-d', t, '--source', source, '--parallel', '1', '--no-wait', '--json'])
    expect(q.code, q.stderr).toBe(0)
    const jobId = String(q.json().id)
    const first = spawnCli(['worker', '-d', t, '--operations', 'node_init', '--poll-interval', '300ms'])
    await waitFor(
      'the COPY of the big table moving rows',
      async () =>
        (await sql(t, `SELECT 1 FROM pg_stat_progress_copy p WHERE p.datname = current_database() AND p.command = 'COPY FROM' AND p.tuples_processed >= 1000 AND p.relid = 'big'::regclass`)).length > 0,
      60_000,
      20,
    )
    await killCli(first)

    const dead = await jobRow(t, jobId)
    expect(dead).toMatchObject({status: 'running', attempts: 1, executor: 'worker'})
    expect(dead.max_attempts).toBeGreaterThanOrEqual(2)
    // What the dead attempt left: the node copying, the slot and publication on the source, the tables it created.
    expect((await sql(t, `SELECT init_state FROM steep_repl.nodes WHERE node_id = 'wk_dst'`))[0].init_state).toBe('copying')
    const names = {slot: 'steep_sub_wk_dst_from_wk_src', publication: 'steep_pub_wk_src_to_wk_dst', subscription: 'steep_sub_wk_dst_from_wk_src'}
    expect((await sql(src, `SELECT slot_name FROM pg_replication_slots WHERE database = current_database()`)).map((r) => r.slot_name)).toEqual([names.slot])
    expect((await sql(src, `SELECT pubname FROM pg_publication`)).map((r) => r.pubname)).toEqual([names.publication])
    await waitFor('the killed COPY backend to go', async () => (await sql(t, `SELECT 1 FROM pg_stat_progress_copy WHERE datname = current_database()`)).length === 0)
    expect((await sql(t, `SELECT count(*)::int n FROM big`))[0].n).toBe(0)

    const fin = await takeOver(t, jobId, 'node_init', dead.lease_owner)
    // Attempt 2 said what it removed before starting over.
    expect(fin.log).toMatch(new RegExp(`attempt 1 of job ${jobId} did not finish \\(phase copying\\); attempt 2 starts over: removed what it left: slot ${names.slot}, publication ${names.publication}, 2 table\\(s\\) it created`))
    expect(fin.result).toMatchObject({state: 'synchronized', slot: names.slot, publication: names.publication, subscription: names.subscription, rows: ROWS + 1000})
    expect((await sql(t, `SELECT init_state FROM steep_repl.nodes WHERE node_id = 'wk_dst'`))[0].init_state).toBe('synchronized')
    expect(await checksums(t, TABLES)).toEqual(srcSums)
    expect((await sql(t, `SELECT last_value::int, is_called FROM seq`))[0]).toEqual({last_value: 5, is_called: true})
    // Exactly one of each replication object: the ones of the completed init.
    expect((await sql(src, `SELECT slot_name FROM pg_replication_slots WHERE database = current_database()`)).map((r) => r.slot_name)).toEqual([names.slot])
    expect((await sql(src, `SELECT pubname FROM pg_publication`)).map((r) => r.pubname)).toEqual([names.publication])
    expect((await sql(t, `SELECT subname FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`)).map((r) => r.subname)).toEqual([
      names.subscription,
    ])
    // The target's own relations: the source's tables, their indexes and the sequence, once each.
    expect((await sql(t, `SELECT string_agg(relname, ',' ORDER BY relname) AS r FROM pg_class WHERE relnamespace = 'public'::regnamespace`))[0].r).toBe(
      'big,big_pkey,big_v_idx,seq,small,small_pkey',
    )
    // A write on the source afterwards arrives exactly once.
    await sql(src, `INSERT INTO small VALUES (1000001, 'after the takeover'); UPDATE big SET v = -7 WHERE id = 42`)
    await waitFor('the write to arrive on the target', async () => (await sql(t, `SELECT 1 FROM small WHERE id = 1000001`)).length > 0, 60_000, 200)
    await waitFor('the update to arrive on the target', async () => (await sql(t, `SELECT 1 FROM big WHERE id = 42 AND v = -7`)).length > 0, 60_000, 200)
    expect(await checksums(t, TABLES)).toEqual(await checksums(src, TABLES))
    expect((await sql(t, `SELECT count(*)::int n FROM small WHERE s = 'after the takeover'`))[0].n).toBe(1)
    await expectNoLeftovers(t)
    // Replication of this database ends here (afterAll drops the databases).
    await dropSubs(t)
    await dropSlots(src)
    await sql(src, `DROP PUBLICATION ${names.publication}`)
  })

  it.concurrent('merge run: killed while a later table is being written; attempt 2 finishes the rest, both nodes equal the expected merge, every row audited exactly once', async () => {
    const T = ['public.m1', 'public.m2', 'public.m3']
    const N = 4_000 // rows per table on each node; half of them on both, 1 in 10 of those differing
    const [a, b] = await Promise.all([freshDatabase('wk_merge_a'), freshDatabase('wk_merge_b')])
    dbs.push(a, b)
    const {beforeB, merged} = await twoSidedMergeTables(a, b, T, N)
    const perTable = {aOnly: N / 2, bOnly: N / 2, conflicts: N / 20}

    const q = await runCli(['merge', 'run', '--node-a', a, '--node-b', socketConninfo(dbName(b)), '--tables', T.join(','), '--strategy', 'prefer-node-a', '--batch-rows', '500', '--no-wait', '--json'])
    expect(q.code, q.stderr).toBe(0)
    const jobId = String(q.json().id)
    const mergeId = q.json().params.mergeId as string
    const first = spawnCli(['worker', '-d', a, '--operations', 'merge_run', '--poll-interval', '300ms'])
    // One table fully merged (its audit rows are committed with node A's writes, which commit last),
    // then the next table's writes open on node B.
    await waitFor(
      'a table merged on both nodes',
      async () => (await sql(a, `SELECT 1 FROM steep_repl.merge_audit_log WHERE merge_id = $1 AND category <> 'sequence' LIMIT 1`, [mergeId])).length > 0,
      90_000,
      20,
    )
    await waitWriting(shared().url, dbName(b), 60_000)
    await killCli(first)

    const dead = await jobRow(a, jobId)
    expect(dead).toMatchObject({status: 'running', attempts: 1, executor: 'worker'})
    expect(dead.max_attempts).toBeGreaterThanOrEqual(2)
    expect((await sql(a, `SELECT status FROM steep_repl.merges WHERE merge_id = $1`, [mergeId]))[0].status).toBe('running')
    // Each table on each node is untouched or fully merged; at least one of each on node B.
    const afterB = await checksums(b, T)
    const afterA = await checksums(a, T)
    for (const tb of T) {
      expect([beforeB[tb], merged], `node B ${tb}`).toContain(afterB[tb])
      expect(afterA[tb] === merged || afterB[tb] === beforeB[tb], `node A ${tb} merged only with B`).toBe(true)
    }
    const doneBefore = T.filter((tb) => afterB[tb] === merged && afterA[tb] === merged)
    expect(doneBefore.length).toBeGreaterThanOrEqual(1)
    expect(T.some((tb) => afterB[tb] === beforeB[tb])).toBe(true)

    const fin = await takeOver(a, jobId, 'merge_run', dead.lease_owner)
    const all = Object.fromEntries(T.map((tb) => [tb, merged]))
    expect(await checksums(a, T)).toEqual(all)
    expect(await checksums(b, T)).toEqual(all)
    // One merge record, complete, of this job; its totals are the whole merge's (both attempts).
    const rec = await sql(a, `SELECT merge_id::text, status, job_id::text, rows_transferred_a_to_b::int a2b, rows_transferred_b_to_a::int b2a, conflicts_resolved::int resolved FROM steep_repl.merges`)
    expect(rec).toEqual([{merge_id: mergeId, status: 'complete', job_id: jobId, a2b: 3 * perTable.aOnly, b2a: 3 * perTable.bOnly, resolved: 3 * perTable.conflicts}])
    expect(fin.result.totals).toMatchObject({transferredAToB: 3 * perTable.aOnly, transferredBToA: 3 * perTable.bOnly, conflictsResolved: 3 * perTable.conflicts})
    // Every one-sided row and conflict audited exactly once under the merge id, none twice.
    const audit = await sql(
      a,
      `SELECT table_name, category, resolution, count(*)::int n, count(DISTINCT pk_value)::int keys FROM steep_repl.merge_audit_log
        WHERE merge_id = $1 AND category <> 'sequence' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
      [mergeId],
    )
    const want = T.flatMap((tb) => {
      const name = tb.split('.')[1]!
      return [
        {table_name: name, category: 'conflict', resolution: 'kept_a', n: perTable.conflicts, keys: perTable.conflicts},
        {table_name: name, category: 'local_only', resolution: 'transferred_a_to_b', n: perTable.aOnly, keys: perTable.aOnly},
        {table_name: name, category: 'remote_only', resolution: 'transferred_b_to_a', n: perTable.bOnly, keys: perTable.bOnly},
      ]
    })
    expect(audit).toEqual(want)
    await expectNoLeftovers(a)
    await expectNoLeftovers(b)
  })
})

/**
 * The lease of the dead worker runs out (fast-forwarded) and a second worker reclaims the job:
 * attempt 2 runs to completion. Checks the recorded attempts, executor and owner, and `jobs show`.
 */
async function takeOver(db: string, jobId: string, operation: string, deadOwner: string): Promise<any> {
  await expireLease(db, jobId)
  const second = await workerRun(db, operation, jobId)
  expect(second.job.status, second.job.error_message).toBe('complete')
  expect(second.job.attempts).toBe(2)
  expect(second.job.executor).toBe('worker')
  // The worker that reclaimed it logged the lost attempt, then ran attempt 2 itself.
  expect(second.log).toMatch(new RegExp(`attempt 1 of \\d+ lost: the lease expired \\(executor ${deadOwner.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`))
  expect(second.log).toMatch(new RegExp(`job ${jobId} ${operation} claimed: attempt 2`))
  // Nobody holds the ended job's lease.
  expect(second.job.lease_owner).toBeNull()
  // The second worker stopped cleanly on SIGTERM (nothing left running).
  expect(second.code, second.log).toBe(0)
  const show = await runCli(['jobs', 'show', jobId, '-d', db, '--json'])
  expect(show.code, show.stderr).toBe(0)
  expect(show.json()).toMatchObject({id: jobId, status: 'complete', attempts: 2, executor: 'worker', error: null})
  return {...second.job, log: second.log}
}

/**
 * Nothing of the dead attempt or of the workers remains in the database: no session (the killed
 * worker's backends are gone, the second worker stopped), no temporary relation, no prepared
 * transaction, no job still pending or running.
 */
async function expectNoLeftovers(db: string): Promise<void> {
  await waitFor(
    'the sessions of the workers to end',
    async () => (await sql(db, `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`)).length === 0,
    30_000,
    100,
  )
  const [r] = await sql(
    db,
    `SELECT (SELECT count(*)::int FROM pg_class WHERE relpersistence = 't') AS temp_rels,
            (SELECT count(*)::int FROM pg_prepared_xacts WHERE database = current_database()) AS prepared,
            to_regclass('steep_repl.work_queue') IS NOT NULL AS queue`,
  )
  expect({temp_rels: r.temp_rels, prepared: r.prepared}).toEqual({temp_rels: 0, prepared: 0})
  if (r.queue) expect((await sql(db, `SELECT id::text, status FROM steep_repl.work_queue WHERE status IN ('pending', 'running')`))).toEqual([])
}
