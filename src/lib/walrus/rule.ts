// The walrus resize rule: pg_walrus's checkpoint-driven max_wal_size sizing as a pure function of
// (settings, state, reading). No I/O, no clock: time comes in with the reading. The watcher, the
// simulator and the tuner all go through here, so what `walrus simulate` prints is what `walrus
// watch` would have done.
//
// Decision order (as pg_walrus): delta -> threshold -> grow target -> cap -> skip if not larger ->
// rate limit -> dry run -> apply; shrink: quiet+1 -> enabled -> intervals -> floor -> target ->
// skip if not smaller -> rate limit -> dry run -> apply.
//
// Fixed pg_walrus defects (reference §2.4, §2.14, §7.5, §8, §16):
//  - a stats reset (stats_reset moved) or a negative delta takes a new baseline instead of counting
//    as a quiet interval (which could shrink);
//  - a gap much longer than the interval (watcher stopped, disconnected, disabled) takes a new
//    baseline instead of charging the whole gap's checkpoints to one interval;
//  - the baseline is taken at start, so the first decision comes one interval after start (the
//    loop reads at once; the rule itself only needs a baseline);
//  - dry run follows the whole rate limit (cooldown and hourly cap), so it reports what a real run
//    would have done; upstream only counted the hourly cap;
//  - history records the delta (forced checkpoints in the interval), with the cumulative counter
//    beside it.

import {UsageError} from '../errors.js'

export const INT32_MAX = 2_147_483_647

export interface RuleSettings {
  /** Requested checkpoints per interval that trigger a grow (1..1000). */
  threshold: number
  /** Upper bound for max_wal_size in MB (2..2147483647). */
  maxMb: number
  /** Lower bound the shrink path never goes below, in MB (2..2147483647). */
  minMb: number
  shrinkEnabled: boolean
  /** Factor applied on shrink (0.01..0.99), rounded up. */
  shrinkFactor: number
  /** Consecutive quiet intervals before a shrink (1..1000). */
  shrinkIntervals: number
  /** Minimum seconds between adjustments (0..86400; 0 disables). */
  cooldownSec: number
  /** Adjustments per one-hour window (0..1000; 0 blocks every automatic adjustment). */
  maxChangesPerHour: number
  /** Decide and record, never apply. */
  dryRun: boolean
  /** A reading more than gapFactor x the interval after the baseline takes a new baseline. */
  gapFactor: number
}

export const DEFAULT_SETTINGS: Readonly<RuleSettings> = Object.freeze({
  threshold: 2,
  maxMb: 4096,
  minMb: 1024,
  shrinkEnabled: true,
  shrinkFactor: 0.75,
  shrinkIntervals: 5,
  cooldownSec: 300,
  maxChangesPerHour: 4,
  dryRun: false,
  gapFactor: 2,
})

const LIMITS = {
  threshold: [1, 1000, 'threshold', '--threshold'],
  maxMb: [2, INT32_MAX, 'maximum size (MB)', '--max'],
  minMb: [2, INT32_MAX, 'minimum size (MB)', '--min'],
  shrinkIntervals: [1, 1000, 'shrink intervals', '--shrink-intervals'],
  cooldownSec: [0, 86_400, 'cooldown (seconds)', '--cooldown'],
  maxChangesPerHour: [0, 1000, 'changes per hour', '--max-changes-per-hour'],
} as const

/** Fills defaults and checks every bound and the cross-field rule (min <= max). Throws UsageError. */
export function validateSettings(input: Partial<RuleSettings> = {}): RuleSettings {
  const s: RuleSettings = {...DEFAULT_SETTINGS}
  for (const [k, v] of Object.entries(input)) if (v !== undefined) (s as unknown as Record<string, unknown>)[k] = v
  for (const [key, [lo, hi, what, flag]] of Object.entries(LIMITS)) {
    const v = s[key as keyof typeof LIMITS]
    if (!Number.isInteger(v) || v < lo || v > hi) {
      throw new UsageError(`${flag}: ${what} must be an integer from ${lo} to ${hi}, got ${v}`)
    }
  }
  if (!(typeof s.shrinkFactor === 'number' && s.shrinkFactor >= 0.01 && s.shrinkFactor <= 0.99)) {
    throw new UsageError(`--shrink-factor: must be from 0.01 to 0.99, got ${s.shrinkFactor}`)
  }
  if (!(typeof s.gapFactor === 'number' && s.gapFactor >= 1.5 && Number.isFinite(s.gapFactor))) {
    throw new UsageError(`gap factor must be a number >= 1.5, got ${s.gapFactor}`)
  }
  if (s.maxMb < s.minMb) {
    throw new UsageError(`--max (${s.maxMb} MB) is below --min (${s.minMb} MB)`, {hint: 'The maximum must be at least the minimum.'})
  }
  return s
}

