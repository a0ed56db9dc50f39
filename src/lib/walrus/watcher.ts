// The `walrus watch` loop: read the counters, run the rule, apply (ALTER SYSTEM + reload + re-read),
// record (history row, NOTIFY, state) — once at start, then once per interval. One watcher per
// server acts (advisory lock); others wait as standbys and take over when the lock frees. A lost
// connection is retried with backoff; the abort signal (SIGTERM/SIGINT) stops it between cycles.
//
// Queries per cycle: 2 when nothing changes (read, write), 5 when a change is applied (read, ALTER
// SYSTEM, reload, re-read, write); a standby polls the lock with 2.

import {appendFileSync} from 'node:fs'
import {hostname} from 'node:os'
import type pg from 'pg'
import {openClient} from '../connection/connect.js'
import type {ConnParams} from '../connection/resolve.js'
import {isConnectionFailure, StateError} from '../errors.js'
import type {WalrusMetrics} from './metrics.js'
import {type Decision, evaluate, recordAdjustment, type RuleSettings, type RuleState} from './rule.js'
import {formatSample} from './samples.js'
import {
  alterBlockedReason,
  applyMaxWalSize,
  readCycle,
  readPrivileges,
  refuseOldServer,
  refuseStandby,
  requireAlterPrivileges,
  requireWalrusSchema,
  stateFromRow,
} from './server.js'
import {acquireLock, type LockHolder, writeCycle} from './store.js'

export type WatchMode = 'apply' | 'dry_run' | 'recommend'

export interface WatchOptions {
  conn: ConnParams
  settings: RuleSettings
  /** Fixed interval; default: the server's checkpoint_timeout, re-read each cycle. */
  intervalMs?: number
  /** History older than this is deleted each cycle. */
  retentionSec: number
  /** Append each reading to this file (the `simulate --samples` format). */
  recordFile?: string
  metrics?: WalrusMetrics
  /** How often a standby tries the lock (default: min(interval, 5 s)). */
  standbyPollMs?: number
  /** Longest wait between reconnection attempts (default 30 s). */
  maxBackoffMs?: number
  signal: AbortSignal
  onEvent: (e: WatchEvent) => void
}

export type WatchEvent =
  | {event: 'started'; server: string; database: string; role: string; mode: WatchMode; intervalMs: number | null; settings: RuleSettings}
  | {event: 'standby'; holders: LockHolder[]}
  | {event: 'acting'}
  | {event: 'fallback'; reason: string}
  | {event: 'decision'; decision: Decision; mode: WatchMode; applied: boolean; problem?: string; historyId: string | null; notified: boolean; queries: number; intervalMs: number}
  | {event: 'disconnected'; error: string; retryInMs: number}
  | {event: 'reconnected'}
  | {event: 'stopped'; cycles: number; adjustments: number}

export interface WatchSummary {
  cycles: number
  adjustments: number
  outcomes: Record<string, number>
  mode: WatchMode
  fallbackReason: string | null
  lastDecision: Decision | null
  maxQueriesPerCycle: number
}

/** A failure that a new connection may cure (also node-postgres's "not queryable" after a lost socket). */
export function lostConnection(err: unknown): boolean {
  if (isConnectionFailure(err)) return true
  const msg = (err as {message?: unknown})?.message
  return typeof msg === 'string' && /not queryable|Connection terminated|terminating connection|server closed the connection/i.test(msg)
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const t = setTimeout(done, ms)
    function done() {
      clearTimeout(t)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, {once: true})
  })
}

export class Watcher {
  private client: pg.Client | null = null
  private mode: WatchMode
  private fallbackReason: string | null = null
  private acting = false
  private versionNum = 0
  private lastHolders = ''
  private readonly startedAt = new Date().toISOString()
  private readonly summary: WatchSummary

  constructor(private readonly o: WatchOptions) {
    this.mode = o.settings.dryRun ? 'dry_run' : 'apply'
    this.summary = {cycles: 0, adjustments: 0, outcomes: {}, mode: this.mode, fallbackReason: null, lastDecision: null, maxQueriesPerCycle: 0}
  }

  private async connect(): Promise<pg.Client> {
    const c = await openClient(this.o.conn, {applicationName: 'steep-repl walrus watch'})
    c.on('error', () => {}) // a lost connection surfaces on the next query
    return c
  }

  /** Checks that run at start and after every reconnection. */
  private async preflight(c: pg.Client): Promise<{database: string; role: string; server: string}> {
    const p = await readPrivileges(c)
    refuseOldServer(p)
    refuseStandby(p, 'walrus watch')
    if (!this.o.settings.dryRun) requireAlterPrivileges(p)
    await requireWalrusSchema(c)
    this.versionNum = p.serverVersionNum
    const r = await c.query(`SELECT current_database() AS db, source FROM pg_settings WHERE name = 'max_wal_size'`)
    if (this.mode === 'apply') {
      const blocked = alterBlockedReason(r.rows[0].source, p.allowAlterSystem)
      if (blocked) this.fallBack(blocked)
    }
    return {database: r.rows[0].db, role: p.role, server: `PostgreSQL ${p.serverVersion}`}
  }

  private fallBack(reason: string): void {
    this.mode = 'recommend'
    this.fallbackReason = reason
    this.summary.mode = 'recommend'
    this.summary.fallbackReason = reason
    this.o.onEvent({event: 'fallback', reason})
  }

  private watcherInfo(intervalMs: number): Record<string, unknown> {
    return {
      host: hostname(),
      pid: process.pid,
      started_at: this.startedAt,
      mode: this.mode,
      interval_ms: this.o.intervalMs ?? null,
      effective_interval_ms: intervalMs,
      settings: this.o.settings,
    }
  }

