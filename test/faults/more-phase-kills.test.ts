// Fault catalogue, SIGKILL in the phases phase-kills.test.ts leaves out: the `--direct` CLI killed
// in snapshot generate's prepare phase (its slot being created, its publication committed) and its
// sequences phase (every file written, no manifest); in snapshot apply's verify phase (nothing done
// on the target yet) and its analyze phase; in node init's prepare phase (slot and publication
// created, nothing copied) and its schema extraction; and in merge run's analysis (read-only, the
// merge record written). docs/reliability.md is the table of the cases.
//
// As in phase-kills.test.ts, each phase is held open from outside and the kill lands while the CLI's
// backend is seen waiting there (pg_stat_activity, pg_locks): a transaction holding an xid, which
// CREATE_REPLICATION_SLOT waits for (its snapshot builder waits for every running transaction);
// SHARE on steep_repl.init_slots, which node init's INSERT after its slot waits for; ACCESS
// EXCLUSIVE on a source table, taken once the init's slot exists, which the schema extraction's
// ACCESS SHARE waits for; SHARE on steep_repl.snapshot_apply_parts, which holds an apply's first
// part (after the pre-data) until the test has its next lock; ALTER SEQUENCE's lock, which setval
// waits for; SHARE UPDATE EXCLUSIVE on a table, which ANALYZE waits for; ACCESS EXCLUSIVE on a table
// of node B, which the merge's read of it waits for. Two moments touch no lock the test could hold
// and use test-only failpoints (src/lib/failpoint.ts, STEEP_REPL_FAILPOINT, inert without it):
// generate:sequences and apply:verify.
//
// One dedicated server: the xid the generate case holds stalls every slot creation of the cluster.

import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {runCli} from '../helpers/cli.js'
import {sql, startTestServer, withDatabase} from '../helpers/pg.js'
import type {ServerHandle} from '../helpers/servers.js'
import {installSchema} from '../integration/merge-fixtures.js'
import {registerTarget} from '../integration/node-support.js'
import {
  checksums,
  jobRow,
  newestJob,
  objectShape,
  slotsAndPublications,
  spawnCli,
  spawnCliEnv,
  takeOverJob,
  waitBackendsGone,
  waitFor,
  waitLockWait,
  waitStderr,
  applyPhase,
  beforeEnd,
  filesUnder,
  generateRecovery,
  holdLock,
  killCli,
  socketConninfo,
  twoSidedMergeTables,
} from './harness.js'

const TABLES = ['public.parent', 'public.big', 'public.small']
const APPLY = 'steep-repl apply'
const INIT = 'steep-repl node init'
const SNAP = 'steep-repl snapshot'
const MERGE = 'steep-repl merge'


