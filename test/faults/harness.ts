// What the fault catalogue needs beyond test/helpers: the CLI as a child process the test can kill
// at a chosen moment, polling waits with deadlines (never fixed sleeps: the machine is loaded), and
// per-table checksums to compare a resumed result with a clean one.

import {type ChildProcess, spawn} from 'node:child_process'
import {BIN} from '../helpers/cli.js'
import {sql} from '../helpers/pg.js'

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

/** The shared-server-style Unix-socket conninfo (trust, no password) of database `db` on the shared test server. */
export function socketConninfo(db: string): string {
  const info = shared()
  if (!/dbname=\S+/.test(info.socket)) throw new Error('the test server has no Unix-socket conninfo (container run?)')
  return info.socket.replace(/dbname=\S+/, `dbname=${db}`)
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
