// Fault catalogue, SIGKILL in every phase: the `--direct` CLI killed during snapshot apply's
// pre-data, index builds, post-data, sequences and subscribe phases; during snapshot generate's
// schema extraction and manifest writing; during node init's pre-data, post-data and catch-up.
// snapshot-faults.test.ts kills generate and apply mid-data, node-maintenance.test.ts node init
// mid-copy; docs/reliability.md is the table of the cases.
//
// Each phase is held open from outside, never hit by timing: the test holds a lock that the phase
// needs (an uncommitted CREATE TABLE of one of the names the pre-data creates, ROW EXCLUSIVE on a
// partitioned table's root that only post-data statements lock, ALTER SEQUENCE's lock that setval
// waits for, a lock on pg_subscription that CREATE SUBSCRIPTION waits for, a view's lock that the
// schema extraction's pg_dump-style locks wait for), sees the CLI's backend wait for it in
// pg_stat_activity, and kills the CLI there. The index builds are watched in
// pg_stat_progress_create_index. The manifest write lasts a millisecond: there the test-only
// failpoint STEEP_REPL_FAILPOINT=generate:manifest (src/lib/failpoint.ts) pauses the CLI with half
// of manifest.json written under its temporary name.
//
// One dedicated server: the subscribe cases lock the cluster-wide pg_subscription catalog, which
// must not stall the other files' subscriptions on the shared server.

import {existsSync, readdirSync, readFileSync, rmSync, mkdtempSync, statSync} from 'node:fs'
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
} from './harness.js'

const BIG = 150_000
const TABLES = ['public.parent', 'public.big', 'public.small', 'public.events']
const APPLY = 'steep-repl apply'
const INIT = 'steep-repl node init'
const SNAP = 'steep-repl snapshot'

/** Files under dir (relative paths), recursively. */
const filesUnder = (dir: string): string[] => (existsSync(dir) ? (readdirSync(dir, {recursive: true}) as string[]).filter((f) => statSync(path.join(dir, f)).isFile()).sort() : [])

