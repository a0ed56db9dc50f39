// What the fault catalogue needs beyond test/helpers: the CLI as a child process the test can kill
// at a chosen moment, polling waits with deadlines (never fixed sleeps: the machine is loaded), and
// per-table checksums to compare a resumed result with a clean one.

import {type ChildProcess, spawn} from 'node:child_process'
import {existsSync, readdirSync, readFileSync, statSync} from 'node:fs'
import path from 'node:path'
import type pg from 'pg'
import {expect} from 'vitest'
import {BIN, runCli} from '../helpers/cli.js'
import {adminClient, sql} from '../helpers/pg.js'
import {installSchema} from '../integration/merge-fixtures.js'

export interface Spawned {
  child: ChildProcess
  /** Resolves when the process ended: its exit code (or 128 + signal number style: null code) and output. */
  done: Promise<{code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string}>
}

/** Starts the built CLI without waiting for it (no TTY, no PG* from the shell, no user config). */
export function spawnCli(args: string[]): Spawned {
  const env: Record<string, string | undefined> = {...process.env, CI: '1', NO_COLOR: '1', XDG_CONFIG_HOME: '/nonexistent-steep-test-config'}
  for (const k of Object.keys(env)) if (k.startsWith('PG') || k === 'STEEP_REPL_CONFIG') delete env[k]
  const child = spawn(process.execPath, [BIN, ...args], {env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe']})
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d) => (stdout += d))
  child.stderr!.on('data', (d) => (stderr += d))
  const done = new Promise<{code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string}>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({code, signal, stdout, stderr}))
  })
  return {child, done}
}

/** Polls `probe` until it returns a truthy value, or throws naming `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 60_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastErr: unknown
  for (;;) {
    try {
      const v = await probe()
      if (v) return v
    } catch (err) {
      lastErr = err
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${(lastErr as Error).message})` : ''}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/**
 * Waits until a COPY is moving rows in database `db` (pg_stat_progress_copy, both directions), and
 * returns the copying backend's pid. This is "mid-data": the bytes are flowing, the part is not done.
 */
export async function waitCopying(serverUrl: string, db: string, minTuples = 1, timeoutMs = 60_000, command?: 'COPY TO' | 'COPY FROM'): Promise<number> {
  return waitFor(
    `a COPY moving rows in ${db}`,
    async () => {
      const rows = await sql<{pid: number}>(
        serverUrl,
        `SELECT pid FROM pg_stat_progress_copy WHERE datname = $1 AND tuples_processed >= $2 AND ($3::text IS NULL OR command = $3) LIMIT 1`,
        [db, minTuples, command ?? null],
      )
      return rows[0]?.pid
    },
    timeoutMs,
    20,
  )
}

/** md5 of every row of each table, in primary-key order, plus its row count. */
export async function checksums(url: string, tables: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const t of tables) {
    const [r] = await sql<{n: number; h: string | null}>(url, `SELECT count(*)::int AS n, md5(string_agg(t::text, '|' ORDER BY t.id)) AS h FROM ${t} t`)
    out[t] = `${r!.n}:${r!.h}`
  }
  return out
}

/** Replication slots and publications of one database. */
export async function slotsAndPublications(url: string): Promise<{slots: Array<{slot_name: string; active: boolean; temporary: boolean}>; publications: string[]}> {
  const slots = await sql(url, `SELECT slot_name, active, temporary FROM pg_replication_slots WHERE database = current_database() ORDER BY 1`)
  const pubs = await sql<{pubname: string}>(url, `SELECT pubname FROM pg_publication ORDER BY 1`)
  return {slots, publications: pubs.map((p) => p.pubname)}
}

/** The newest job of an operation in the queue database. */
export async function newestJob(url: string, operation: string): Promise<any> {
  const [r] = await sql(
    url,
    `SELECT id::text, status, attempts, max_attempts, lease_owner, lease_expires_at, error_message, params, result FROM steep_repl.work_queue WHERE operation = $1 ORDER BY id DESC LIMIT 1`,
    [operation],
  )
  return r
}