export interface Baseline {
  /** Cumulative requested-checkpoint counter at the baseline. */
  requested: number
  /** stats_reset of the statistics the counter belongs to (ISO text), null when never reset. */
  statsReset: string | null
  /** When it was read (ms since the epoch). */
  at: number
}

export interface RuleState {
  baseline: Baseline | null
  quietIntervals: number
  /** The cooldown clock: last adjustment (applied, or decided in dry run), ms since the epoch. */
  lastAdjustmentAt: number | null
  changesThisHour: number
  hourWindowStart: number | null
  /** Adjustments really applied. */
  totalAdjustments: number
}

export function initialState(): RuleState {
  return {baseline: null, quietIntervals: 0, lastAdjustmentAt: null, changesThisHour: 0, hourWindowStart: null, totalAdjustments: 0}
}

export interface Reading {
  /** ms since the epoch. */
  at: number
  /** Cumulative requested checkpoints; null when the statistics are unavailable. */
  requested: number | null
  statsReset: string | null
  /** Current max_wal_size in MB. */
  maxWalSizeMb: number
  /** The interval the readings are meant to be apart (ms): checkpoint_timeout or --interval. */
  intervalMs: number
}

export type Action = 'increase' | 'decrease' | 'capped' | 'dry_run' | 'skipped'
export const ACTIONS: readonly Action[] = ['increase', 'decrease', 'capped', 'dry_run', 'skipped']
export type Outcome = Action | 'baseline' | 'none' | 'unavailable'

export interface Decision {
  at: number
  outcome: Outcome
  /** The history action; null for cycles that write no history (baseline, none, unavailable). */
  action: Action | null
  /** The caller must set max_wal_size to targetMb (ALTER SYSTEM + reload). */
  apply: boolean
  /** What an applied change is (or would be) recorded as. */
  change: 'increase' | 'capped' | 'decrease' | null
  /** Requested checkpoints since the baseline; null for baselines. */
  delta: number | null
  /** The cumulative counter read. */
  requested: number | null
  currentMb: number
  targetMb: number
  quietIntervals: number
  reason: string
  metadata: Record<string, unknown>
}

export interface Evaluation {
  decision: Decision
  /** State after this reading, not counting the adjustment itself (see recordAdjustment). */
  state: RuleState
}

/** current x (delta + 1), saturating at 2147483647 (pg_walrus saturates before capping). */
export function growSize(currentMb: number, delta: number): number {
  const v = currentMb * (delta + 1)
  return v >= INT32_MAX || !Number.isFinite(v) ? INT32_MAX : Math.max(0, Math.trunc(v))
}

/** ceil(current x factor), never below the floor. */
export function shrinkSize(currentMb: number, factor: number, minMb: number): number {
  return Math.max(Math.ceil(currentMb * factor), minMb)
}

export type RateLimit =
  | {allowed: true}
  | {allowed: false; blockedBy: 'cooldown' | 'hourly_limit'; reason: string; remainingSec?: number; metadata: Record<string, unknown>}

const unixSec = (ms: number | null) => (ms === null ? null : Math.floor(ms / 1000))

export function hourWindowExpired(state: RuleState, now: number): boolean {
  return state.hourWindowStart === null || now >= state.hourWindowStart + 3_600_000
}

/** pg_walrus's rate limit: zero cap, then cooldown (blocked while now < last + cooldown), then the hourly cap. */
export function checkRateLimit(s: RuleSettings, state: RuleState, now: number): RateLimit {
  if (s.maxChangesPerHour === 0) {
    return {
      allowed: false,
      blockedBy: 'hourly_limit',
      reason: 'automatic adjustments disabled (max_changes_per_hour = 0)',
      metadata: {blocked_by: 'hourly_limit', max_changes_per_hour: 0, changes_this_hour: state.changesThisHour},
    }
  }
  if (s.cooldownSec > 0 && state.lastAdjustmentAt !== null) {
    const end = state.lastAdjustmentAt + s.cooldownSec * 1000
    if (now < end) {
      const remainingSec = Math.ceil((end - now) / 1000)
      return {
        allowed: false,
        blockedBy: 'cooldown',
        reason: 'cooldown active',
        remainingSec,
        metadata: {
          blocked_by: 'cooldown',
          cooldown_sec: s.cooldownSec,
          cooldown_remaining_sec: remainingSec,
          last_adjustment_time: unixSec(state.lastAdjustmentAt),
        },
      }
    }
  }
  if (!hourWindowExpired(state, now) && state.changesThisHour >= s.maxChangesPerHour) {
    return {
      allowed: false,
      blockedBy: 'hourly_limit',
      reason: 'hourly limit reached',
      metadata: {
        blocked_by: 'hourly_limit',
        max_changes_per_hour: s.maxChangesPerHour,
        changes_this_hour: state.changesThisHour,
        hour_window_start: unixSec(state.hourWindowStart),
      },
    }
  }
  return {allowed: true}
}