/** What must be identical between two snapshots of the same data: the schema files and each part's rows and data hash. */
const manifestContent = (dir: string) => {
  const m = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'))
  return {
    schema: Object.fromEntries(Object.entries(m.schemaFiles).map(([k, v]) => [k, (v as {sha256: string}).sha256])),
    tables: m.tables.map((t: any) => ({table: `${t.schema}.${t.name}`, rows: t.rows, parts: t.parts.map((p: any) => `${p.rows}:${p.dataSha256}`)})),
    sequences: m.sequences,
  }
}

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

  /** A session that holds a lock for the test, released with release(). */
  const holdLock = async (url: string, statements: string): Promise<{release: () => Promise<void>; client: pg.Client}> => {
    const client = await adminClient(url)
    await client.query('BEGIN')
    await client.query(statements)
    let done = false
    return {
      client,
      release: async () => {
        if (done) return
        done = true
        await client.query('ROLLBACK').catch(() => {})
        await client.end().catch(() => {})
      },
    }
  }

  const applyPhase = async (url: string): Promise<string | undefined> => (await sql(url, `SELECT phase FROM steep_repl.snapshot_apply`).catch(() => []))[0]?.phase

  /** Awaits `wait`, failing with the CLI's output if the CLI ended before (it was to be killed mid-phase). */
  const before = async <T,>(run: ReturnType<typeof spawnCli>, wait: Promise<T>): Promise<T> => {
    const ended = run.done.then((r) => {
      throw new Error(`the CLI ended before the phase was reached: code ${r.code}, signal ${r.signal}\n${r.stderr}${r.stdout}`)
    })
    return Promise.race([wait, ended])
  }

  const kill = async (run: ReturnType<typeof spawnCli>): Promise<void> => {
    run.child.kill('SIGKILL')
    expect((await run.done).signal).toBe('SIGKILL')
  }

  /** The apply job that died is not run a second time over the resumed result by a worker later. */
  const abandon = async (url: string, operation: string): Promise<void> => {
    await sql(url, `UPDATE steep_repl.work_queue SET status = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, error_message = 'abandoned by the fault test' WHERE operation = $1 AND status = 'running'`, [operation])
  }

  const expectSameAsSource = async (url: string): Promise<void> => {
    expect(await checksums(url, TABLES)).toEqual(srcSums)
    expect(await objectShape(url)).toEqual(srcShape)
  }

  const resume = async (url: string, extra: string[] = []): Promise<void> => {
    const r = await runCli(['snapshot', 'apply', '-d', url, '--input', clean, '--direct', '--parallel', '1', '--resume', ...extra], {timeoutMs: 100_000})
    expect(r.code, r.stderr).toBe(0)
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

  it('apply killed in pre-data (its CREATE TABLE waits): nothing of it stays, --resume gives the clean result', async () => {
    const t = await newTarget()
    // An uncommitted table of a name the pre-data creates: its CREATE TABLE waits for this transaction.
    const blocker = await holdLock(t.url, `CREATE TABLE public.small (x int)`)
    const run = spawnCli(['snapshot', 'apply', '-d', t.url, '--input', clean, '--direct', '--parallel', '1'])
    try {
      await before(run, waitLockWait(server.url(), t.db, APPLY, /[\s\S]/))
      await kill(run)
    } finally {
      await blocker.release()
    }
    await waitBackendsGone(server.url(), t.db, APPLY)
    // The pre-data is one transaction: none of it committed, and no resume state either.
    expect((await objectShape(t.url)).relations).toEqual([])
    expect(await applyPhase(t.url)).toBeUndefined()
    await resume(t.url)
    await expectSameAsSource(t.url)
    await abandon(t.url, 'snapshot_apply')
  })

  it('apply killed during the index builds: the build in flight is rolled back, --resume builds the rest and the result is the clean one', async () => {
    const t = await newTarget()
    const run = spawnCli(['snapshot', 'apply', '-d', t.url, '--input', clean, '--direct', '--parallel', '1'])
    // Polled on one connection in the target database (regclass names resolve per database).
    const probe = await adminClient(t.url)
    try {
      await before(
        run,
        waitFor(
          'an index build of big by the apply',
          async () => (await probe.query(`SELECT 1 FROM pg_stat_progress_create_index WHERE datname = current_database() AND relid = to_regclass('public.big')`)).rows.length > 0,
          90_000,
          5,
        ),
      )
    } finally {
      await probe.end()
    }
    await kill(run)
    await waitBackendsGone(server.url(), t.db, APPLY)
    // The kill landed among big's builds: not all of its indexes exist.
    const built = await sql(t.url, `SELECT count(*)::int AS n FROM pg_index WHERE indrelid = 'big'::regclass`)
    const want = await sql(src, `SELECT count(*)::int AS n FROM pg_index WHERE indrelid = 'big'::regclass`)
    expect(built[0].n).toBeLessThan(want[0].n)
    // Without --resume the stopped apply is refused (exit 1, docs/exit-codes.md: state).
    const refused = await runCli(['snapshot', 'apply', '-d', t.url, '--input', clean, '--direct'])
    expect(refused.code, refused.stderr).toBe(1)
    expect(refused.stderr).toMatch(/stopped in phase \S+ on this database; continue it with --resume/)
    await resume(t.url)
    await expectSameAsSource(t.url)
    await abandon(t.url, 'snapshot_apply')
  })

  it('apply killed in post-data (a statement on the partitioned table waits): --resume runs what did not commit; the result is the clean one', async () => {
    const t = await newTarget()
    const run = spawnCli(['snapshot', 'apply', '-d', t.url, '--input', clean, '--direct', '--parallel', '1'])
    let lock: Awaited<ReturnType<typeof holdLock>> | undefined
    try {
      // Once the pre-data committed, ROW EXCLUSIVE on the root alone: the data phase loads the
      // partitions (which does not conflict), post-data's statements on the root wait.
      await before(run, waitFor('the apply to reach the data phase', async () => (await applyPhase(t.url)) === 'data', 90_000, 20))
      lock = await holdLock(t.url, `LOCK TABLE ONLY public.events IN ROW EXCLUSIVE MODE`)
      const w = await before(run, waitLockWait(server.url(), t.db, APPLY, /events/, 90_000))
      expect(await applyPhase(t.url)).toBe('post-data')
      expect(w.query).toMatch(/ALTER|CREATE/)
      await kill(run)
    } finally {
      await lock?.release()
    }
    await waitBackendsGone(server.url(), t.db, APPLY)
    expect(await applyPhase(t.url)).toBe('post-data')
    expect(await checksums(t.url, TABLES)).toEqual(srcSums)
    await resume(t.url)
    await expectSameAsSource(t.url)
    await abandon(t.url, 'snapshot_apply')
  })

  it('apply killed in the sequences phase (setval waits): --resume sets every sequence; values and is_called equal the source', async () => {
    const t = await newTarget()
    const run = spawnCli(['snapshot', 'apply', '-d', t.url, '--input', clean, '--direct', '--parallel', '1'])
    let lock: Awaited<ReturnType<typeof holdLock>> | undefined
    try {
      await before(run, waitFor('the apply to reach the data phase', async () => (await applyPhase(t.url)) === 'data', 90_000, 20))
      // ALTER SEQUENCE holds SHARE ROW EXCLUSIVE until the rollback; setval needs ROW EXCLUSIVE.
      lock = await holdLock(t.url, `ALTER SEQUENCE public.seq_used INCREMENT BY 1`)
      await before(run, waitLockWait(server.url(), t.db, APPLY, /setval/, 90_000))
      expect(await applyPhase(t.url)).toBe('sequences')
      await kill(run)
    } finally {
      await lock?.release()
    }
    await waitBackendsGone(server.url(), t.db, APPLY)
    expect(await applyPhase(t.url)).toBe('sequences')
    await resume(t.url)
    await expectSameAsSource(t.url)
    await abandon(t.url, 'snapshot_apply')
  })

  it('apply --subscribe killed while CREATE SUBSCRIPTION waits: --resume ends with exactly one subscription at the snapshot slot, and changes arrive', async () => {
    const t = await newTarget()
    const sub = `steep_sub_${cleanId.toLowerCase()}`
    // pg_subscription is shared by the cluster (this file's own server): CREATE SUBSCRIPTION waits.
    const lock = await holdLock(t.url, `LOCK TABLE pg_catalog.pg_subscription IN EXCLUSIVE MODE`)
    const run = spawnCli(['snapshot', 'apply', '-d', t.url, '--input', clean, '--direct', '--parallel', '1', '--subscribe', '--source', src])
    try {
      await before(run, waitLockWait(server.url(), t.db, APPLY, /CREATE SUBSCRIPTION/, 90_000))
      expect(await applyPhase(t.url)).toBe('subscribe')
      await kill(run)
    } finally {
      await lock.release()
    }
    // The statement that was waiting may still complete in its orphaned backend: the subscription
    // then exists, and --resume must take it as its own rather than fail or make a second one.
    await waitBackendsGone(server.url(), t.db, APPLY)
    expect(await applyPhase(t.url)).toBe('subscribe')
    await resume(t.url, ['--subscribe', '--source', src])
    expect(await applyPhase(t.url)).toBe('done')
    try {
      expect(await sql(t.url, `SELECT subname, subenabled, subslotname FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`)).toEqual([
        {subname: sub, subenabled: true, subslotname: `steep_${cleanId.toLowerCase()}`},
      ])
      await expectSameAsSource(t.url)
      // Changes after the snapshot arrive (exactly once: the checksums match).
      await sql(src, `UPDATE parent SET name = name || '!' WHERE id <= 10`)
      const want = await checksums(src, ['public.parent'])
      await waitFor('the subscription to bring the change', async () => JSON.stringify(await checksums(t.url, ['public.parent'])) === JSON.stringify(want), 60_000, 200)
    } finally {
      await sql(src, `UPDATE parent SET name = rtrim(name, '!') WHERE id <= 10`)
      await sql(t.url, `ALTER SUBSCRIPTION ${sub} DISABLE; ALTER SUBSCRIPTION ${sub} SET (slot_name = NONE); DROP SUBSCRIPTION ${sub}`)
      srcSums = await checksums(src, TABLES)
    }
    await abandon(t.url, 'snapshot_apply')
  })
})
