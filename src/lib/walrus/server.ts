// What walrus reads from and writes to a server. The version differences live here, in
// checkpointStats(): PostgreSQL 17 moved the checkpoint counters from pg_stat_bgwriter
// (checkpoints_req / checkpoints_timed) to pg_stat_checkpointer (num_requested / num_timed).
// Every statement runs in autocommit (one statement, one transaction), so the statistics snapshot
// of stats_fetch_consistency = cache never serves a stale counter.

import type pg from 'pg'
import {NotInstalledError, PermissionError, StateError} from '../errors.js'
import {INT32_MAX, type RuleState} from './rule.js'

export interface CheckpointStatsSql {
  view: 'pg_stat_checkpointer' | 'pg_stat_bgwriter'
  requested: 'num_requested' | 'checkpoints_req'
  timed: 'num_timed' | 'checkpoints_timed'
  /** pg_stat_reset_shared() target that resets these counters. */
  resetTarget: 'checkpointer' | 'bgwriter'
}

/** The one place that knows which view holds the checkpoint counters, keyed on server_version_num. */
export function checkpointStats(serverVersionNum: number): CheckpointStatsSql {
  return serverVersionNum >= 170000
    ? {view: 'pg_stat_checkpointer', requested: 'num_requested', timed: 'num_timed', resetTarget: 'checkpointer'}
    : {view: 'pg_stat_bgwriter', requested: 'checkpoints_req', timed: 'checkpoints_timed', resetTarget: 'bgwriter'}
}

export const MIN_SERVER_VERSION_NUM = 150000

export async function serverVersionNum(client: pg.Client): Promise<number> {
  const r = await client.query<{v: number}>(`SELECT current_setting('server_version_num')::int AS v`)
  return r.rows[0]!.v
}

export interface StateRow {
  generation: string
  baseline_requested: string | null
  baseline_stats_reset: Date | null
  baseline_at: Date | null
  quiet_intervals: number
  last_adjustment_at: Date | null
  changes_this_hour: number
  hour_window_start: Date | null
  total_adjustments: string
  dry_run: boolean
  watcher: Record<string, unknown> | null
  updated_at: Date
}

export interface CycleReading {
  at: number
  requested: number | null
  timed: number | null
  statsReset: string | null
  maxWalSizeMb: number
  maxWalSizeSource: string
  maxWalSizeSourcefile: string | null
  checkpointTimeoutSec: number
  inRecovery: boolean
  state: StateRow | null
}

const ts = (d: Date | null) => (d ? d.toISOString() : null)

/** The per-cycle query: counters, settings, recovery, and (withState) the persisted walrus state. */
export function cycleSql(v: number, withState: boolean): string {
  const c = checkpointStats(v)
  return `SELECT now() AS at,
       s.${c.requested}::bigint AS requested, s.${c.timed}::bigint AS timed, s.stats_reset,
       (SELECT setting::int FROM pg_settings WHERE name = 'max_wal_size') AS max_wal_size_mb,
       (SELECT source FROM pg_settings WHERE name = 'max_wal_size') AS max_wal_size_source,
       (SELECT sourcefile FROM pg_settings WHERE name = 'max_wal_size') AS max_wal_size_sourcefile,
       current_setting('checkpoint_timeout') AS checkpoint_timeout,
       (SELECT setting::int FROM pg_settings WHERE name = 'checkpoint_timeout') AS checkpoint_timeout_sec,
       pg_is_in_recovery() AS in_recovery${withState ? `,
       (SELECT row_to_json(w) FROM steep_repl.walrus_state w) AS state` : ''}
  FROM ${c.view} s`
}

export async function readCycle(client: pg.Client, v: number, withState: boolean): Promise<CycleReading> {
  const r = (await client.query(cycleSql(v, withState))).rows[0]
  const state = r.state
    ? ({
        ...r.state,
        baseline_stats_reset: r.state.baseline_stats_reset ? new Date(r.state.baseline_stats_reset) : null,
        baseline_at: r.state.baseline_at ? new Date(r.state.baseline_at) : null,
        last_adjustment_at: r.state.last_adjustment_at ? new Date(r.state.last_adjustment_at) : null,
        hour_window_start: r.state.hour_window_start ? new Date(r.state.hour_window_start) : null,
        updated_at: new Date(r.state.updated_at),
        generation: String(r.state.generation),
        baseline_requested: r.state.baseline_requested === null ? null : String(r.state.baseline_requested),
        total_adjustments: String(r.state.total_adjustments),
      } as StateRow)
    : null
  return {
    at: (r.at as Date).getTime(),
    requested: r.requested === null ? null : Number(r.requested),
    timed: r.timed === null ? null : Number(r.timed),
    statsReset: ts(r.stats_reset),
    maxWalSizeMb: r.max_wal_size_mb,
    maxWalSizeSource: r.max_wal_size_source,
    maxWalSizeSourcefile: r.max_wal_size_sourcefile,
    checkpointTimeoutSec: r.checkpoint_timeout_sec,
    inRecovery: r.in_recovery,
    state,
  }
}