function sameStatsReset(a: string | null, b: string | null): boolean {
  if (a === null || b === null) return a === b
  const ta = Date.parse(a)
  const tb = Date.parse(b)
  return Number.isNaN(ta) || Number.isNaN(tb) ? a === b : ta === tb
}

const fmtInterval = (ms: number) => (ms % 60_000 === 0 ? `${ms / 60_000}min` : `${Math.round(ms / 100) / 10}s`)

/** Evaluates one reading. Pure: same inputs, same result. */
export function evaluate(s: RuleSettings, prev: RuleState, r: Reading): Evaluation {
  const current = r.maxWalSizeMb
  const base = {at: r.at, requested: r.requested, currentMb: current, targetMb: current, apply: false, change: null, metadata: {}}
  if (r.requested === null) {
    return {
      decision: {...base, outcome: 'unavailable', action: null, delta: null, quietIntervals: prev.quietIntervals, reason: 'checkpoint statistics unavailable, skipping cycle'},
      state: prev,
    }
  }
  const baseline: Baseline = {requested: r.requested, statsReset: r.statsReset, at: r.at}
  const rebase = (reason: string): Evaluation => ({
    decision: {...base, outcome: 'baseline', action: null, delta: null, quietIntervals: prev.quietIntervals, reason},
    state: {...prev, baseline},
  })
  const b = prev.baseline
  if (!b) return rebase(`baseline: ${r.requested} requested checkpoints so far`)
  if (!sameStatsReset(b.statsReset, r.statsReset)) {
    return rebase(`statistics were reset (stats_reset ${r.statsReset ?? 'null'}, was ${b.statsReset ?? 'null'}); new baseline ${r.requested}`)
  }
  const delta = r.requested - b.requested
  if (delta < 0) return rebase(`requested-checkpoint counter went back from ${b.requested} to ${r.requested}; new baseline`)
  const elapsed = r.at - b.at
  if (elapsed > s.gapFactor * r.intervalMs) {
    return rebase(`gap of ${fmtInterval(elapsed)} since the last reading (interval ${fmtInterval(r.intervalMs)}); ${delta} requested checkpoints in it not counted, new baseline`)
  }
  const state: RuleState = {...prev, baseline}
  const decided = (d: Omit<Decision, 'at' | 'requested' | 'currentMb' | 'delta'> & {delta?: number}): Evaluation => ({
    decision: {at: r.at, requested: r.requested, currentMb: current, delta, ...d},
    state,
  })

  if (delta >= s.threshold) {
    // Grow path. Entering it ends any quiet run, whatever happens next.
    state.quietIntervals = 0
    const calculated = growSize(current, delta)
    const capped = calculated > s.maxMb
    const target = capped ? s.maxMb : calculated
    const growMeta: Record<string, unknown> = {delta, multiplier: delta + 1, calculated_size_mb: calculated}
    if (capped) growMeta.walrus_max_mb = s.maxMb
    if (current >= target) {
      return decided({
        outcome: 'none', action: null, apply: false, change: null, targetMb: current, quietIntervals: 0, metadata: growMeta,
        reason: capped
          ? `${delta} requested checkpoints; ${calculated} MB exceeds the maximum of ${s.maxMb} MB and max_wal_size is already ${current} MB`
          : `${delta} requested checkpoints; max_wal_size already at ${current} MB`,
      })
    }
    const change = capped ? 'capped' : 'increase'
    return gated(s, prev, r, decided, {change, target, quiet: 0, meta: growMeta,
      appliedReason: capped ? 'Calculated size exceeded walrus.max' : 'Forced checkpoints exceeded threshold',
      dryReason: capped ? 'capped at walrus.max' : 'threshold exceeded'})
  }

  // Shrink path: a quiet interval.
  const quiet = prev.quietIntervals + 1
  state.quietIntervals = quiet
  const quietNone = (reason: string) =>
    decided({outcome: 'none', action: null, apply: false, change: null, targetMb: current, quietIntervals: quiet, metadata: {delta}, reason})
  const activity = `${delta} requested checkpoint${delta === 1 ? '' : 's'} (threshold ${s.threshold})`
  if (!s.shrinkEnabled) return quietNone(`quiet: ${activity}; shrink disabled`)
  if (quiet < s.shrinkIntervals) return quietNone(`quiet: ${activity}; ${quiet} of ${s.shrinkIntervals} quiet intervals before a shrink`)
  if (current <= s.minMb) return quietNone(`quiet: ${activity}; max_wal_size (${current} MB) already at or below the minimum (${s.minMb} MB)`)
  const target = shrinkSize(current, s.shrinkFactor, s.minMb)
  if (target >= current) return quietNone(`quiet: ${activity}; shrink target ${target} MB is not below ${current} MB`)
  return gated(s, prev, r, decided, {change: 'decrease', target, quiet,
    meta: {delta, shrink_factor: s.shrinkFactor, quiet_intervals: quiet, calculated_size_mb: target},
    appliedReason: 'Sustained low checkpoint activity', dryReason: 'sustained low activity'})
}