/** Waits until a transaction that has written (holds an xid) is open in database `db`; returns its backend's pid. */
export async function waitWriting(serverUrl: string, db: string, timeoutMs = 60_000): Promise<number> {
  return waitFor(
    `a writing transaction in ${db}`,
    async () => (await sql<{pid: number}>(serverUrl, `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND backend_xid IS NOT NULL AND pid <> pg_backend_pid() LIMIT 1`, [db]))[0]?.pid,
    timeoutMs,
    20,
  )
}

// ---- workers killed mid-job (worker-kills.test.ts) ----

import {shared} from '../helpers/pg.js'

/** The Unix-socket conninfo (trust, no password) of database `db` on the shared test server (or the server whose socket conninfo is given). */
export function socketConninfo(db: string, socket: string = shared().socket): string {
  if (!/dbname=\S+/.test(socket)) throw new Error('the test server has no Unix-socket conninfo (container run?)')
  return socket.replace(/dbname=\S+/, `dbname=${db}`)
}

/** One job's row, as the queue holds it. */
export async function jobRow(url: string, id: string): Promise<any> {
  const [r] = await sql(
    url,
    `SELECT id::text, operation, status, attempts, max_attempts, executor, lease_owner, lease_expires_at, error_message, params, result FROM steep_repl.work_queue WHERE id = $1`,
    [id],
  )
  return r
}

/** Ends a running job's lease now, as if its executor had stopped renewing it a lease length ago. */
export async function expireLease(url: string, id: string): Promise<void> {
  const [r] = await sql(url, `UPDATE steep_repl.work_queue SET lease_expires_at = now() - interval '1 second' WHERE id = $1 AND status = 'running' RETURNING id`, [id])
  if (!r) throw new Error(`job ${id} is not running: no lease to expire`)
}

/**
 * Starts `steep-repl worker` for one operation on `url`, waits until job `id` ends (complete,
 * failed or cancelled), stops the worker (SIGTERM) and returns the job's row and the worker's log.
 */
export async function workerRun(url: string, operation: string, id: string, timeoutMs = 100_000): Promise<{job: any; log: string; code: number | null}> {
  const w = spawnCli(['worker', '-d', url, '--operations', operation, '--poll-interval', '300ms'])
  try {
    const job = await waitFor(
      `job ${id} to end on the worker`,
      async () => {
        const j = await jobRow(url, id)
        return ['complete', 'failed', 'cancelled'].includes(j.status) ? j : undefined
      },
      timeoutMs,
      200,
    )
    w.child.kill('SIGTERM')
    const out = await w.done
    return {job, log: out.stdout + out.stderr, code: out.code}
  } finally {
    if (w.child.exitCode === null && w.child.signalCode === null) {
      w.child.kill('SIGKILL')
      await w.done
    }
  }
}

// ---- Added for phase-kills.test.ts (SIGKILL in every phase) ----

/** spawnCli with extra environment variables (e.g. STEEP_REPL_FAILPOINT, test-only). */
export function spawnCliEnv(args: string[], extra: Record<string, string>): Spawned {
  const saved: Record<string, string | undefined> = {}
  for (const [k, v] of Object.entries(extra)) {
    saved[k] = process.env[k]
    process.env[k] = v
  }
  try {
    return spawnCli(args)
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  }
}

/** Waits until the spawned CLI printed `text` on stderr (a failpoint's "paused" line). */
export async function waitStderr(run: Spawned, text: string, timeoutMs = 90_000): Promise<void> {
  let err = ''
  run.child.stderr!.on('data', (d) => (err += d))
  await waitFor(`"${text}" on the CLI's stderr`, async () => err.includes(text), timeoutMs, 20)
}

/**
 * A backend of the CLI (its application_name) in database `db` that waits for a heavyweight lock:
 * the phase the test holds open with a lock of its own. Returns its pid and query.
 */
export async function waitLockWait(serverUrl: string, db: string, app: string, queryPattern: RegExp, timeoutMs = 60_000): Promise<{pid: number; query: string}> {
  return waitFor(
    `a "${app}" backend in ${db} waiting for a lock in ${queryPattern}`,
    async () => {
      const rows = await sql<{pid: number; query: string}>(
        serverUrl,
        `SELECT pid, query FROM pg_stat_activity WHERE datname = $1 AND application_name = $2 AND wait_event_type = 'Lock'`,
        [db, app],
      )
      return rows.find((r) => queryPattern.test(r.query))
    },
    timeoutMs,
    25,
  )
}