/** The rule's state from the persisted row. A dry-run row's rate-limit clock does not bind a real run. */
export function stateFromRow(row: StateRow | null, dryRun: boolean): RuleState {
  if (!row) return {baseline: null, quietIntervals: 0, lastAdjustmentAt: null, changesThisHour: 0, hourWindowStart: null, totalAdjustments: 0}
  const sameMode = row.dry_run === dryRun
  return {
    baseline:
      row.baseline_requested !== null && row.baseline_at
        ? {requested: Number(row.baseline_requested), statsReset: ts(row.baseline_stats_reset), at: row.baseline_at.getTime()}
        : null,
    quietIntervals: row.quiet_intervals,
    lastAdjustmentAt: sameMode && row.last_adjustment_at ? row.last_adjustment_at.getTime() : null,
    changesThisHour: sameMode ? row.changes_this_hour : 0,
    hourWindowStart: sameMode && row.hour_window_start ? row.hour_window_start.getTime() : null,
    totalAdjustments: Number(row.total_adjustments),
  }
}

/** Checks that migration 004 is installed in this database. */
export async function requireWalrusSchema(client: pg.Client): Promise<void> {
  const r = await client.query<{history: boolean; state: boolean; usable: boolean}>(`
    SELECT to_regclass('steep_repl.walrus_history') IS NOT NULL AS history,
           to_regclass('steep_repl.walrus_state') IS NOT NULL AS state,
           true AS usable
      FROM pg_namespace WHERE nspname = 'steep_repl' AND has_schema_privilege(oid, 'USAGE')
     UNION ALL SELECT false, false, false
     LIMIT 1`)
  const row = r.rows[0]!
  if (!row.usable) {
    throw new NotInstalledError('the steep_repl schema is not installed in this database (or this role cannot use it)', {
      hint: 'Run `steep-repl install -d …` on this database first, as a role that may create the schema.',
    })
  }
  if (!row.history || !row.state) {
    throw new NotInstalledError('the walrus tables (steep_repl.walrus_history, steep_repl.walrus_state) are missing', {
      hint: 'Run `steep-repl install -d …` to apply migration 004_walrus.',
    })
  }
}

export async function walrusSchemaPresent(client: pg.Client): Promise<boolean> {
  const r = await client.query<{ok: boolean}>(`
    SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = 'steep_repl' AND c.relname = 'walrus_state'
                      AND has_table_privilege(c.oid, 'SELECT')) AS ok`)
  return r.rows[0]!.ok
}

export interface Privileges {
  superuser: boolean
  role: string
  canAlterSystem: boolean
  canReload: boolean
  /** allow_alter_system (17+); null before 17. */
  allowAlterSystem: boolean | null
  inRecovery: boolean
  serverVersionNum: number
  serverVersion: string
}

export async function readPrivileges(client: pg.Client): Promise<Privileges> {
  // has_parameter_privilege() exists from 15: say "not supported" rather than fail on it.
  const v = await client.query(`SELECT current_setting('server_version_num')::int AS v, current_setting('server_version') AS version`)
  refuseOldServer({serverVersionNum: v.rows[0].v, serverVersion: v.rows[0].version})
  const r = await client.query(`
    SELECT r.rolsuper AS superuser, current_user AS role,
           (r.rolsuper OR has_parameter_privilege('max_wal_size', 'ALTER SYSTEM')) AS can_alter,
           has_function_privilege('pg_reload_conf()', 'EXECUTE') AS can_reload,
           current_setting('allow_alter_system', true) AS allow_alter_system,
           pg_is_in_recovery() AS in_recovery,
           current_setting('server_version_num')::int AS v, current_setting('server_version') AS version
      FROM pg_roles r WHERE r.rolname = current_user`)
  const x = r.rows[0]
  return {
    superuser: x.superuser,
    role: x.role,
    canAlterSystem: x.can_alter,
    canReload: x.can_reload,
    allowAlterSystem: x.allow_alter_system === null || x.allow_alter_system === undefined ? null : x.allow_alter_system === 'on',
    inRecovery: x.in_recovery,
    serverVersionNum: x.v,
    serverVersion: x.version,
  }
}

export function refuseStandby(p: Pick<Privileges, 'inRecovery'>, what: string): void {
  if (p.inRecovery) {
    throw new StateError(`the server is a standby (pg_is_in_recovery() is true): ${what} only runs against a primary`, {
      hint: 'max_wal_size on a standby follows its own configuration; point -d at the primary, or run it on this server after promotion.',
    })
  }
}

