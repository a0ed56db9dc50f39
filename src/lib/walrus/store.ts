// The walrus rows in steep_repl: history (with retention), the persisted state, the NOTIFY on
// steep_repl_walrus, and the advisory lock that lets one watcher per server act.

import type pg from 'pg'
import type {Decision, RuleState} from './rule.js'

export const CHANNEL = 'steep_repl_walrus'

/**
 * Advisory lock key (two int4 form, so pg_locks shows it as classid/objid with objsubid 2).
 * Advisory locks are per database; acquireLock also looks for a holder in another database of the
 * same server, so two watchers pointed at different databases still elect one.
 */
export const LOCK_KEY: readonly [number, number] = [0x73_74_72_70, 0x77_61_6c_72] // 'strp', 'walr'

export interface HistoryInput {
  decision: Decision
  checkpointTimeoutSec: number
  intervalSec: number
  source: 'watch' | 'tune'
  /** Extra metadata merged over the decision's (e.g. not-effective details). */
  extraMetadata?: Record<string, unknown>
  /** Override of the recorded action (e.g. a change that did not take effect is recorded as skipped). */
  action?: Decision['action']
  reason?: string
}

export interface CycleWrite {
  history?: HistoryInput
  /** Also send a NOTIFY with this payload (JSON); sent only with a history row. */
  notify?: Record<string, unknown>
  /** Delete history older than this many seconds (null: no cleanup this time). */
  retentionSec: number | null
  state: RuleState
  /** The generation the state was read at; the state is not written over a reset. */
  generation: string
  dryRun: boolean
  watcher: Record<string, unknown>
}

export interface CycleWriteResult {
  historyId: string | null
  notified: boolean
  deleted: number
  stateSaved: boolean
}

const tsOrNull = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())

/**
 * One statement: the history row, its NOTIFY, retention cleanup, and the state (re-created if the
 * row was deleted; not written over a `walrus reset` that happened since it was read).
 */
export async function writeCycle(client: pg.Client, w: CycleWrite): Promise<CycleWriteResult> {
  const h = w.history
  const d = h?.decision
  const action = h ? (h.action ?? d!.action) : null
  const s = w.state
  const params = [
    action, // $1
    d?.currentMb ?? null,
    d?.targetMb ?? null,
    d?.delta ?? 0,
    d?.requested ?? null, // $5
    h?.checkpointTimeoutSec ?? null,
    h?.intervalSec ?? null,
    h ? (h.reason ?? d!.reason) : null,
    h ? JSON.stringify({...d!.metadata, ...h.extraMetadata}) : null,
    h?.source ?? 'watch', // $10
    w.notify ? JSON.stringify(w.notify) : null,
    w.retentionSec,
    w.generation,
    s.baseline?.requested ?? null,
    s.baseline?.statsReset ?? null, // $15
    tsOrNull(s.baseline?.at ?? null),
    s.quietIntervals,
    tsOrNull(s.lastAdjustmentAt),
    s.changesThisHour,
    tsOrNull(s.hourWindowStart), // $20
    s.totalAdjustments,
    w.dryRun,
    JSON.stringify(w.watcher),
    d ? new Date(d.at).toISOString() : null,
  ]
  const r = await client.query(
    `WITH h AS (
       INSERT INTO steep_repl.walrus_history ("timestamp", action, old_size_mb, new_size_mb, forced_checkpoints, requested_total,
                                            checkpoint_timeout_sec, interval_sec, reason, metadata, source)
       SELECT coalesce($24::timestamptz, now()), $1::text, $2::int, $3::int, greatest($4::bigint, 0), $5::bigint, $6::int, $7::numeric, $8::text, $9::jsonb, $10::text
        WHERE $1::text IS NOT NULL
       RETURNING id, "timestamp"),
     n AS (SELECT pg_notify('${CHANNEL}', ($11::jsonb || jsonb_build_object('id', h.id, 'timestamp', h."timestamp"))::text) FROM h WHERE $11::text IS NOT NULL),
     del AS (DELETE FROM steep_repl.walrus_history
              WHERE $12::float8 IS NOT NULL AND "timestamp" < now() - make_interval(secs => $12::float8)
                AND id NOT IN (SELECT id FROM h)
             RETURNING 1),
     u AS (INSERT INTO steep_repl.walrus_state AS w (generation, baseline_requested, baseline_stats_reset, baseline_at, quiet_intervals,
                                                     last_adjustment_at, changes_this_hour, hour_window_start, total_adjustments, dry_run, watcher)
           VALUES ($13::bigint, $14::bigint, $15::timestamptz, $16::timestamptz, $17::int, $18::timestamptz, $19::int, $20::timestamptz,
                   $21::bigint, $22::boolean, $23::jsonb)
           ON CONFLICT (singleton) DO UPDATE
              SET baseline_requested = excluded.baseline_requested, baseline_stats_reset = excluded.baseline_stats_reset,
                  baseline_at = excluded.baseline_at, quiet_intervals = excluded.quiet_intervals,
                  last_adjustment_at = excluded.last_adjustment_at, changes_this_hour = excluded.changes_this_hour,
                  hour_window_start = excluded.hour_window_start, total_adjustments = excluded.total_adjustments,
                  dry_run = excluded.dry_run, watcher = excluded.watcher, updated_at = now()
            WHERE w.generation = excluded.generation
           RETURNING 1)
     SELECT (SELECT id FROM h) AS history_id, (SELECT count(*) FROM n)::int AS notified,
            (SELECT count(*) FROM del)::int AS deleted, (SELECT count(*) FROM u)::int AS saved`,
    params,
  )
  const row = r.rows[0]
  return {historyId: row.history_id === null ? null : String(row.history_id), notified: row.notified > 0, deleted: row.deleted, stateSaved: row.saved > 0}
}

