// `walrus tune` I/O: gather the facts, advise, and with apply write the recommendation (ALTER
// SYSTEM + reload + re-read), record it in the history when the schema is installed, and start the
// cooldown of the watcher's rate limit (a manual change, like pg_walrus's analyze(apply), bypasses
// the rate limit but is not followed at once by an automatic one).

import {hostname} from 'node:os'
import type pg from 'pg'
import {StateError} from '../errors.js'
import {advise, type TuneAdvice, type TuneFacts} from './advice.js'
import type {Decision, RuleSettings} from './rule.js'
import {
  type ApplyResult,
  alterBlockedReason,
  applyMaxWalSize,
  checkpointStats,
  readPrivileges,
  refuseOldServer,
  refuseStandby,
  requireAlterPrivileges,
  stateFromRow,
  type StateRow,
  walrusSchemaPresent,
} from './server.js'
import {writeCycle} from './store.js'

export interface TuneResult extends TuneAdvice {
  server: string
  maxWalSizeSource: string
  checkpointTimeoutSec: number
  statsReset: string | null
  statsView: string
  applied: boolean
  apply?: ApplyResult & {historyId: string | null}
  warnings: string[]
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export async function runTune(c: pg.Client, s: RuleSettings, o: {apply: boolean; sampleMs: number}): Promise<TuneResult> {
  const p = await readPrivileges(c)
  refuseOldServer(p)
  refuseStandby(p, 'walrus tune')
  if (o.apply) requireAlterPrivileges(p)
  const src = checkpointStats(p.serverVersionNum)
  const r = (
    await c.query(`
    SELECT now() AS now, s.${src.requested}::bigint AS requested, s.${src.timed}::bigint AS timed, s.stats_reset,
           (SELECT setting::int FROM pg_settings WHERE name = 'max_wal_size') AS max_wal_size_mb,
           (SELECT source FROM pg_settings WHERE name = 'max_wal_size') AS source,
           (SELECT setting::int FROM pg_settings WHERE name = 'checkpoint_timeout') AS checkpoint_timeout_sec,
           current_setting('checkpoint_completion_target')::float8 AS cct,
           w.wal_bytes::float8 AS wal_bytes, w.stats_reset AS wal_stats_reset,
           pg_current_wal_lsn()::text AS lsn
      FROM ${src.view} s, pg_stat_wal w`)
  ).rows[0]
  const warnings: string[] = []
  let walBytesPerSec: number | null = null
  let walRateSource: string | null = null
  if (o.sampleMs > 0) {
    const t0 = Date.now()
    await sleep(o.sampleMs)
    const r2 = (await c.query(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::float8 AS bytes`, [r.lsn])).rows[0]
    walBytesPerSec = r2.bytes / ((Date.now() - t0) / 1000)
    walRateSource = `LSN movement over ${Math.round((Date.now() - t0) / 1000)}s`
  } else if (r.wal_stats_reset && r.wal_bytes !== null) {
    const sec = (r.now.getTime() - r.wal_stats_reset.getTime()) / 1000
    if (sec >= 60) {
      walBytesPerSec = r.wal_bytes / sec
      walRateSource = `pg_stat_wal.wal_bytes since ${r.wal_stats_reset.toISOString()}`
    }
  }
  if (walBytesPerSec === null) warnings.push('no WAL rate: pg_stat_wal has no reset time (or under a minute of data); use --sample 30s to measure LSN movement')
  let state: StateRow | null = null
  const installed = await walrusSchemaPresent(c)
  if (installed) state = (await c.query(`SELECT * FROM steep_repl.walrus_state`)).rows[0] ?? null
  const ruleState = stateFromRow(state, false)
  const facts: TuneFacts = {
    now: r.now.getTime(),
    currentMb: r.max_wal_size_mb,
    source: r.source,
    requested: Number(r.requested),
    timed: Number(r.timed),
    statsResetAt: r.stats_reset ? r.stats_reset.getTime() : null,
    checkpointTimeoutSec: r.checkpoint_timeout_sec,
    completionTarget: r.cct,
    walBytesPerSec,
    walRateSource,
    quietIntervals: ruleState.quietIntervals,
    baselineRequested: ruleState.baseline?.requested ?? 0,
  }
  const advice = advise(facts, s)
  const blocked = alterBlockedReason(r.source, p.allowAlterSystem)
  if (blocked) warnings.push(`a change would not take effect: ${blocked}`)
  const result: TuneResult = {
    server: `PostgreSQL ${p.serverVersion}`,
    ...advice,
    maxWalSizeSource: r.source,
    checkpointTimeoutSec: r.checkpoint_timeout_sec,
    statsReset: r.stats_reset ? r.stats_reset.toISOString() : null,
    statsView: `${src.view}.${src.requested}`,
    applied: false,
    warnings,
  }
  if (!o.apply || advice.action === 'none') return result
  if (blocked) throw new StateError(`not applied: ${blocked}`, {hint: 'Change max_wal_size where it is set, or remove that setting so ALTER SYSTEM can take effect.'})
  const res = await applyMaxWalSize(c, advice.recommendedMb)
  let historyId: string | null = null
  if (res.effective && installed && state) {
    const now = facts.now
    const decision: Decision = {
      at: now, outcome: advice.change!, action: advice.change!, apply: true, change: advice.change, delta: null, requested: facts.requested,
      currentMb: advice.currentMb, targetMb: advice.recommendedMb, quietIntervals: ruleState.quietIntervals, reason: advice.reasons.at(-1)!,
      metadata: {source: 'walrus tune', confidence: advice.confidence, requested_per_interval: advice.requestedPerInterval, wal_bytes_per_sec: walBytesPerSec},
    }
    // A manual change starts the cooldown and counts as an adjustment; an increase ends a quiet run.
    const next = {...ruleState, lastAdjustmentAt: now, totalAdjustments: ruleState.totalAdjustments + 1,
      quietIntervals: advice.action === 'increase' ? 0 : ruleState.quietIntervals}
    const w = await writeCycle(c, {
      history: {decision, checkpointTimeoutSec: facts.checkpointTimeoutSec, intervalSec: facts.checkpointTimeoutSec, source: 'tune'},
      notify: {event: 'decision', action: advice.change, change: advice.change, applied: true, old_size_mb: advice.currentMb, new_size_mb: advice.recommendedMb, source: 'tune', host: hostname()},
      retentionSec: null,
      state: next,
      generation: state.generation,
      dryRun: false,
      watcher: (state.watcher as Record<string, unknown>) ?? {},
    })
    historyId = w.historyId
  }
  if (!res.effective) throw new StateError(`max_wal_size was not changed: ${res.problem}`, {hint: 'The server configuration is as it was; fix the cause and run again.'})
  return {...result, applied: true, apply: {...res, historyId}}
}