export function refuseOldServer(p: Pick<Privileges, 'serverVersionNum' | 'serverVersion'>): void {
  if (p.serverVersionNum < MIN_SERVER_VERSION_NUM) {
    throw new StateError(`PostgreSQL ${p.serverVersion} is not supported: walrus needs PostgreSQL 15 or later`)
  }
}

/** Throws PermissionError when the role cannot change max_wal_size and reload. */
export function requireAlterPrivileges(p: Privileges): void {
  const missing: string[] = []
  if (!p.canAlterSystem) missing.push(`GRANT ALTER SYSTEM ON PARAMETER max_wal_size TO ${p.role};`)
  if (!p.canReload) missing.push(`GRANT EXECUTE ON FUNCTION pg_reload_conf() TO ${p.role};`)
  if (missing.length) {
    throw new PermissionError(`role "${p.role}" may not change max_wal_size (ALTER SYSTEM) or reload the configuration; nothing was changed`, {
      hint: `As a superuser: ${missing.join(' ')} Or use --dry-run to only record recommendations.`,
    })
  }
}

/**
 * Why an ALTER SYSTEM of max_wal_size would not take effect, or null when it would: the setting
 * comes from the command line or the environment (those win over postgresql.auto.conf), or ALTER
 * SYSTEM is disabled (allow_alter_system = off, 17+).
 */
export function alterBlockedReason(source: string, allowAlterSystem: boolean | null): string | null {
  if (allowAlterSystem === false) return 'ALTER SYSTEM is disabled on this server (allow_alter_system = off)'
  if (source === 'command line' || source === 'environment variable') {
    return `max_wal_size is set on the ${source} of the server, which overrides ALTER SYSTEM`
  }
  return null
}

export interface ApplyResult {
  effective: boolean
  /** The value the server reports after the reload. */
  nowMb: number
  source: string
  /** Why it did not take effect, or the ALTER SYSTEM error. */
  problem?: string
  /** SQLSTATE of a failed ALTER SYSTEM. */
  sqlstate?: string
  queries: number
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * ALTER SYSTEM SET max_wal_size, pg_reload_conf(), then re-read until the new value shows (the
 * reload is asynchronous) or ~2 s pass. ALTER SYSTEM takes no bind parameters and cannot run in a
 * transaction block: the literal is built only from a validated integer, in autocommit.
 */
export async function applyMaxWalSize(client: pg.Client, mb: number): Promise<ApplyResult> {
  if (!Number.isSafeInteger(mb) || mb < 2 || mb > INT32_MAX) throw new RangeError(`max_wal_size must be an integer from 2 to ${INT32_MAX} MB, got ${mb}`)
  let queries = 0
  try {
    queries++
    await client.query(`ALTER SYSTEM SET max_wal_size = '${mb}MB'`)
  } catch (err) {
    const e = err as {code?: string; message?: string}
    if (e.code === '42501') throw new PermissionError(`ALTER SYSTEM SET max_wal_size was refused: ${e.message}`, {cause: err, hint: 'GRANT ALTER SYSTEM ON PARAMETER max_wal_size to the role, or use --dry-run.'})
    if (!e.code || e.code.startsWith('08') || e.code.startsWith('57P')) throw err
    const cur = await readSetting(client)
    return {effective: false, nowMb: cur.mb, source: cur.source, problem: `ALTER SYSTEM failed: ${e.message}`, sqlstate: e.code, queries: queries + 1}
  }
  queries++
  await client.query('SELECT pg_reload_conf()')
  let now = {mb: 0, source: ''}
  for (let i = 0; i < 20; i++) {
    await sleep(i === 0 ? 50 : 100)
    queries++
    now = await readSetting(client)
    if (now.mb === mb) return {effective: true, nowMb: now.mb, source: now.source, queries}
    if (alterBlockedReason(now.source, null)) break
  }
  queries++
  const fileError = await readFileErrors(client)
  const why = fileError
    ? `the configuration files have an error: ${fileError}`
    : (alterBlockedReason(now.source, null) ?? `the server still reports ${now.mb} MB after the reload (source: ${now.source})`)
  return {effective: false, nowMb: now.mb, source: now.source, problem: why, queries}
}

async function readSetting(client: pg.Client): Promise<{mb: number; source: string}> {
  const r = await client.query(`SELECT setting::int AS mb, source FROM pg_settings WHERE name = 'max_wal_size'`)
  return {mb: r.rows[0].mb, source: r.rows[0].source}
}

/** Errors pg_file_settings reports (readable by superusers and pg_read_all_settings only; null otherwise). */
async function readFileErrors(client: pg.Client): Promise<string | null> {
  try {
    const r = await client.query(`
      SELECT string_agg(coalesce(sourcefile, '?') || ':' || coalesce(sourceline::text, '?') || ': ' || error, '; ') AS e
        FROM pg_file_settings WHERE error IS NOT NULL`)
    return r.rows[0].e
  } catch {
    return null
  }
}