describe('fault catalogue: SIGKILL in generate prepare/sequences, apply verify/analyze, node init prepare/schema, merge analysis', {timeout: 120_000}, () => {
  let server: ServerHandle
  let src: string
  const srcDb = 'src'
  let srcSums: Record<string, string>
  let srcShape: Awaited<ReturnType<typeof objectShape>>
  const dir = mkdtempSync(path.join(tmpdir(), 'steep-more-phase-kills-'))
  const clean = path.join(dir, 'clean')
  let n = 0
  const newDb = async (prefix: string): Promise<{url: string; db: string}> => {
    const db = `${prefix}_${++n}`
    await sql(server.url(), `CREATE DATABASE ${db}`)
    return {url: withDatabase(server.url(), db), db}
  }




  /** Backends of the test's own sessions aside: no session of the CLI, no temporary relation, no prepared transaction in `db`. */
  const expectNothingOpen = async (url: string): Promise<void> => {
    expect(await sql(url, `SELECT application_name FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'steep-repl%'`)).toEqual([])
    expect(await sql(url, `SELECT relname FROM pg_class WHERE relpersistence = 't'`)).toEqual([])
    expect(await sql(url, `SELECT gid FROM pg_prepared_xacts`)).toEqual([])
  }

  beforeAll(async () => {
    server = await startTestServer({settings: {wal_retrieve_retry_interval: '200ms'}})
    await sql(server.url(), `CREATE DATABASE ${srcDb}`)
    src = withDatabase(server.url(), srcDb)
    await sql(
      src,
      `CREATE TABLE parent (id int PRIMARY KEY, name text NOT NULL UNIQUE);
       INSERT INTO parent SELECT i, 'p' || i FROM generate_series(1, 300) i;
       CREATE TABLE big (id int PRIMARY KEY, a int NOT NULL CHECK (a >= 0), p int NOT NULL REFERENCES parent, note text);
       INSERT INTO big SELECT i, i % 997, 1 + i % 300, md5(i::text) FROM generate_series(1, 4000) i;
       CREATE INDEX big_a ON big (a); CREATE INDEX big_note ON big (note);
       CREATE TABLE small (id serial PRIMARY KEY, s text);
       INSERT INTO small (s) SELECT 'row ' || i FROM generate_series(1, 400) i;
       CREATE SEQUENCE seq_used; SELECT nextval('seq_used') FROM generate_series(1, 5);
       CREATE VIEW big_summary AS SELECT a, count(*) AS n FROM big GROUP BY a;`,
    )
    expect((await runCli(['install', '-d', src])).code).toBe(0)
    srcSums = await checksums(src, TABLES)
    srcShape = await objectShape(src)
    const g = await runCli(['snapshot', 'generate', '-d', src, '--output', clean, '--direct', '--no-slot', '--parallel', '1', '--compression', 'none'], {timeoutMs: 100_000})
    expect(g.code, g.stderr).toBe(0)
  }, 180_000)

  afterAll(async () => {
    await server?.stop()
    rmSync(dir, {recursive: true, force: true})
  })

  // ---- snapshot generate ----

  const {genArgs, kept, reference, expectRecoveredSnapshot} = generateRecovery(() => src, dir)

  it('generate killed in prepare (publication committed, CREATE_REPLICATION_SLOT waiting): no file; the slot being created goes with its walsender; the takeover drops the publication and completes identical to a clean run', async () => {
    await reference()
    const before = await slotsAndPublications(src)
    const out = path.join(dir, 'gen-prepare')
    // An open transaction with an xid (in another database: running transactions are the cluster's):
    // the slot's snapshot builder waits for it to end before the slot has a consistent point.
    const xid = await holdLock(server.url(), `SELECT txid_current()`)
    const run = spawnCli(genArgs(out))
    let job: any
    try {
      const w = await beforeEnd(run, waitLockWait(server.url(), srcDb, SNAP, /CREATE_REPLICATION_SLOT/))
      expect(w.query).toMatch(/LOGICAL pgoutput/)
      job = await newestJob(src, 'snapshot_generate')
      const id = job.params.snapshotId as string
      // The publication is committed; the slot exists, being created by the waiting walsender.
      expect((await slotsAndPublications(src)).publications).toContain(kept(id).publication)
      expect((await slotsAndPublications(src)).slots.map((s) => s.slot_name)).toContain(kept(id).slot)
      await killCli(run)
    } finally {
      await xid.release()
    }
    // The walsender, its client gone, finishes or abandons the slot once the xid ends, then exits.
    await waitBackendsGone(server.url(), srcDb, SNAP)
    expect(filesUnder(out)).toEqual([])
    const id = job.params.snapshotId as string
    expect(await jobRow(src, job.id)).toMatchObject({status: 'running', attempts: 1})
    const left = await slotsAndPublications(src)
    expect(left.publications).toContain(kept(id).publication)
    // The slot is ephemeral until its creation completes: once the xid ended, the walsender read
    // the WAL written after it, found its client gone while waiting for that WAL, and exited; the
    // slot went with it. Only the publication is left, for the takeover to drop.
    expect(left.slots.map((s) => s.slot_name)).not.toContain(kept(id).slot)
    expect(left).toEqual({slots: before.slots, publications: [...before.publications, kept(id).publication].sort()})
    const fin = await takeOverJob(src, job.id, 'snapshot_generate')
    expect(fin.status, fin.error_message ?? '').toBe('complete')
    expect(fin.attempts).toBe(2)
    await expectRecoveredSnapshot(out, id, before)
  })

  it('generate killed in the sequences phase (test-only failpoint: every data and schema file written, no manifest): verify refuses it; the takeover completes identical', async () => {
    const before = await slotsAndPublications(src)
    const out = path.join(dir, 'gen-sequences')
    const run = spawnCliEnv(genArgs(out), {STEEP_REPL_FAILPOINT: 'generate:sequences'})
    await beforeEnd(run, waitStderr(run, 'failpoint generate:sequences: paused'))
    await killCli(run)
    await waitBackendsGone(server.url(), srcDb, SNAP)
    const files = filesUnder(out)
    expect(files).toEqual(expect.arrayContaining(['schema/pre-data.sql', 'schema/post-data.sql']))
    expect(files.filter((f) => f.startsWith('data/')).length).toBe(2)
    expect(files.some((f) => f.startsWith('manifest'))).toBe(false)
    const verify = await runCli(['snapshot', 'verify', out])
    // Usage (exit 2, docs/exit-codes.md): not a snapshot directory until the manifest exists.
    expect(verify.code, verify.stderr).toBe(2)
    expect(verify.stderr).toMatch(/is not a snapshot directory \(no manifest\.json\)/)
    const job = await newestJob(src, 'snapshot_generate')
    expect(job).toMatchObject({status: 'running', attempts: 1})
    const id = job.params.snapshotId as string
    const sp = await slotsAndPublications(src)
    expect(sp.slots.map((x) => x.slot_name)).toContain(kept(id).slot)
    expect(sp.publications).toContain(kept(id).publication)
    const fin = await takeOverJob(src, job.id, 'snapshot_generate')
    expect(fin.status, fin.error_message ?? '').toBe('complete')
    expect(fin.attempts).toBe(2)
    await expectRecoveredSnapshot(out, id, before)
  })

  // ---- snapshot apply ----

  const applyArgs = (url: string, extra: string[] = []) => ['snapshot', 'apply', '-d', url, '--input', clean, '--direct', '--parallel', '1', ...extra]

  it('apply killed in verify (test-only failpoint: files checked, target not yet touched): no relation, no apply state; a plain apply then exits 0 and equals the source', async () => {
    const t = await newDb('tgt')
    const run = spawnCliEnv(applyArgs(t.url), {STEEP_REPL_FAILPOINT: 'apply:verify'})
    await beforeEnd(run, waitStderr(run, 'failpoint apply:verify: paused'))
    await killCli(run)
    await waitBackendsGone(server.url(), t.db, APPLY)
    expect((await objectShape(t.url)).relations).toEqual([])
    expect(await applyPhase(t.url)).toBeUndefined()
    const job = await newestJob(t.url, 'snapshot_apply')
    expect(job).toMatchObject({status: 'running', attempts: 1})
    const again = await runCli(applyArgs(t.url), {timeoutMs: 100_000})
    expect(again.code, again.stderr).toBe(0)
    expect(await applyPhase(t.url)).toBe('done')
    expect(await checksums(t.url, TABLES)).toEqual(srcSums)
    expect(await objectShape(t.url)).toEqual(srcShape)
    // The dead run's job, taken over when its lease expires, finds the snapshot applied and changes nothing.
    const fin = await takeOverJob(t.url, job.id, 'snapshot_apply')
    expect(fin).toMatchObject({status: 'complete', attempts: 2})
    expect(await checksums(t.url, TABLES)).toEqual(srcSums)
    expect(await objectShape(t.url)).toEqual(srcShape)
    await expectNothingOpen(t.url)
  })

  it('apply --resume killed in analyze (ANALYZE waits): the phase stays analyze; the next --resume completes, equal to the source', async () => {
    const t = await newDb('tgt')
    await installSchema(t.url)
    // The first run is held after its pre-data (its first part's bookkeeping waits) until the test
    // holds the sequence's lock, then stopped in the sequences phase: the resume that follows starts
    // there, and its analyze phase analyzes every table (a fresh run analyzes them during its data phase).
    const parts = await holdLock(t.url, `LOCK TABLE steep_repl.snapshot_apply_parts IN SHARE MODE`)
    const run1 = spawnCli(applyArgs(t.url))
    let seqLock: Awaited<ReturnType<typeof holdLock>> | undefined
    try {
      await beforeEnd(run1, waitLockWait(server.url(), t.db, APPLY, /snapshot_apply_parts/))
      seqLock = await holdLock(t.url, `ALTER SEQUENCE public.seq_used INCREMENT BY 1`)
      await parts.release()
      await beforeEnd(run1, waitLockWait(server.url(), t.db, APPLY, /setval/))
      expect(await applyPhase(t.url)).toBe('sequences')
      await killCli(run1)
    } finally {
      await parts.release()
      await seqLock?.release()
    }
    await waitBackendsGone(server.url(), t.db, APPLY)
    // ANALYZE takes SHARE UPDATE EXCLUSIVE: it waits for the test's.
    const analyzeLock = await holdLock(t.url, `LOCK TABLE public.small IN SHARE UPDATE EXCLUSIVE MODE`)
    const run2 = spawnCli(applyArgs(t.url, ['--resume']))
    try {
      const w = await beforeEnd(run2, waitLockWait(server.url(), t.db, APPLY, /ANALYZE/))
      expect(w.query).toMatch(/small/)
      expect(await applyPhase(t.url)).toBe('analyze')
      await killCli(run2)
    } finally {
      await analyzeLock.release()
    }
    await waitBackendsGone(server.url(), t.db, APPLY)
    expect(await applyPhase(t.url)).toBe('analyze')
    // A plain apply is refused (exit 1, state); --resume finishes.
    const refused = await runCli(applyArgs(t.url))
    expect(refused.code, refused.stderr).toBe(1)
    expect(refused.stderr).toMatch(/stopped in phase analyze on this database; continue it with --resume/)
    const r = await runCli(applyArgs(t.url, ['--resume']), {timeoutMs: 100_000})
    expect(r.code, r.stderr).toBe(0)
    expect(await applyPhase(t.url)).toBe('done')
    expect(await checksums(t.url, TABLES)).toEqual(srcSums)
    expect(await objectShape(t.url)).toEqual(srcShape)
    // Every table was analyzed by one of the runs.
    const unanalyzed = await sql(t.url, `SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NULL AND schemaname = 'public' ORDER BY 1`)
    expect(unanalyzed).toEqual([])
    await expectNothingOpen(t.url)
  })

  // ---- node init ----

  const NODE = 'mk1'
  let nt: {url: string; db: string}
  const initArgs = (url: string, extra: string[] = []) => ['node', 'init', NODE, '--from', 'src', '-d', url, '--source', src, '--direct', '--parallel', '1', ...extra]
  const initNames = {slot: `steep_sub_${NODE}_from_src`, publication: `steep_pub_src_to_${NODE}`, subscription: `steep_sub_${NODE}_from_src`}
  const nodeState = async (url: string) => (await sql(url, `SELECT init_state FROM steep_repl.nodes WHERE node_id = $1`, [NODE]))[0]?.init_state
  const initLeftovers = async (url: string) => ({
    slot: (await sql(src, `SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1`, [initNames.slot]))[0].n,
    publication: (await sql(src, `SELECT count(*)::int AS n FROM pg_publication WHERE pubname = $1`, [initNames.publication]))[0].n,
    subscription: (await sql(url, `SELECT count(*)::int AS n FROM pg_subscription WHERE subname = $1`, [initNames.subscription]))[0].n,
    relations: (await objectShape(url)).relations,
  })
  const cancelInit = async (url: string): Promise<void> => {
    const cancel = await runCli(['node', 'cancel', NODE, '-d', url, '--source', src, '--json'])
    expect(cancel.code, cancel.stderr).toBe(0)
    expect(cancel.json()).toMatchObject({slotDropped: true, publicationDropped: true, tablesDropped: 0, objectsDropped: 0, state: 'failed'})
    expect(await initLeftovers(url)).toEqual({slot: 0, publication: 0, subscription: 0, relations: []})
    expect(await nodeState(url)).toBe('failed')
    await expectNothingOpen(url)
    await expectNothingOpen(src)
  }

  it('node init killed in prepare (slot and publication created, its bookkeeping waits): nothing copied; node cancel exits 0 and leaves nothing', async () => {
    nt = await newDb('node')
    await registerTarget(nt.url, NODE, server.info.port)
    const gate = await holdLock(nt.url, `LOCK TABLE steep_repl.init_slots IN SHARE MODE`)
    const run = spawnCli(initArgs(nt.url))
    try {
      await beforeEnd(run, waitLockWait(server.url(), nt.db, INIT, /init_slots/))
      expect(await nodeState(nt.url)).toBe('preparing')
      await killCli(run)
    } finally {
      await gate.release()
    }
    await waitBackendsGone(server.url(), nt.db, INIT)
    await waitBackendsGone(server.url(), srcDb, INIT)
    expect(await initLeftovers(nt.url)).toEqual({slot: 1, publication: 1, subscription: 0, relations: []})
    // The killed init still counts as under way: init again is refused (exit 1, state) until node cancel.
    const refused = await runCli(initArgs(nt.url))
    expect(refused.code, refused.stderr).toBe(1)
    expect(refused.stderr).toMatch(/node init starts from uninitialized or failed/)
    expect(await initLeftovers(nt.url)).toEqual({slot: 1, publication: 1, subscription: 0, relations: []})
    await cancelInit(nt.url)
  })

  it('node init killed in the schema extraction (its ACCESS SHARE lock waits on the source): node cancel leaves nothing; init again equals the source', async () => {
    // The slot creation waits for every transaction with an xid, and ACCESS EXCLUSIVE takes one: so
    // the init is first held after its slot (SHARE on init_slots), then the source's table is locked.
    const gate = await holdLock(nt.url, `LOCK TABLE steep_repl.init_slots IN SHARE MODE`)
    const run = spawnCli(initArgs(nt.url))
    let lock: Awaited<ReturnType<typeof holdLock>> | undefined
    try {
      await beforeEnd(run, waitLockWait(server.url(), nt.db, INIT, /init_slots/))
      lock = await holdLock(src, `LOCK TABLE public.small IN ACCESS EXCLUSIVE MODE`)
      await gate.release()
      const w = await beforeEnd(run, waitLockWait(server.url(), srcDb, INIT, /[\s\S]/))
      // The extraction reads the catalog and each table's size (pg_relation_size takes ACCESS SHARE) before pg_dump-like locking.
      expect(w.query).toMatch(/pg_relation_size|LOCK TABLE/)
      expect(await nodeState(nt.url)).toBe('preparing')
      expect((await objectShape(nt.url)).relations).toEqual([])
      await killCli(run)
    } finally {
      await gate.release()
      await lock?.release()
    }
    await waitBackendsGone(server.url(), nt.db, INIT)
    await waitBackendsGone(server.url(), srcDb, INIT)
    expect(await initLeftovers(nt.url)).toEqual({slot: 1, publication: 1, subscription: 0, relations: []})
    await cancelInit(nt.url)

    const again = await runCli(initArgs(nt.url), {timeoutMs: 100_000})
    expect(again.code, again.stderr).toBe(0)
    expect(await nodeState(nt.url)).toBe('synchronized')
    expect(await checksums(nt.url, TABLES)).toEqual(await checksums(src, TABLES))
    expect(await objectShape(nt.url)).toEqual(await objectShape(src))
    expect(await initLeftovers(nt.url)).toMatchObject({slot: 1, publication: 1, subscription: 1})
    // This node's replication is not needed any more.
    await sql(nt.url, `ALTER SUBSCRIPTION ${initNames.subscription} DISABLE; ALTER SUBSCRIPTION ${initNames.subscription} SET (slot_name = NONE); DROP SUBSCRIPTION ${initNames.subscription}`)
    await waitFor('the slot to be released', async () => (await sql(src, `SELECT active FROM pg_replication_slots WHERE slot_name = $1`, [initNames.slot]))[0]?.active === false)
    await sql(src, `SELECT pg_drop_replication_slot('${initNames.slot}'); DROP PUBLICATION ${initNames.publication}`)
  })

  // ---- merge run ----

  it('merge run killed during its analysis (a read of node B waits): both nodes unchanged, its record left running does not block a rerun, which converges; the takeover completes the record', async () => {
    const MT = ['public.t1', 'public.t2', 'public.t3']
    const N = 2000
    const a = await newDb('ma')
    const b = await newDb('mb')
    const fixture = await twoSidedMergeTables(a.url, b.url, MT, N)
    const [beforeA, beforeB] = [fixture.beforeA, fixture.beforeB]
    const merged = Object.fromEntries(MT.map((t) => [t, fixture.merged]))
    // The nodes by Unix socket (trust): job params never hold a password, and the worker that takes
    // the dead run's job over has none of its own.
    const sock = (db: string) => socketConninfo(db, server.info.socket)
    expect(server.info.socket).toMatch(/dbname=/)
    const mergeArgs = ['merge', 'run', '--node-a', sock(a.db), '--node-b', sock(b.db), '--tables', MT.join(','), '--strategy', 'prefer-node-a', '--direct']

    const lock = await holdLock(b.url, `LOCK TABLE public.t2 IN ACCESS EXCLUSIVE MODE`)
    const run = spawnCli(mergeArgs)
    try {
      // The statement's text may be longer than pg_stat_activity keeps: the lock it waits for tells.
      await beforeEnd(
        run,
        waitFor(
          "the merge's read of t2 on node B to wait",
          async () =>
            (
              await sql(
                b.url,
                `SELECT 1 FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid
                  WHERE s.application_name = $1 AND NOT l.granted AND l.relation = 'public.t2'::regclass`,
                [MERGE],
              )
            ).length > 0,
          60_000,
          25,
        ),
      )
      // Past the pre-flight: the merge is recorded, no table written (every table is analysed first).
      expect(await sql(a.url, `SELECT status FROM steep_repl.merges`)).toEqual([{status: 'running'}])
      await killCli(run)
    } finally {
      await lock.release()
    }
    await waitBackendsGone(server.url(), a.db, MERGE)
    await waitBackendsGone(server.url(), b.db, MERGE)
    expect(await checksums(a.url, MT)).toEqual(beforeA)
    expect(await checksums(b.url, MT)).toEqual(beforeB)
    expect((await sql(a.url, `SELECT count(*)::int AS n FROM steep_repl.merge_audit_log`))[0].n).toBe(0)
    const job = await newestJob(a.url, 'merge_run')
    expect(job).toMatchObject({status: 'running', attempts: 1})
    const [stale] = await sql(a.url, `SELECT merge_id::text, status FROM steep_repl.merges`)
    expect(stale.status).toBe('running')

    // The record left running names its own merge id: a rerun (a new id) is not blocked by it.
    const again = await runCli(mergeArgs, {timeoutMs: 100_000})
    expect(again.code, again.stderr).toBe(0)
    expect(await checksums(a.url, MT)).toEqual(merged)
    expect(await checksums(b.url, MT)).toEqual(merged)

    // The dead run's job, reclaimed when its lease expires: attempt 2 reuses its merge id, finds
    // nothing left to do, and completes the record.
    const fin = await takeOverJob(a.url, job.id, 'merge_run')
    expect(fin.status, fin.error_message ?? '').toBe('complete')
    expect(fin.attempts).toBe(2)
    expect(await sql(a.url, `SELECT status, count(*)::int AS n FROM steep_repl.merges GROUP BY 1`)).toEqual([{status: 'complete', n: 2}])
    expect((await sql(a.url, `SELECT count(*)::int AS n FROM steep_repl.merge_audit_log WHERE merge_id = $1`, [stale.merge_id]))[0].n).toBe(0)
    expect(await checksums(a.url, MT)).toEqual(merged)
    expect(await checksums(b.url, MT)).toEqual(merged)
    await expectNothingOpen(a.url)
    await expectNothingOpen(b.url)
  })
})
