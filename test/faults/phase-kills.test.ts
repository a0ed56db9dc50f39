// Fault catalogue, SIGKILL in every phase: the `--direct` CLI killed during snapshot apply's
// pre-data, index builds, post-data, sequences and subscribe phases; during snapshot generate's
// schema extraction and manifest writing; during node init's pre-data, post-data and catch-up.
// snapshot-faults.test.ts kills generate and apply mid-data, node-maintenance.test.ts node init
// mid-copy; docs/reliability.md is the table of the cases.
//
// Each phase is held open from outside, never hit by timing: the test holds a lock that the phase
// needs, sees the CLI's backend wait for it (pg_stat_activity, pg_locks), and kills the CLI there.
// The locks: an uncommitted CREATE TABLE of a name the pre-data creates; ROW EXCLUSIVE on big,
// queued while the loader holds it, so that its index builds wait; ROW EXCLUSIVE on a partitioned
// table's root, which only post-data statements conflict with; ALTER SEQUENCE's lock, which setval
// waits for; EXCLUSIVE on pg_subscription, which CREATE SUBSCRIPTION waits for; SHARE on a
// subscribed table, which stops the new subscription's worker in catch-up. Two moments cannot be
// held that way, and a test-only failpoint (src/lib/failpoint.ts, STEEP_REPL_FAILPOINT, inert
// without it) pauses the CLI there: generate holding the schema extraction's locks (from outside
// only ACCESS EXCLUSIVE would block them, and that lock takes a transaction id, which the slot
// creation before it waits for), and generate with half of manifest.json written under its
// temporary name (a millisecond).
//
// The apply kills are a chain on one target (each kill lands in the --resume after the previous
// one), the node init kills a chain on one node (kill, node cancel, init again); the end of each
// chain is compared with the source. One dedicated server: the cases lock the cluster-wide
// pg_subscription catalog, which must not stall other files' subscriptions on the shared server.