/** Waits until no backend of `app` is left in `db` (a killed client's backends notice and go). */
export async function waitBackendsGone(serverUrl: string, db: string, app: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    `the "${app}" backends in ${db} to go`,
    async () => (await sql(serverUrl, `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = $2`, [db, app])).length === 0,
    timeoutMs,
    50,
  )
}

/**
 * What a restore must reproduce beside the rows, in one comparable value: the relations of the
 * non-system schemas (kind, name), every index's definition, every constraint's definition and
 * whether it is validated, and every sequence's last_value and is_called. steep_repl is left out.
 */
export async function objectShape(url: string): Promise<{relations: string[]; indexes: string[]; constraints: string[]; sequences: string[]}> {
  const user = `n.nspname NOT IN ('pg_catalog', 'information_schema', 'steep_repl', 'pg_toast')`
  const relations = await sql<{r: string}>(url, `SELECT c.relkind::text || ' ' || n.nspname || '.' || c.relname AS r FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${user} AND c.relkind <> 't' ORDER BY 1`)
  const indexes = await sql<{r: string}>(url, `SELECT pg_get_indexdef(i.indexrelid) AS r FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${user} ORDER BY 1`)
  const constraints = await sql<{r: string}>(
    url,
    `SELECT co.conrelid::regclass::text || ' ' || co.conname || ' ' || pg_get_constraintdef(co.oid) || CASE WHEN co.convalidated THEN '' ELSE ' (not valid)' END AS r
       FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace WHERE ${user} ORDER BY 1`,
  )
  const seqs = await sql<{q: string}>(url, `SELECT format('%I.%I', n.nspname, c.relname) AS q FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'S' AND ${user} ORDER BY 1`)
  const sequences: string[] = []
  for (const s of seqs) {
    const [v] = await sql<{last_value: string; is_called: boolean}>(url, `SELECT last_value::text, is_called FROM ${s.q}`)
    sequences.push(`${s.q} ${v!.last_value} ${v!.is_called}`)
  }
  return {relations: relations.map((x) => x.r), indexes: indexes.map((x) => x.r), constraints: constraints.map((x) => x.r), sequences}
}

/**
 * The takeover path of a job whose executor died: its lease is expired (as if its time had passed;
 * the length of a lease is not what is tested) and a `steep-repl worker` on `queueUrl` reclaims and
 * finishes it. Returns the job's final row (status, attempts, error_message).
 */
export async function takeOverJob(queueUrl: string, jobId: string, operation: string, timeoutMs = 100_000): Promise<{status: string; attempts: number; error_message: string | null}> {
  await expireLease(queueUrl, jobId)
  return (await workerRun(queueUrl, operation, jobId, timeoutMs)).job
}

// ---- Shared by phase-kills.test.ts and more-phase-kills.test.ts ----

/** Files under dir (relative paths), recursively. */
export const filesUnder = (dir: string): string[] => (existsSync(dir) ? (readdirSync(dir, {recursive: true}) as string[]).filter((f) => statSync(path.join(dir, f)).isFile()).sort() : [])

/** What must be identical between two snapshots of the same data: the schema files and each part's rows and data hash. */
export const manifestContent = (dir: string) => {
  const m = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'))
  return {
    schema: Object.fromEntries(Object.entries(m.schemaFiles).map(([k, v]) => [k, (v as {sha256: string}).sha256])),
    tables: m.tables.map((t: any) => ({table: `${t.schema}.${t.name}`, rows: t.rows, parts: t.parts.map((p: any) => `${p.rows}:${p.dataSha256}`)})),
    sequences: m.sequences,
  }
}