interface Gate {
  change: 'increase' | 'capped' | 'decrease'
  target: number
  quiet: number
  meta: Record<string, unknown>
  appliedReason: string
  dryReason: string
}

/** Rate limit, then dry run, then apply; shared by the two paths. */
function gated(
  s: RuleSettings,
  prev: RuleState,
  r: Reading,
  decided: (d: Omit<Decision, 'at' | 'requested' | 'currentMb' | 'delta'>) => Evaluation,
  g: Gate,
): Evaluation {
  const rl = checkRateLimit(s, prev, r.at)
  if (!rl.allowed) {
    // A blocked shrink keeps its quiet count and is tried again at the next quiet interval.
    return decided({outcome: 'skipped', action: 'skipped', apply: false, change: g.change, targetMb: g.target, quietIntervals: g.quiet,
      reason: rl.reason, metadata: {...rl.metadata, would_apply: g.change, ...g.meta}})
  }
  if (s.dryRun) {
    return decided({outcome: 'dry_run', action: 'dry_run', apply: false, change: g.change, targetMb: g.target, quietIntervals: g.quiet,
      reason: g.dryReason, metadata: {dry_run: true, would_apply: g.change, ...g.meta}})
  }
  return decided({outcome: g.change, action: g.change, apply: true, change: g.change, targetMb: g.target, quietIntervals: g.quiet,
    reason: g.appliedReason, metadata: g.meta})
}

/**
 * The bookkeeping after an adjustment was applied (or decided in dry run): the cooldown clock, the
 * hourly window, the adjustment count, and the quiet count after a shrink. Not called when the
 * change failed or did not take effect, so a failed change starts no cooldown.
 */
export function recordAdjustment(state: RuleState, d: Decision, dryRun: boolean): RuleState {
  const next = {...state}
  next.lastAdjustmentAt = d.at
  if (hourWindowExpired(state, d.at)) {
    next.changesThisHour = 1
    next.hourWindowStart = d.at
  } else next.changesThisHour = state.changesThisHour + 1
  if (!dryRun) next.totalAdjustments = state.totalAdjustments + 1
  if (d.change === 'decrease') next.quietIntervals = 0
  return next
}

/** evaluate, then recordAdjustment when the decision is an adjustment that the caller treats as done. */
export function step(s: RuleSettings, state: RuleState, r: Reading): Evaluation {
  const ev = evaluate(s, state, r)
  if (ev.decision.apply || ev.decision.action === 'dry_run') return {decision: ev.decision, state: recordAdjustment(ev.state, ev.decision, !ev.decision.apply)}
  return ev
}

/** The one-line human form of a decision (stderr, simulate). */
export function describeDecision(d: Decision): string {
  const when = new Date(d.at).toISOString()
  const sizes = d.targetMb !== d.currentMb ? `${d.currentMb} MB -> ${d.targetMb} MB` : `${d.currentMb} MB`
  const delta = d.delta === null ? '' : ` delta=${d.delta}`
  let what: string = d.outcome
  if (d.outcome === 'dry_run' || d.outcome === 'skipped') what = `${d.outcome} (${d.change})`
  return `${when} ${what} ${sizes}${delta}: ${d.reason}`
}
