// Fault catalogue, snapshots: each case injects one fault into a real run (the CLI killed with
// SIGKILL, a backend terminated, the server restarted, the disk full, the source restarted under a
// kept slot) and checks what must hold afterwards. docs/reliability.md is the table of these cases.
//
// One dedicated server (it gets restarted), a source database with a table big enough that its COPY
// takes a few seconds, and --parallel 1 so that "mid-data" is one COPY we can watch in
// pg_stat_progress_copy.

import {existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync} from 'node:fs'
import {execFileSync} from 'node:child_process'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {runCli} from '../helpers/cli.js'
import {sql, startTestServer, withDatabase} from '../helpers/pg.js'
import type {ServerHandle} from '../helpers/servers.js'
import {checksums, killCli, newestJob, slotsAndPublications, spawnCli, waitCopying, waitFor} from './harness.js'

const ROWS = 400_000
const TABLES = ['public.big', 'public.small']

describe('fault catalogue: snapshot generate and apply', {timeout: 120_000}, () => {
  let server: ServerHandle
  let src: string
  let srcSums: Record<string, string>
  const dir = mkdtempSync(path.join(tmpdir(), 'steep-faults-'))
  const clean = path.join(dir, 'clean')
  let cleanSnapshotId: string
  let n = 0
  const newTarget = async (): Promise<{url: string; db: string}> => {
    const db = `tgt_${++n}`
    await sql(server.url(), `CREATE DATABASE ${db}`)
    return {url: withDatabase(server.url(), db), db}
  }

  beforeAll(async () => {
    // Throwaway servers run with synchronous_commit = off: a crash (pg_ctl stop -m immediate)
    // would then lose the last commits — the install and the job row of the apply under test —
    // which is PostgreSQL's documented trade-off, not the tool's. Commits are durable here.
    server = await startTestServer({settings: {synchronous_commit: 'on'}})
    await sql(server.url(), `CREATE DATABASE src`)
    src = withDatabase(server.url(), 'src')
    await sql(
      src,
      `CREATE TABLE big (id int PRIMARY KEY, v int NOT NULL);
       INSERT INTO big SELECT i, i % 9973 FROM generate_series(1, ${ROWS}) i;
       CREATE TABLE small (id int PRIMARY KEY, s text);
       INSERT INTO small SELECT i, 'row ' || i FROM generate_series(1, 1000) i;
       CREATE SEQUENCE seq; SELECT nextval('seq') FROM generate_series(1, 5);`,
    )
    expect((await runCli(['install', '-d', src])).code).toBe(0)
    srcSums = await checksums(src, TABLES)
    const g = await runCli(['snapshot', 'generate', '-d', src, '--output', clean, '--direct', '--parallel', '1', '--compression', 'none', '--json'], {timeoutMs: 120_000})
    expect(g.code, g.stderr).toBe(0)
    cleanSnapshotId = g.json().result.snapshotId
  }, 240_000)

  afterAll(async () => {
    await server?.stop()
    rmSync(dir, {recursive: true, force: true})
  })

  const kept = (id: string) => `steep_${id.toLowerCase()}`

  /** Expires the job's lease (as if its 60 s had passed) and lets a worker reclaim and finish it. */
  const takeOver = async (jobId: string): Promise<void> => {
    await sql(src, `UPDATE steep_repl.work_queue SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, [jobId])
    const worker = spawnCli(['worker', '-d', src, '--operations', 'snapshot_generate', '--poll-interval', '1s'])
    try {
      const fin = await waitFor(
        'the generate job to finish on the worker',
        async () => {
          const [j] = await sql(src, `SELECT status, attempts, error_message FROM steep_repl.work_queue WHERE id = $1`, [jobId])
          return j.status === 'complete' || j.status === 'failed' ? j : undefined
        },
        100_000,
        200,
      )
      expect(fin.status, fin.error_message).toBe('complete')
      expect(fin.attempts).toBe(2)
    } finally {
      worker.child.kill('SIGTERM')
      await worker.done
    }
  }

  it('generate killed with SIGKILL mid-data: no manifest, kept slot inactive, job reclaimable; a worker takes it over and completes', async () => {
    const out = path.join(dir, 'killed-gen')
    const run = spawnCli(['snapshot', 'generate', '-d', src, '--output', out, '--direct', '--parallel', '1', '--compression', 'none'])
    await waitCopying(server.url(), 'src', 20_000, 60_000, 'COPY TO')
    await killCli(run)

    // No half-written manifest: it is written last.
    expect(existsSync(path.join(out, 'manifest.json'))).toBe(false)
    const job = await newestJob(src, 'snapshot_generate')
    // The job still holds the dead executor's lease: reclaimable when it expires (not lost, not complete).
    expect(job).toMatchObject({status: 'running', attempts: 1})
    expect(job.lease_owner).toBeTruthy()
    const id = job.params.snapshotId as string
    // The kept slot survives its creator (it is not temporary) but is released when the backend notices.
    await waitFor('the kept slot to become inactive', async () => (await slotsAndPublications(src)).slots.find((s) => s.slot_name === kept(id) && !s.active))
    expect((await slotsAndPublications(src)).publications).toContain(`steep_pub_${id.toLowerCase()}`)

    // The lease runs out (fast-forwarded: its 60 s are not what is tested) and a worker takes it over:
    // attempt 2 drops the stale slot and publication, replaces the partial files and completes.
    await takeOver(job.id)
    expect((await runCli(['snapshot', 'verify', out])).code).toBe(0)
    const sp = await slotsAndPublications(src)
    // Exactly one slot and publication per complete snapshot: the clean one and the taken-over one.
    expect(sp.slots.map((s) => s.slot_name).sort()).toEqual([kept(cleanSnapshotId), kept(id)].sort())
    expect(sp.publications.sort()).toEqual([`steep_pub_${cleanSnapshotId.toLowerCase()}`, `steep_pub_${id.toLowerCase()}`].sort())
    // Not needed by the later cases.
    expect((await runCli(['snapshot', 'delete', id, '-d', src, '--drop-slot'])).code).toBe(0)
  })

  it('a worker running generate killed with SIGKILL mid-data: another worker reclaims the job after the lease and completes it', async () => {
    const out = path.join(dir, 'killed-worker')
    const q = await runCli(['snapshot', 'generate', '-d', src, '--output', out, '--parallel', '1', '--compression', 'none', '--no-wait', '--json'])
    expect(q.code, q.stderr).toBe(0)
    const jobId = String(q.json().id)
    const first = spawnCli(['worker', '-d', src, '--operations', 'snapshot_generate', '--poll-interval', '1s'])
    await waitCopying(server.url(), 'src', 20_000, 60_000, 'COPY TO')
    await killCli(first)
    expect(existsSync(path.join(out, 'manifest.json'))).toBe(false)
    const [job] = await sql(src, `SELECT status, attempts, lease_owner, params FROM steep_repl.work_queue WHERE id = $1`, [jobId])
    expect(job).toMatchObject({status: 'running', attempts: 1})
    expect(job.lease_owner).toMatch(/^worker/)
    await takeOver(jobId)
    expect((await runCli(['snapshot', 'verify', out])).code).toBe(0)
    const id = job.params.snapshotId as string
    expect((await slotsAndPublications(src)).slots.map((s) => s.slot_name).sort()).toEqual([kept(cleanSnapshotId), kept(id)].sort())
    expect((await runCli(['snapshot', 'delete', id, '-d', src, '--drop-slot'])).code).toBe(0)
  })

  it('generate --no-slot killed with SIGKILL mid-data: the temporary slot dies with its connection; --force re-run gives a verified snapshot', async () => {
    const out = path.join(dir, 'killed-gen-noslot')
    const before = (await slotsAndPublications(src)).slots.map((s) => s.slot_name)
    const run = spawnCli(['snapshot', 'generate', '-d', src, '--output', out, '--direct', '--parallel', '1', '--compression', 'none', '--no-slot'])
    await waitCopying(server.url(), 'src', 20_000, 60_000, 'COPY TO')
    await waitFor('the temporary slot to be listed', async () => (await slotsAndPublications(src)).slots.some((s) => s.temporary))
    await killCli(run)
    expect(existsSync(path.join(out, 'manifest.json'))).toBe(false)
    await waitFor('the temporary slot to disappear', async () => (await slotsAndPublications(src)).slots.every((s) => !s.temporary))
    expect((await slotsAndPublications(src)).slots.map((s) => s.slot_name)).toEqual(before)
    // The killed job will be reclaimed by a worker when its lease expires; here a user re-runs instead.
    const killed = await newestJob(src, 'snapshot_generate')
    expect(killed.status).toBe('running')
    const again = await runCli(['snapshot', 'generate', '-d', src, '--output', out, '--direct', '--parallel', '1', '--compression', 'none', '--no-slot', '--force'], {timeoutMs: 100_000})
    expect(again.code, again.stderr).toBe(0)
    expect((await runCli(['snapshot', 'verify', out])).code).toBe(0)
    // Cancel the abandoned attempt so no worker of a later test picks it up.
    await sql(src, `UPDATE steep_repl.work_queue SET status = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, error_message = 'abandoned by the fault test' WHERE id = $1`, [killed.id])
  })

  it('apply killed with SIGKILL mid-data: --resume completes and every table equals the source', async () => {
    const t = await newTarget()
    const run = spawnCli(['snapshot', 'apply', '-d', t.url, '--input', clean, '--direct', '--parallel', '1'])
    await waitCopying(server.url(), t.db, 20_000, 60_000, 'COPY FROM')
    await killCli(run)
    // The killed COPY's transaction is rolled back: the table holds none of the partial part.
    await waitFor('the killed COPY backend to go', async () => (await sql(server.url(), `SELECT 1 FROM pg_stat_progress_copy WHERE datname = $1`, [t.db])).length === 0)
    expect((await sql(t.url, `SELECT count(*)::int n FROM big`))[0].n).toBe(0)
    const r = await runCli(['snapshot', 'apply', '-d', t.url, '--input', clean, '--direct', '--parallel', '1', '--resume'], {timeoutMs: 100_000})
    expect(r.code, r.stderr).toBe(0)
    expect(await checksums(t.url, TABLES)).toEqual(srcSums)
    expect((await sql(t.url, `SELECT last_value::int, is_called FROM seq`))[0]).toEqual({last_value: 5, is_called: true})
  })

  it('a loading backend killed with pg_terminate_backend during apply: the attempt fails as a connection failure, the job is retried in the same command, resumes and completes identical', async () => {
    const t = await newTarget()
    const run = spawnCli(['snapshot', 'apply', '-d', t.url, '--input', clean, '--direct', '--parallel', '1'])
    const pid = await waitCopying(server.url(), t.db, 20_000, 60_000, 'COPY FROM')
    await sql(server.url(), `SELECT pg_terminate_backend($1)`, [pid])
    const r = await run.done
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/attempt 1 failed \(.*terminat.*\); retrying in 5s/i)
    const job = await newestJob(t.url, 'snapshot_apply')
    expect(job).toMatchObject({status: 'complete', attempts: 2})
    expect(await checksums(t.url, TABLES)).toEqual(srcSums)
  })

  it('a copying backend killed with pg_terminate_backend during generate: retried in the same command, the stale slot replaced, one verified snapshot and one slot', async () => {
    const out = path.join(dir, 'term-gen')
    const before = (await slotsAndPublications(src)).slots.map((s) => s.slot_name)
    const run = spawnCli(['snapshot', 'generate', '-d', src, '--output', out, '--direct', '--parallel', '1', '--compression', 'none'])
    const pid = await waitCopying(server.url(), 'src', 20_000, 60_000, 'COPY TO')
    await sql(server.url(), `SELECT pg_terminate_backend($1)`, [pid])
    const r = await run.done
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/attempt 1 failed \(.*terminat.*\); retrying in 5s/i)
    const job = await newestJob(src, 'snapshot_generate')
    expect(job).toMatchObject({status: 'complete', attempts: 2})
    expect((await runCli(['snapshot', 'verify', out])).code).toBe(0)
    const after = (await slotsAndPublications(src)).slots.map((s) => s.slot_name)
    expect(after.sort()).toEqual([...before, kept(job.params.snapshotId)].sort())
    expect((await runCli(['snapshot', 'delete', job.params.snapshotId, '-d', src, '--drop-slot'])).code).toBe(0)
  })

  for (const mode of ['fast', 'immediate'] as const) {
    it(`target server restarted (pg_ctl stop -m ${mode} + start) mid-apply: exit 6 (connection), the job left reclaimable, --resume completes identical`, async () => {
      const t = await newTarget()
      const run = spawnCli(['snapshot', 'apply', '-d', t.url, '--input', clean, '--direct', '--parallel', '1'])
      await waitCopying(server.url(), t.db, 20_000, 60_000, 'COPY FROM')
      await server.embedded!.restart(mode)
      const r = await run.done
      expect(r.code, r.stderr).toBe(6)
      expect(r.stderr).toMatch(/lost the connection to the server/)
      // Nobody could record the end: the job keeps the dead command's lease until it expires.
      const job = await newestJob(t.url, 'snapshot_apply')
      expect(job.status).toBe('running')
      expect(job.lease_owner).toBeTruthy()
      const again = await runCli(['snapshot', 'apply', '-d', t.url, '--input', clean, '--direct', '--parallel', '1', '--resume'], {timeoutMs: 100_000})
      expect(again.code, again.stderr).toBe(0)
      expect(await checksums(t.url, TABLES)).toEqual(srcSums)
      // The apply that died is not run a second time over the resumed result by a worker later.
      await sql(t.url, `UPDATE steep_repl.work_queue SET status = 'cancelled', lease_owner = NULL, lease_expires_at = NULL WHERE id = $1`, [job.id])
    })
  }

  it('source server restarted (-m fast) mid-generate: exit 6, no manifest, the job left reclaimable; a worker takes it over, drops the stale kept slot and completes', async () => {
    const out = path.join(dir, 'restart-gen')
    const run = spawnCli(['snapshot', 'generate', '-d', src, '--output', out, '--direct', '--parallel', '1', '--compression', 'none'])
    await waitCopying(server.url(), 'src', 20_000, 60_000, 'COPY TO')
    await server.embedded!.restart('fast')
    const r = await run.done
    expect(r.code, r.stderr).toBe(6)
    expect(r.stderr).toMatch(/lost the connection to the server/)
    expect(existsSync(path.join(out, 'manifest.json'))).toBe(false)
    const job = await newestJob(src, 'snapshot_generate')
    expect(job).toMatchObject({status: 'running', attempts: 1})
    const id = job.params.snapshotId as string
    // A kept slot is persistent: it outlives both the command and the restart, until the takeover.
    expect((await slotsAndPublications(src)).slots.some((s) => s.slot_name === kept(id))).toBe(true)
    await takeOver(job.id)
    expect((await runCli(['snapshot', 'verify', out])).code).toBe(0)
    const sp = await slotsAndPublications(src)
    expect(sp.slots.map((s) => s.slot_name).sort()).toEqual([kept(cleanSnapshotId), kept(id)].sort())
    expect((await runCli(['snapshot', 'delete', id, '-d', src, '--drop-slot'])).code).toBe(0)
  })

  it('the snapshot directory fills up (a 4 MB tmpfs): generate fails with ENOSPC, exit 1, leaves no file and no kept slot', async (ctx) => {
    const mnt = path.join(dir, 'full')
    mkdirSync(mnt)
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt], {stdio: 'pipe'})
    } catch (err) {
      ctx.skip(`cannot mount a tmpfs here (not root or no CAP_SYS_ADMIN): ${(err as Error).message.split('\n')[0]}`)
      return
    }
    try {
      const out = path.join(mnt, 'snap')
      const before = await slotsAndPublications(src)
      const r = await runCli(['snapshot', 'generate', '-d', src, '--output', out, '--direct', '--parallel', '1', '--compression', 'none'], {timeoutMs: 100_000})
      expect(r.code, r.stderr).toBe(1)
      expect(r.stderr).toMatch(/ENOSPC|no space left/i)
      expect(existsSync(out) ? readdirSync(out, {recursive: true}) : []).toEqual([])
      expect(await slotsAndPublications(src)).toEqual(before)
      const job = await newestJob(src, 'snapshot_generate')
      expect(job.status).toBe('failed')
      expect(job.error_message).toMatch(/ENOSPC|no space left/i)
    } finally {
      execFileSync('umount', [mnt])
    }
  })

  it('a kept slot survives a restart of its source: apply --subscribe after the restart streams the changes made before and after it', async () => {
    // Changes after the clean snapshot, before the restart: retained by its slot across the restart.
    await sql(src, `INSERT INTO small VALUES (5001, 'before restart'); UPDATE big SET v = -1 WHERE id = 7`)
    await server.embedded!.restart('fast')
    const sp = await slotsAndPublications(src)
    expect(sp.slots.find((s) => s.slot_name === kept(cleanSnapshotId))).toBeTruthy()
    await sql(src, `INSERT INTO small VALUES (5002, 'after restart')`)
    const t = await newTarget()
    const r = await runCli(['snapshot', 'apply', '-d', t.url, '--input', clean, '--direct', '--parallel', '1', '--subscribe', '--source', src], {timeoutMs: 100_000})
    expect(r.code, r.stderr).toBe(0)
    try {
      const want = await checksums(src, TABLES)
      await waitFor('the subscription to catch up', async () => JSON.stringify(await checksums(t.url, TABLES)) === JSON.stringify(want), 60_000, 250)
    } finally {
      await sql(t.url, `DROP SUBSCRIPTION IF EXISTS ${`steep_sub_${cleanSnapshotId.toLowerCase()}`}`)
    }
  })
})