/** A session that holds a lock (or an xid) for the test, released with release(). */
export async function holdLock(url: string, statements: string): Promise<{release: () => Promise<void>; client: pg.Client}> {
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

/** Awaits `wait`, failing with the CLI's output if the CLI ended first (it was to be killed mid-phase). */
export async function beforeEnd<T>(run: Spawned, wait: Promise<T>): Promise<T> {
  const ended = run.done.then((r) => {
    throw new Error(`the CLI ended before the phase was reached: code ${r.code}, signal ${r.signal}\n${r.stderr}${r.stdout}`)
  })
  return Promise.race([wait, ended])
}

/** SIGKILL, and the process did die of it. */
export async function killCli(run: Spawned): Promise<void> {
  run.child.kill('SIGKILL')
  expect((await run.done).signal).toBe('SIGKILL')
}

/** The phase snapshot apply recorded on the target (undefined before its state exists). */
export const applyPhase = async (url: string): Promise<string | undefined> => (await sql(url, `SELECT phase FROM steep_repl.snapshot_apply`).catch(() => []))[0]?.phase

/**
 * Generate runs of public.parent and public.small from `src()` into `dir`, and what a recovered
 * (taken over) one must be: identical to a clean --no-slot run, verified, no temporary file, one
 * slot and publication per complete snapshot; then deleted, the source as before.
 */
export function generateRecovery(src: () => string, dir: string) {
  /** parent and small only (fast); the schema extraction still locks every table and view of the schema, as pg_dump does. */
  const genArgs = (out: string, extra: string[] = []) => [
    'snapshot', 'generate', '-d', src(), '--output', out, '--direct', '--parallel', '1', '--compression', 'none', '--table', 'public.parent', '--table', 'public.small', ...extra,
  ]
  const kept = (id: string) => ({slot: `steep_${id.toLowerCase()}`, publication: `steep_pub_${id.toLowerCase()}`})
  let genReference: ReturnType<typeof manifestContent> | undefined
  /** A clean run of the same selection (no slot to clean up), to compare a recovered snapshot with. */
  const reference = async () => {
    if (!genReference) {
      const out = path.join(dir, 'gen-reference')
      const r = await runCli(genArgs(out, ['--no-slot']), {timeoutMs: 100_000})
      expect(r.code, r.stderr).toBe(0)
      genReference = manifestContent(out)
    }
    return genReference
  }
  const expectRecoveredSnapshot = async (out: string, id: string, before: Awaited<ReturnType<typeof slotsAndPublications>>) => {
    expect((await runCli(['snapshot', 'verify', out])).code).toBe(0)
    expect(manifestContent(out)).toEqual(await reference())
    expect(filesUnder(out).filter((f) => f.endsWith('.partial'))).toEqual([])
    const sp = await slotsAndPublications(src())
    expect(sp.slots.map((x) => x.slot_name).sort()).toEqual([...before.slots.map((x) => x.slot_name), kept(id).slot].sort())
    expect(sp.publications.sort()).toEqual([...before.publications, kept(id).publication].sort())
    expect((await runCli(['snapshot', 'delete', id, '-d', src(), '--drop-slot'])).code).toBe(0)
    expect(await slotsAndPublications(src())).toEqual(before)
  }
  return {genArgs, kept, reference, expectRecoveredSnapshot}
}

/**
 * The merge fixture of the merge fault cases: each table on node A holds ids 1..n with v = id,
 * on node B ids n/2+1..1.5n with every tenth shared id negated (n/2 rows one-sided on each node,
 * n/20 conflicts per table); steep_repl installed on A. `merged` is the checksum (see checksums)
 * of every table on both nodes after a prefer-node-a merge: ids 1..1.5n, v = id.
 */
export async function twoSidedMergeTables(a: string, b: string, tables: string[], n: number): Promise<{beforeA: Record<string, string>; beforeB: Record<string, string>; merged: string}> {
  for (const t of tables) {
    await sql(a, `CREATE TABLE ${t} (id int PRIMARY KEY, v int NOT NULL); INSERT INTO ${t} SELECT i, i FROM generate_series(1, ${n}) i`)
    await sql(
      b,
      `CREATE TABLE ${t} (id int PRIMARY KEY, v int NOT NULL);
       INSERT INTO ${t} SELECT i, CASE WHEN i <= ${n} AND i % 10 = 0 THEN -i ELSE i END FROM generate_series(${n / 2 + 1}, ${n + n / 2}) i`,
    )
  }
  await installSchema(a)
  const [beforeA, beforeB] = [await checksums(a, tables), await checksums(b, tables)]
  const [r] = await sql(a, `SELECT md5(string_agg(format('(%s,%s)', i, i), '|' ORDER BY i)) AS h FROM generate_series(1, ${n + n / 2}) i`)
  return {beforeA, beforeB, merged: `${n + n / 2}:${r.h}`}
}
