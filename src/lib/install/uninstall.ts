// Removing the steep_repl schema: under the install lock, refused while jobs are running.

import type pg from 'pg'
import {StateError} from '../errors.js'
import {INSTALL_LOCK_SQL, readSchemaState} from './migrations.js'

export interface RunningJob {
  id: string
  operation: string
  started_at: Date | null
}

/**
 * Jobs that are running now: with the jobs migration (002), those whose executor still holds a live
 * lease — a job whose executor died (lease expired) does not block uninstall. A running row without
 * a lease (set by another tool) counts as running.
 */
export async function runningJobs(client: pg.Client): Promise<RunningJob[]> {
  const {rows} = await client.query<{present: boolean; leases: boolean}>(
    `SELECT to_regclass('steep_repl.work_queue') IS NOT NULL AS present,
            EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('steep_repl.work_queue')
                       AND attname = 'lease_expires_at' AND NOT attisdropped) AS leases`,
  )
  if (!rows[0]?.present) return []
  const live = rows[0].leases ? ` AND (lease_expires_at IS NULL OR lease_expires_at > now())` : ''
  const res = await client.query<RunningJob>(
    `SELECT id::text, operation, started_at FROM steep_repl.work_queue WHERE status = 'running'${live} ORDER BY id`,
  )
  return res.rows
}

export function runningJobsError(jobs: RunningJob[]): StateError {
  const list = jobs.map((j) => `#${j.id} ${j.operation}`).join(', ')
  return new StateError(`refusing to uninstall: ${jobs.length} job(s) running (${list})`, {
    hint: 'Wait for them (steep-repl jobs wait ID) or cancel them (steep-repl jobs cancel ID), then run uninstall again.',
  })
}

export interface UninstallResult {
  dropped: boolean
  version: number
}

export async function uninstall(client: pg.Client): Promise<UninstallResult> {
  await client.query('BEGIN')
  try {
    await client.query(`SELECT pg_advisory_xact_lock(${INSTALL_LOCK_SQL})`)
    const state = await readSchemaState(client)
    const schema = await client.query<{present: boolean}>(`SELECT to_regnamespace('steep_repl') IS NOT NULL AS present`)
    if (!schema.rows[0]?.present) {
      await client.query('ROLLBACK')
      return {dropped: false, version: 0}
    }
    // Lock the queue so no executor can claim a job between the check and the drop; do not hang
    // behind a long claim transaction.
    await client.query(`SET LOCAL lock_timeout = '10s'`)
    const hasQueue = await client.query<{present: boolean}>(`SELECT to_regclass('steep_repl.work_queue') IS NOT NULL AS present`)
    if (hasQueue.rows[0]?.present) await client.query('LOCK TABLE steep_repl.work_queue IN ACCESS EXCLUSIVE MODE')
    const running = await runningJobs(client)
    if (running.length > 0) throw runningJobsError(running)
    await client.query('DROP SCHEMA steep_repl CASCADE')
    await client.query('COMMIT')
    return {dropped: true, version: state.version}
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  }
}
