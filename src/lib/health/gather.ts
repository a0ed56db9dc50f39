// Reads the facts health judges, in a handful of catalog queries.

import type pg from 'pg'
import {latestVersion, readSchemaState} from '../install/migrations.js'
import type {HealthFacts, SlotFact} from './report.js'

export async function gatherHealth(client: pg.Client): Promise<HealthFacts> {
  const base = await client.query(`
    SELECT current_setting('server_version') AS server_version,
           current_setting('server_version_num')::int AS server_version_num,
           pg_is_in_recovery() AS in_recovery,
           current_setting('wal_level') AS wal_level,
           current_setting('max_replication_slots')::int AS max_replication_slots,
           current_setting('max_wal_senders')::int AS max_wal_senders,
           pg_size_bytes(current_setting('max_wal_size'))::float8 AS max_wal_size_bytes,
           r.rolname AS role, r.rolsuper AS superuser, r.rolreplication AS replication,
           has_database_privilege(current_database(), 'CREATE') AS can_create,
           (r.rolsuper OR has_parameter_privilege('max_wal_size', 'ALTER SYSTEM')) AS can_alter_system,
           (SELECT CASE WHEN s.ssl THEN s.version END FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()) AS tls
      FROM pg_roles r WHERE r.rolname = current_user`)
  const b = base.rows[0]
  const slots = await client.query<SlotFact>(`
    SELECT slot_name::text, slot_type, plugin::text, active, wal_status,
           (CASE WHEN pg_is_in_recovery() THEN NULL
                 ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) END)::float8 AS retained_bytes
      FROM pg_replication_slots ORDER BY slot_name`)
  // A role without USAGE on the schema cannot read its version: report that instead of failing.
  // (Catalog lookups, not to_regclass: that needs USAGE on the schema and would raise.)
  const access = await client.query<{present: boolean; readable: boolean}>(`
    WITH t AS (SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'steep_repl' AND c.relname IN ('schema_version', 'work_queue'))
    SELECT EXISTS (SELECT 1 FROM t WHERE relname = 'schema_version') AS present,
           COALESCE(bool_and(has_table_privilege(t.oid, 'SELECT')), true)
             AND (SELECT has_schema_privilege(n.oid, 'USAGE') FROM pg_namespace n WHERE n.nspname = 'steep_repl') AS readable
      FROM t`)
  const schemaReadable = !access.rows[0]!.present || access.rows[0]!.readable
  const schema = schemaReadable ? await readSchemaState(client) : {installed: true, version: 0, applied: []}
  let queue: HealthFacts['queue'] = null
  let workers: HealthFacts['workers'] = null
  if (schema.installed && schemaReadable && schema.version >= 2) {
    // The jobs schema: the same facts steep_repl.health() gives any SQL client, read through it
    // (a role that may read the tables but not execute the function gets the queue counts only).
    const h = await client
      .query(`SELECT jobs_pending, jobs_running, jobs_failed_last_day, jobs_stale_leases, live_workers,
                     oldest_pending_seconds FROM steep_repl.health()`)
      .catch((err) => {
        if ((err as {code?: string}).code === '42501') return null
        throw err
      })
    const r = h?.rows[0]
    if (r) {
      queue = {pending: r.jobs_pending, running: r.jobs_running, failedLastDay: r.jobs_failed_last_day}
      workers = {live: r.live_workers, staleLeases: r.jobs_stale_leases, oldestPendingSeconds: r.oldest_pending_seconds}
    }
  }
  if (!queue && schema.installed && schemaReadable) {
    const q = await client.query(`
      SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending,
             count(*) FILTER (WHERE status = 'running')::int AS running,
             count(*) FILTER (WHERE status = 'failed' AND completed_at > now() - interval '1 day')::int AS failed
        FROM steep_repl.work_queue`)
    queue = {pending: q.rows[0].pending, running: q.rows[0].running, failedLastDay: q.rows[0].failed}
  }
  return {
    serverVersion: b.server_version,
    serverVersionNum: b.server_version_num,
    inRecovery: b.in_recovery,
    tls: b.tls ?? null,
    walLevel: b.wal_level,
    maxReplicationSlots: b.max_replication_slots,
    maxWalSenders: b.max_wal_senders,
    maxWalSizeBytes: b.max_wal_size_bytes,
    role: b.role,
    superuser: b.superuser,
    replication: b.replication,
    canCreateInDatabase: b.can_create,
    canAlterSystemMaxWalSize: b.can_alter_system,
    schemaInstalled: schema.installed,
    schemaReadable,
    schemaVersion: schema.version,
    expectedSchemaVersion: latestVersion(),
    slots: slots.rows,
    queue,
    workers,
  }
}
