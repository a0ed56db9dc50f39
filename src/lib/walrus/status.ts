// `walrus status`: the setting and where it comes from, the counters, the watcher holding the lock,
// the persisted state (quiet run, cooldown, hourly window) and the last decisions.

import type pg from 'pg'
import {checkRateLimit, DEFAULT_SETTINGS, hourWindowExpired, type RuleSettings} from './rule.js'
import {checkpointStats, readCycle, readPrivileges, stateFromRow, walrusSchemaPresent} from './server.js'
import {type HistoryRow, type LockHolder, lockHolders, readHistory} from './store.js'

export interface WalrusStatus {
  server: string
  inRecovery: boolean
  maxWalSize: {mb: number; source: string; sourcefile: string | null; pendingRestart: boolean; autoConf: string | null}
  checkpointTimeoutSec: number
  statistics: {view: string; requested: number | null; timed: number | null; statsReset: string | null}
  allowAlterSystem: boolean | null
  installed: boolean
  watcher: {holders: LockHolder[]; lastWrittenBy: Record<string, unknown> | null; lastCycleAt: string | null}
  state: {
    baselineRequested: number | null
    baselineAt: string | null
    quietIntervals: number
    lastAdjustmentAt: string | null
    cooldownRemainingSec: number
    changesThisHour: number
    hourWindowStart: string | null
    hourlyLimitReached: boolean
    totalAdjustments: number
    dryRun: boolean
  } | null
  lastDecisions: HistoryRow[]
}

export async function readStatus(c: pg.Client, o: {last: number}): Promise<WalrusStatus> {
  const p = await readPrivileges(c)
  const installed = await walrusSchemaPresent(c)
  const r = await readCycle(c, p.serverVersionNum, installed)
  const setting = (await c.query(`SELECT pending_restart FROM pg_settings WHERE name = 'max_wal_size'`)).rows[0]
  const holders = await lockHolders(c)
  let autoConf: string | null = null
  try {
    const f = await c.query(`SELECT setting FROM pg_file_settings WHERE name = 'max_wal_size' AND sourcefile LIKE '%postgresql.auto.conf' ORDER BY seqno DESC LIMIT 1`)
    autoConf = f.rows[0]?.setting ?? null
  } catch {
    autoConf = null // pg_file_settings is for superusers and pg_read_all_settings
  }
  const row = r.state
  const now = r.at
  let state: WalrusStatus['state'] = null
  if (row) {
    const settings = (row.watcher?.settings as RuleSettings | undefined) ?? DEFAULT_SETTINGS
    const rs = stateFromRow(row, row.dry_run)
    const rl = checkRateLimit({...DEFAULT_SETTINGS, ...settings}, rs, now)
    state = {
      baselineRequested: rs.baseline?.requested ?? null,
      baselineAt: rs.baseline ? new Date(rs.baseline.at).toISOString() : null,
      quietIntervals: rs.quietIntervals,
      lastAdjustmentAt: rs.lastAdjustmentAt ? new Date(rs.lastAdjustmentAt).toISOString() : null,
      cooldownRemainingSec: !rl.allowed && rl.blockedBy === 'cooldown' ? (rl.remainingSec ?? 0) : 0,
      changesThisHour: hourWindowExpired(rs, now) ? 0 : rs.changesThisHour,
      hourWindowStart: rs.hourWindowStart ? new Date(rs.hourWindowStart).toISOString() : null,
      hourlyLimitReached: !rl.allowed && rl.blockedBy === 'hourly_limit',
      totalAdjustments: rs.totalAdjustments,
      dryRun: row.dry_run,
    }
  }
  const lastDecisions = installed && o.last > 0 ? await readHistory(c, {limit: o.last}) : []
  const src = checkpointStats(p.serverVersionNum)
  return {
    server: `PostgreSQL ${p.serverVersion}`,
    inRecovery: r.inRecovery,
    maxWalSize: {mb: r.maxWalSizeMb, source: r.maxWalSizeSource, sourcefile: r.maxWalSizeSourcefile, pendingRestart: setting.pending_restart, autoConf},
    checkpointTimeoutSec: r.checkpointTimeoutSec,
    statistics: {view: `${src.view}.${src.requested}`, requested: r.requested, timed: r.timed, statsReset: r.statsReset},
    allowAlterSystem: p.allowAlterSystem,
    installed,
    watcher: {holders, lastWrittenBy: row?.watcher ?? null, lastCycleAt: row?.updated_at ? row.updated_at.toISOString() : null},
    state,
    lastDecisions,
  }
}