export interface ResetResult {
  generation: string
  historyDeleted: number
}

/** Forgets the baseline, quiet count and rate-limit state (and with history, the history rows). */
export async function resetState(client: pg.Client, opts: {history: boolean}): Promise<ResetResult> {
  const r = await client.query(
    `WITH u AS (UPDATE steep_repl.walrus_state
                   SET generation = generation + 1, baseline_requested = NULL, baseline_stats_reset = NULL, baseline_at = NULL,
                       quiet_intervals = 0, last_adjustment_at = NULL, changes_this_hour = 0, hour_window_start = NULL,
                       total_adjustments = 0, updated_at = now()
                RETURNING generation),
          d AS (DELETE FROM steep_repl.walrus_history WHERE $1::boolean RETURNING 1),
          n AS (SELECT pg_notify('${CHANNEL}', json_build_object('event', 'reset', 'generation', u.generation, 'history', $1::boolean)::text) FROM u)
     SELECT (SELECT generation FROM u) AS generation, (SELECT count(*) FROM d)::int AS deleted, (SELECT count(*) FROM n) AS n`,
    [opts.history],
  )
  return {generation: String(r.rows[0].generation), historyDeleted: r.rows[0].deleted}
}

export interface HistoryRow {
  id: string
  timestamp: Date
  action: string
  old_size_mb: number
  new_size_mb: number
  forced_checkpoints: string
  requested_total: string | null
  checkpoint_timeout_sec: number
  reason: string | null
  metadata: Record<string, unknown> | null
  source: string
}

export async function readHistory(client: pg.Client, o: {sinceMs?: number; limit: number; action?: string}): Promise<HistoryRow[]> {
  const r = await client.query<HistoryRow>(
    `SELECT * FROM (
       SELECT id::text, "timestamp", action, old_size_mb, new_size_mb, forced_checkpoints::text, requested_total::text,
              checkpoint_timeout_sec, reason, metadata, source
         FROM steep_repl.walrus_history
        WHERE ($1::timestamptz IS NULL OR "timestamp" >= $1::timestamptz) AND ($3::text IS NULL OR action = $3::text)
        ORDER BY "timestamp" DESC, id DESC
        LIMIT $2) x
     ORDER BY "timestamp", id`,
    [o.sinceMs === undefined ? null : new Date(o.sinceMs).toISOString(), o.limit, o.action ?? null],
  )
  return r.rows
}

export interface LockHolder {
  pid: number
  database: string | null
  application_name: string | null
  client_addr: string | null
  backend_start: Date | null
  usename: string | null
}

/** Sessions holding the walrus lock in any database of this server (other than this session). */
export async function lockHolders(client: pg.Client): Promise<LockHolder[]> {
  const r = await client.query<LockHolder>(
    `SELECT l.pid, d.datname AS database, a.application_name, a.client_addr::text AS client_addr, a.backend_start, a.usename::text AS usename
       FROM pg_locks l
       LEFT JOIN pg_database d ON d.oid = l.database
       LEFT JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.classid::bigint = $1 AND l.objid::bigint = $2 AND l.objsubid = 2
        AND l.granted AND l.pid <> pg_backend_pid()
      ORDER BY l.pid`,
    [LOCK_KEY[0], LOCK_KEY[1]],
  )
  return r.rows
}

/**
 * Tries to become the acting watcher: takes the session advisory lock, then checks no other
 * database of the server has a holder (the lower backend pid wins a tie). Returns the holders
 * found when it did not get it.
 */
export async function acquireLock(client: pg.Client): Promise<{acquired: boolean; holders: LockHolder[]}> {
  const r = await client.query<{got: boolean; me: number}>(`SELECT pg_try_advisory_lock($1, $2) AS got, pg_backend_pid() AS me`, [LOCK_KEY[0], LOCK_KEY[1]])
  const {got, me} = r.rows[0]!
  const holders = await lockHolders(client)
  if (!got) return {acquired: false, holders}
  const rival = holders.filter((h) => h.pid < me)
  if (rival.length) {
    await releaseLock(client)
    return {acquired: false, holders}
  }
  return {acquired: true, holders: []}
}

export async function releaseLock(client: pg.Client): Promise<void> {
  await client.query(`SELECT pg_advisory_unlock($1, $2)`, [LOCK_KEY[0], LOCK_KEY[1]])
}