  async run(): Promise<WatchSummary> {
    const {signal} = this.o
    this.client = await this.connect()
    try {
      const info = await this.preflight(this.client)
      this.o.onEvent({event: 'started', ...info, mode: this.mode, intervalMs: this.o.intervalMs ?? null, settings: this.o.settings})
      let backoff = 500
      while (!signal.aborted) {
        try {
          if (!this.client) {
            this.client = await this.connect()
            await this.preflight(this.client)
            this.o.onEvent({event: 'reconnected'})
            backoff = 500
          }
          if (!this.acting) {
            const got = await acquireLock(this.client)
            if (!got.acquired) {
              const key = got.holders.map((h) => `${h.pid}@${h.database}`).join(',')
              if (key !== this.lastHolders) this.o.onEvent({event: 'standby', holders: got.holders})
              this.lastHolders = key
              this.o.metrics?.setActing(false)
              await sleep(this.o.standbyPollMs ?? Math.min(this.o.intervalMs ?? 5000, 5000), signal)
              continue
            }
            this.acting = true
            this.lastHolders = ''
            this.o.metrics?.setActing(true)
            this.o.onEvent({event: 'acting'})
          }
          const intervalMs = await this.cycle(this.client)
          await sleep(intervalMs, signal)
        } catch (err) {
          if (!lostConnection(err) || signal.aborted) throw err
          this.acting = false
          this.o.metrics?.setActing(false)
          await this.client?.end().catch(() => {})
          this.client = null
          this.o.onEvent({event: 'disconnected', error: (err as Error).message, retryInMs: backoff})
          await sleep(backoff, signal)
          backoff = Math.min(backoff * 2, this.o.maxBackoffMs ?? 30_000)
        }
      }
    } finally {
      // Ending the session releases the advisory lock: a standby takes over at its next poll.
      await this.client?.end().catch(() => {})
      this.client = null
      this.o.onEvent({event: 'stopped', cycles: this.summary.cycles, adjustments: this.summary.adjustments})
    }
    return this.summary
  }

  /** One reading and its decision. Returns the interval to wait before the next one. */
  private async cycle(c: pg.Client): Promise<number> {
    let queries = 1
    const r = await readCycle(c, this.versionNum, true)
    if (r.inRecovery) {
      throw new StateError('the server went into recovery (it is now a standby): walrus watch stops', {
        hint: 'Run walrus watch against the new primary.',
      })
    }
    const intervalMs = this.o.intervalMs ?? r.checkpointTimeoutSec * 1000
    const dry = this.mode !== 'apply'
    const settings: RuleSettings = {...this.o.settings, dryRun: dry}
    const generation = r.state?.generation ?? '0'
    const ev = evaluate(settings, stateFromRow(r.state, dry), {
      at: r.at,
      requested: r.requested,
      statsReset: r.statsReset,
      maxWalSizeMb: r.maxWalSizeMb,
      intervalMs,
    })
    const d = ev.decision
    let state: RuleState = ev.state
    let applied = false
    let problem: string | undefined
    let override: {action: 'skipped'; reason: string; extra: Record<string, unknown>} | undefined
    if (d.apply) {
      const res = await applyMaxWalSize(c, d.targetMb)
      queries += res.queries
      if (res.effective) {
        applied = true
        state = recordAdjustment(state, d, false)
        this.summary.adjustments++
      } else {
        problem = res.problem
        override = {
          action: 'skipped',
          reason: `not applied: ${res.problem}`,
          extra: {blocked_by: 'not_effective', would_apply: d.change, problem: res.problem, sqlstate: res.sqlstate ?? null, server_reports_mb: res.nowMb, source: res.source},
        }
        this.fallBack(res.problem ?? 'the change did not take effect')
      }
    } else if (d.action === 'dry_run') {
      state = recordAdjustment(state, d, true)
    }
    const extra = this.mode === 'recommend' && d.action && !override ? {recommend_only: true, why: this.fallbackReason} : undefined
    const notify = d.action
      ? {
          event: 'decision',
          action: override?.action ?? d.action,
          change: d.change,
          applied,
          old_size_mb: d.currentMb,
          new_size_mb: d.targetMb,
          forced_checkpoints: d.delta,
          reason: override?.reason ?? d.reason,
          host: hostname(),
        }
      : undefined
    queries++
    const w = await writeCycle(c, {
      history: d.action
        ? {decision: d, checkpointTimeoutSec: r.checkpointTimeoutSec, intervalSec: intervalMs / 1000, source: 'watch',
            action: override?.action, reason: override?.reason, extraMetadata: {...extra, ...override?.extra}}
        : undefined,
      notify,
      retentionSec: this.o.retentionSec,
      state,
      generation,
      dryRun: dry,
      watcher: this.watcherInfo(intervalMs),
    })
    if (this.o.recordFile) {
      appendFileSync(this.o.recordFile, formatSample({at: r.at, requested: r.requested, statsReset: r.statsReset, maxWalSizeMb: r.maxWalSizeMb, checkpointTimeoutSec: r.checkpointTimeoutSec}) + '\n')
    }
    this.summary.cycles++
    this.summary.outcomes[d.outcome] = (this.summary.outcomes[d.outcome] ?? 0) + 1
    this.summary.lastDecision = d
    this.summary.maxQueriesPerCycle = Math.max(this.summary.maxQueriesPerCycle, queries)
    this.o.metrics?.observeReading({maxWalSizeMb: r.maxWalSizeMb, requested: r.requested, maxMb: this.o.settings.maxMb, acting: true})
    this.o.metrics?.observeDecision(d, applied)
    this.o.onEvent({event: 'decision', decision: d, mode: this.mode, applied, problem, historyId: w.historyId, notified: w.notified, queries, intervalMs})
    return intervalMs
  }
}