import {existsSync, readFileSync, rmSync, mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import type pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {runCli} from '../helpers/cli.js'
import {adminClient, sql, startTestServer, withDatabase} from '../helpers/pg.js'
import type {ServerHandle} from '../helpers/servers.js'
import {registerTarget} from '../integration/node-support.js'
import {
  checksums,
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
  manifestContent,
} from './harness.js'

const BIG = 30_000
const TABLES = ['public.parent', 'public.big', 'public.small', 'public.events']
const APPLY = 'steep-repl apply'
const INIT = 'steep-repl node init'
const SNAP = 'steep-repl snapshot'


describe('fault catalogue: SIGKILL in every phase of apply, generate and node init', {timeout: 120_000}, () => {
  let server: ServerHandle
  let src: string
  let srcSums: Record<string, string>
  let srcShape: Awaited<ReturnType<typeof objectShape>>
  const dir = mkdtempSync(path.join(tmpdir(), 'steep-phase-kills-'))
  const clean = path.join(dir, 'clean')
  let cleanId: string
  let n = 0
  const newTarget = async (): Promise<{url: string; db: string}> => {
    const db = `tgt_${++n}`
    await sql(server.url(), `CREATE DATABASE ${db}`)
    return {url: withDatabase(server.url(), db), db}
  }
  const srcDb = 'src'




  /** The apply job that died is not run a second time over the resumed result by a worker later. */
  const abandon = async (url: string, operation: string): Promise<void> => {
    await sql(url, `UPDATE steep_repl.work_queue SET status = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, error_message = 'abandoned by the fault test' WHERE operation = $1 AND status = 'running'`, [operation])
  }

  const expectSameAsSource = async (url: string): Promise<void> => {
    expect(await checksums(url, TABLES)).toEqual(srcSums)
    expect(await objectShape(url)).toEqual(srcShape)
  }

  beforeAll(async () => {
    server = await startTestServer({settings: {wal_retrieve_retry_interval: '200ms'}})
    await sql(server.url(), `CREATE DATABASE ${srcDb}`)
    src = withDatabase(server.url(), srcDb)
    await sql(
      src,
      `CREATE TABLE parent (id int PRIMARY KEY, name text NOT NULL UNIQUE);
       INSERT INTO parent SELECT i, 'p' || i FROM generate_series(1, 1000) i;
       CREATE TABLE big (id int PRIMARY KEY, a int NOT NULL CHECK (a >= 0), b int NOT NULL, p int NOT NULL REFERENCES parent, note text);
       INSERT INTO big SELECT i, i % 7919, (i * 37) % 10007, 1 + i % 1000, md5(i::text) FROM generate_series(1, ${BIG}) i;
       CREATE INDEX big_a ON big (a); CREATE INDEX big_b_a ON big (b, a); CREATE INDEX big_note ON big (note);
       CREATE TABLE small (id serial PRIMARY KEY, s text);
       INSERT INTO small (s) SELECT 'row ' || i FROM generate_series(1, 500) i;
       CREATE TABLE events (id int NOT NULL, at date NOT NULL, parent_id int REFERENCES parent, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
       CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
       CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
       INSERT INTO events SELECT i, date '2024-01-01' + (i % 700), 1 + i % 1000 FROM generate_series(1, 2000) i;
       CREATE INDEX events_parent ON events (parent_id);
       CREATE SEQUENCE seq_used; SELECT nextval('seq_used') FROM generate_series(1, 5);
       CREATE SEQUENCE seq_unused START 100;
       CREATE VIEW big_summary AS SELECT a, count(*) AS n FROM big GROUP BY a;`,
    )
    expect((await runCli(['install', '-d', src])).code).toBe(0)
    srcSums = await checksums(src, TABLES)
    srcShape = await objectShape(src)
    const g = await runCli(['snapshot', 'generate', '-d', src, '--output', clean, '--direct', '--parallel', '2', '--compression', 'none', '--json'], {timeoutMs: 100_000})
    expect(g.code, g.stderr).toBe(0)
    cleanId = g.json().result.snapshotId
  }, 180_000)

  afterAll(async () => {
    await server?.stop()
    rmSync(dir, {recursive: true, force: true})
  })

  // ---- snapshot apply ----
  // One target, one chain: each kill lands in the --resume run that follows the previous kill, so
  // every resume continues from what a killed run left, and only the end is compared with the source.

  let at: {url: string; db: string}
  const applyArgs = (extra: string[] = []) => ['snapshot', 'apply', '-d', at.url, '--input', clean, '--direct', '--parallel', '1', ...extra]

  it('apply killed in pre-data (its CREATE TABLE waits): nothing of it stays, no resume state', async () => {
    at = await newTarget()
    // An uncommitted table of a name the pre-data creates: its CREATE TABLE waits for this transaction.
    const blocker = await holdLock(at.url, `CREATE TABLE public.small (x int)`)
    const run = spawnCli(applyArgs())
    try {
      const w = await beforeEnd(run, waitLockWait(server.url(), at.db, APPLY, /[\s\S]/))
      expect(w.query).toMatch(/CREATE/)
      await killCli(run)
    } finally {
      await blocker.release()
    }
    await waitBackendsGone(server.url(), at.db, APPLY)
    // The pre-data is one transaction: none of it committed, and no resume state either.
    expect((await objectShape(at.url)).relations).toEqual([])
    expect(await applyPhase(at.url)).toBeUndefined()
  })

  it('apply --resume killed during the index builds (one waits): the loaded rows stay, the build in flight is rolled back; a plain apply is refused (exit 1)', async () => {
    const run = spawnCli(applyArgs(['--resume']))
    // While the loader holds big (TRUNCATE … COPY, ACCESS EXCLUSIVE until its commit), the test asks
    // for ROW EXCLUSIVE on it: granted after the load, ahead of the index builds (SHARE), which wait.
    const probe = await adminClient(at.url)
    let lock: pg.Client | undefined
    try {
      await beforeEnd(
        run,
        waitFor(
          'the apply to load big',
          async () =>
            (
              await probe.query(
                `SELECT 1 FROM pg_locks WHERE database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND relation = to_regclass('public.big') AND mode = 'AccessExclusiveLock' AND granted`,
              )
            ).rows.length > 0,
          90_000,
          5,
        ),
      )
      lock = await adminClient(at.url)
      await lock.query('BEGIN')
      void lock.query('LOCK TABLE public.big IN ROW EXCLUSIVE MODE').catch(() => {})
      const w = await beforeEnd(run, waitLockWait(server.url(), at.db, APPLY, /CREATE (UNIQUE )?INDEX/, 90_000))
      expect(w.query).toMatch(/ON public\.big /)
      await killCli(run)
    } finally {
      await probe.end()
      await lock?.query('ROLLBACK').catch(() => {})
      await lock?.end().catch(() => {})
    }
    await waitBackendsGone(server.url(), at.db, APPLY)
    expect(await applyPhase(at.url)).toBe('data')
    expect((await checksums(at.url, ['public.big']))['public.big']).toBe(srcSums['public.big'])
    // The kill landed among big's builds: not all of its indexes exist.
    const built = await sql(at.url, `SELECT count(*)::int AS n FROM pg_index WHERE indrelid = 'big'::regclass`)
    const want = await sql(src, `SELECT count(*)::int AS n FROM pg_index WHERE indrelid = 'big'::regclass`)
    expect(built[0].n).toBeLessThan(want[0].n)
    // Without --resume the stopped apply is refused (exit 1, docs/exit-codes.md: state).
    const refused = await runCli(applyArgs())
    expect(refused.code, refused.stderr).toBe(1)
    expect(refused.stderr).toMatch(/stopped in phase data on this database; continue it with --resume/)
  })

  it('apply --resume killed in post-data (a statement on the partitioned table waits): the phase stays post-data', async () => {
    // ROW EXCLUSIVE on the root alone: loading partitions does not conflict; post-data's statements on the root wait.
    const lock = await holdLock(at.url, `LOCK TABLE ONLY public.events IN ROW EXCLUSIVE MODE`)
    const run = spawnCli(applyArgs(['--resume']))
    try {
      const w = await beforeEnd(run, waitLockWait(server.url(), at.db, APPLY, /events/, 90_000))
      expect(w.query).toMatch(/ALTER|CREATE/)
      expect(await applyPhase(at.url)).toBe('post-data')
      await killCli(run)
    } finally {
      await lock.release()
    }
    await waitBackendsGone(server.url(), at.db, APPLY)
    expect(await applyPhase(at.url)).toBe('post-data')
    expect(await checksums(at.url, TABLES)).toEqual(srcSums)
  })

  it('apply --resume killed in the sequences phase (setval waits): the phase stays sequences', async () => {
    // ALTER SEQUENCE holds SHARE ROW EXCLUSIVE until the rollback; setval needs ROW EXCLUSIVE.
    const lock = await holdLock(at.url, `ALTER SEQUENCE public.seq_used INCREMENT BY 1`)
    const run = spawnCli(applyArgs(['--resume']))
    try {
      await beforeEnd(run, waitLockWait(server.url(), at.db, APPLY, /setval/, 90_000))
      expect(await applyPhase(at.url)).toBe('sequences')
      await killCli(run)
    } finally {
      await lock.release()
    }
    await waitBackendsGone(server.url(), at.db, APPLY)
    expect(await applyPhase(at.url)).toBe('sequences')
  })

  it('apply --resume --subscribe killed while CREATE SUBSCRIPTION waits; the last --resume ends with the clean result, exactly one subscription at the snapshot slot, and changes arrive', async () => {
    const sub = `steep_sub_${cleanId.toLowerCase()}`
    // pg_subscription is shared by the cluster (this file's own server): CREATE SUBSCRIPTION waits.
    const lock = await holdLock(at.url, `LOCK TABLE pg_catalog.pg_subscription IN EXCLUSIVE MODE`)
    const run = spawnCli(applyArgs(['--resume', '--subscribe', '--source', src]))
    try {
      await beforeEnd(run, waitLockWait(server.url(), at.db, APPLY, /CREATE SUBSCRIPTION/, 90_000))
      expect(await applyPhase(at.url)).toBe('subscribe')
      await killCli(run)
    } finally {
      await lock.release()
    }
    // The statement that was waiting may still complete in its orphaned backend: the subscription
    // then exists, and --resume must take it as its own rather than fail or make a second one.
    await waitBackendsGone(server.url(), at.db, APPLY)
    expect(await applyPhase(at.url)).toBe('subscribe')
    const r = await runCli(applyArgs(['--resume', '--subscribe', '--source', src]), {timeoutMs: 100_000})
    expect(r.code, r.stderr).toBe(0)
    expect(await applyPhase(at.url)).toBe('done')
    try {
      expect(await sql(at.url, `SELECT subname, subenabled, subslotname FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`)).toEqual([
        {subname: sub, subenabled: true, subslotname: `steep_${cleanId.toLowerCase()}`},
      ])
      // Every table, index, constraint and sequence as in the source at the snapshot; no stray object.
      await expectSameAsSource(at.url)
      // Changes after the snapshot arrive (exactly once: the checksums match).
      await sql(src, `UPDATE parent SET name = name || '!' WHERE id <= 10`)
      const want = await checksums(src, ['public.parent'])
      await waitFor('the subscription to bring the change', async () => JSON.stringify(await checksums(at.url, ['public.parent'])) === JSON.stringify(want), 60_000, 200)
    } finally {
      await sql(at.url, `ALTER SUBSCRIPTION ${sub} DISABLE; ALTER SUBSCRIPTION ${sub} SET (slot_name = NONE); DROP SUBSCRIPTION ${sub}`)
      await sql(src, `UPDATE parent SET name = rtrim(name, '!') WHERE id <= 10`)
    }
    // The killed runs' jobs keep their dead leases; not run again over the result by a worker later.
    await abandon(at.url, 'snapshot_apply')
  })

  // ---- snapshot generate ----

  const {genArgs, kept, reference, expectRecoveredSnapshot} = generateRecovery(() => src, dir)

  it('generate killed in the schema extraction (test-only failpoint, its locks held): no manifest, no file; the takeover completes identical to a clean run, one slot per snapshot', async () => {
    await reference()
    const before = await slotsAndPublications(src)
    const out = path.join(dir, 'gen-schema')
    // The test-only failpoint: the extraction's locks are held, no DDL read yet (see src/lib/failpoint.ts
    // for why a lock from outside cannot hold it there).
    const run = spawnCliEnv(genArgs(out), {STEEP_REPL_FAILPOINT: 'generate:schema'})
    await beforeEnd(run, waitStderr(run, 'failpoint generate:schema: paused'))
    const locks = await sql(server.url(), `SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE a.datname = $1 AND a.application_name = $2 AND l.relation IS NOT NULL AND l.mode = 'AccessShareLock' AND l.granted`, [srcDb, SNAP])
    expect(locks.length).toBeGreaterThan(0)
    await killCli(run)
    await waitBackendsGone(server.url(), srcDb, SNAP)
    expect(filesUnder(out)).toEqual([])
    const job = await newestJob(src, 'snapshot_generate')
    expect(job).toMatchObject({status: 'running', attempts: 1})
    const id = job.params.snapshotId as string
    // The kept slot and its publication outlive the killed command until the takeover.
    const sp = await slotsAndPublications(src)
    expect(sp.slots.map((x) => x.slot_name)).toContain(kept(id).slot)
    expect(sp.publications).toContain(kept(id).publication)
    const fin = await takeOverJob(src, job.id, 'snapshot_generate')
    expect(fin.status, fin.error_message ?? '').toBe('complete')
    expect(fin.attempts).toBe(2)
    await expectRecoveredSnapshot(out, id, before)
  })

  it('generate killed while writing the manifest (test-only failpoint): never a manifest.json, only its .partial; the takeover replaces it and completes identical', async () => {
    const before = await slotsAndPublications(src)
    const out = path.join(dir, 'gen-manifest')
    const run = spawnCliEnv(genArgs(out), {STEEP_REPL_FAILPOINT: 'generate:manifest'})
    await beforeEnd(run, waitStderr(run, 'failpoint generate:manifest: paused'))
    await killCli(run)
    expect(existsSync(path.join(out, 'manifest.json'))).toBe(false)
    const partial = readFileSync(path.join(out, 'manifest.json.partial'), 'utf8')
    expect(partial.length).toBeGreaterThan(0)
    expect(() => JSON.parse(partial)).toThrow()
    expect((await runCli(['snapshot', 'verify', out])).code).toBe(2)
    const job = await newestJob(src, 'snapshot_generate')
    expect(job).toMatchObject({status: 'running', attempts: 1})
    const id = job.params.snapshotId as string
    const fin = await takeOverJob(src, job.id, 'snapshot_generate')
    expect(fin.status, fin.error_message ?? '').toBe('complete')
    await expectRecoveredSnapshot(out, id, before)
  })

  it('generate --no-slot killed while writing the manifest: a plain re-run is refused (exit 2), --force replaces the partial snapshot', async () => {
    const before = await slotsAndPublications(src)
    const out = path.join(dir, 'gen-manifest-noslot')
    const run = spawnCliEnv(genArgs(out, ['--no-slot']), {STEEP_REPL_FAILPOINT: 'generate:manifest'})
    await beforeEnd(run, waitStderr(run, 'failpoint generate:manifest: paused'))
    await killCli(run)
    expect(existsSync(path.join(out, 'manifest.json'))).toBe(false)
    await waitFor('the temporary slot to go', async () => JSON.stringify(await slotsAndPublications(src)) === JSON.stringify(before))
    const plain = await runCli(genArgs(out, ['--no-slot']))
    expect(plain.code, plain.stderr).toBe(2)
    expect(plain.stderr).toMatch(/is not empty/)
    const forced = await runCli(genArgs(out, ['--no-slot', '--force']), {timeoutMs: 100_000})
    expect(forced.code, forced.stderr).toBe(0)
    expect((await runCli(['snapshot', 'verify', out])).code).toBe(0)
    expect(manifestContent(out)).toEqual(await reference())
    expect(filesUnder(out).filter((f) => f.endsWith('.partial'))).toEqual([])
    expect(await slotsAndPublications(src)).toEqual(before)
    await abandon(src, 'snapshot_generate')
  })

  // ---- node init ----

  const initArgs = (id: string, url: string, extra: string[] = []) => ['node', 'init', id, '--from', 'src', '-d', url, '--source', src, '--direct', '--parallel', '1', ...extra]
  const initNamesOf = (id: string) => ({slot: `steep_sub_${id}_from_src`, publication: `steep_pub_src_to_${id}`, subscription: `steep_sub_${id}_from_src`})
  const nodeState = async (url: string, id: string) => (await sql(url, `SELECT init_state FROM steep_repl.nodes WHERE node_id = $1`, [id]))[0]?.init_state
  const initProgress = async (url: string, id: string) => (await sql(url, `SELECT phase, created_tables FROM steep_repl.init_progress WHERE node_id = $1`, [id]).catch(() => []))[0]
  /** What an init leaves: its slot and publication on the source, its subscription and the relations on the target. */
  const initLeftovers = async (url: string, id: string) => {
    const nm = initNamesOf(id)
    return {
      slot: (await sql(src, `SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1`, [nm.slot]))[0].n,
      publication: (await sql(src, `SELECT count(*)::int AS n FROM pg_publication WHERE pubname = $1`, [nm.publication]))[0].n,
      subscription: (await sql(url, `SELECT count(*)::int AS n FROM pg_subscription WHERE subname = $1`, [nm.subscription]))[0].n,
      relations: (await objectShape(url)).relations,
    }
  }

  /** The documented recovery of a killed init, node cancel: exit 0, and nothing of the init is left anywhere. */
  const cancelInit = async (t: {url: string; db: string}, id: string, cancelled: Record<string, unknown>): Promise<void> => {
    const cancel = await runCli(['node', 'cancel', id, '-d', t.url, '--source', src, '--json'])
    expect(cancel.code, cancel.stderr).toBe(0)
    expect(cancel.json()).toMatchObject({...cancelled, slotDropped: true, publicationDropped: true, state: 'failed'})
    expect(await initLeftovers(t.url, id)).toEqual({slot: 0, publication: 0, subscription: 0, relations: []})
    expect(await nodeState(t.url, id)).toBe('failed')
  }

  // One target, one chain: node init killed, node cancel, node init again (killed in a later phase), … and the last init completes.
  let it_: {url: string; db: string}
  const NODE = 'pk1'

  it('node init killed in pre-data (its CREATE TABLE waits): refused again until cancelled (exit 1); node cancel drops the slot and publication', async () => {
    it_ = await newTarget()
    await registerTarget(it_.url, NODE, server.info.port)
    // The blocker (an uncommitted table of a name the pre-data creates) takes a transaction id, and
    // creating the init's slot waits for every transaction that has one: so first a gate after the
    // slot — the init's INSERT into init_slots waits for a SHARE lock (no transaction id) — then the
    // blocker, then the gate opens.
    const gate = await holdLock(it_.url, `LOCK TABLE steep_repl.init_slots IN SHARE MODE`)
    const run = spawnCli(initArgs(NODE, it_.url))
    let blocker: Awaited<ReturnType<typeof holdLock>> | undefined
    try {
      await beforeEnd(run, waitLockWait(server.url(), it_.db, INIT, /init_slots/))
      blocker = await holdLock(it_.url, `CREATE TABLE public.small (x int)`)
      await gate.release()
      await beforeEnd(run, waitLockWait(server.url(), it_.db, INIT, /CREATE TABLE/))
      expect(await nodeState(it_.url, NODE)).toBe('copying')
      await killCli(run)
    } finally {
      await gate.release()
      await blocker?.release()
    }
    await waitBackendsGone(server.url(), it_.db, INIT)
    await waitBackendsGone(server.url(), srcDb, INIT)
    // The pre-data transaction is gone whole; the slot and the publication stay until node cancel.
    expect(await initLeftovers(it_.url, NODE)).toEqual({slot: 1, publication: 1, subscription: 0, relations: []})
    // A killed init still counts as running: init again is refused until it is cancelled (exit 1, state).
    const refused = await runCli(initArgs(NODE, it_.url))
    expect(refused.code, refused.stderr).toBe(1)
    expect(refused.stderr).toMatch(/node init starts from uninitialized or failed/)
    await cancelInit(it_, NODE, {tablesDropped: 0, objectsDropped: 0})
  })

  it('node init killed in post-data (a statement on the partitioned table waits): node cancel drops its tables, views and sequences too', async () => {
    const run = spawnCli(initArgs(NODE, it_.url))
    let lock: Awaited<ReturnType<typeof holdLock>> | undefined
    try {
      await beforeEnd(run, waitFor('the init to commit its pre-data', async () => (await initProgress(it_.url, NODE))?.created_tables != null, 90_000, 20))
      lock = await holdLock(it_.url, `LOCK TABLE ONLY public.events IN ROW EXCLUSIVE MODE`)
      const w = await beforeEnd(run, waitLockWait(server.url(), it_.db, INIT, /events/, 90_000))
      expect(w.query).toMatch(/ALTER|CREATE/)
      // Every row is in: the kill lands after the data phase.
      expect(await checksums(it_.url, TABLES)).toEqual(await checksums(src, TABLES))
      await killCli(run)
    } finally {
      await lock?.release()
    }
    await waitBackendsGone(server.url(), it_.db, INIT)
    // Six tables (the partitioned root among them); the four other relations it created (a view and
    // three sequences: gone with their tables, or dropped).
    await cancelInit(it_, NODE, {tablesDropped: 6, objectsDropped: 4})
  })

  it('node init killed in catch-up (its subscription streams, its worker waits): node cancel drops subscription, slot, publication and tables; the next init gives the source', async () => {
    const nm = initNamesOf(NODE)
    // CREATE SUBSCRIPTION waits on pg_subscription (this file's own server) while the test arranges the catch-up.
    const subLock = await holdLock(it_.url, `LOCK TABLE pg_catalog.pg_subscription IN EXCLUSIVE MODE`)
    const run = spawnCli(initArgs(NODE, it_.url, ['--max-lag', '1kB']))
    let rowLock: Awaited<ReturnType<typeof holdLock>> | undefined
    try {
      await beforeEnd(run, waitLockWait(server.url(), it_.db, INIT, /CREATE SUBSCRIPTION/, 90_000))
      // Changes after the init's snapshot, and a lock on the target that stops the new
      // subscription's worker at the first of them: the lag stays over --max-lag.
      await sql(src, `INSERT INTO small (s) SELECT 'after the snapshot ' || i FROM generate_series(1, 3000) i`)
      rowLock = await holdLock(it_.url, `LOCK TABLE public.small IN SHARE MODE`)
      await subLock.release()
      await beforeEnd(
        run,
        waitFor(
          'the subscription worker to wait for the lock',
          async () =>
            (
              await sql(
                it_.url,
                `SELECT 1 FROM pg_stat_subscription s JOIN pg_locks l ON l.pid = s.pid
                  WHERE s.subname = $1 AND NOT l.granted AND l.relation = (SELECT c.oid FROM pg_class c WHERE c.relname = 'small' AND c.relnamespace = 'public'::regnamespace)`,
                [nm.subscription],
              )
            ).length > 0,
          90_000,
          50,
        ),
      )
      // What keeps the init in catch-up: the source's transaction is not applied, so the slot cannot
      // confirm past its commit. (The byte lag may already read a few bytes: the walsender can confirm
      // a position inside a transaction it has not sent yet; waitForCatchUp does not trust it.)
      expect((await sql<{n: number}>(it_.url, `SELECT count(*)::int AS n FROM public.small`))[0]!.n).toBe(500)
      await beforeEnd(run, new Promise((r) => setTimeout(r, 1500))) // six of the CLI's catch-up polls
      expect(await nodeState(it_.url, NODE)).toBe('catching_up')
      await killCli(run)
    } finally {
      await subLock.release()
      await rowLock?.release()
    }
    await waitBackendsGone(server.url(), it_.db, INIT)
    expect(await initLeftovers(it_.url, NODE)).toMatchObject({slot: 1, publication: 1, subscription: 1})
    await cancelInit(it_, NODE, {subscriptionDropped: true, tablesDropped: 6, objectsDropped: 4})

    // After three killed inits, one that runs to the end: identical to the source.
    const again = await runCli(initArgs(NODE, it_.url), {timeoutMs: 100_000})
    expect(again.code, again.stderr).toBe(0)
    expect(await nodeState(it_.url, NODE)).toBe('synchronized')
    expect(await checksums(it_.url, TABLES)).toEqual(await checksums(src, TABLES))
    expect(await objectShape(it_.url)).toEqual(await objectShape(src))
    // Not needed any more: the replication of this node.
    await sql(it_.url, `ALTER SUBSCRIPTION ${nm.subscription} DISABLE; ALTER SUBSCRIPTION ${nm.subscription} SET (slot_name = NONE); DROP SUBSCRIPTION ${nm.subscription}`)
    await waitFor('the slot to be released', async () => (await sql(src, `SELECT active FROM pg_replication_slots WHERE slot_name = $1`, [nm.slot]))[0]?.active === false)
    await sql(src, `SELECT pg_drop_replication_slot('${nm.slot}'); DROP PUBLICATION ${nm.publication}`)
  })
})
