// `walrus tune`: a one-shot recommendation from the statistics since their last reset. Pure: the
// facts come in, the recommendation and its reasoning go out.
//
// Two estimates, and the larger wins when checkpoints were forced:
//  - the rule's: current x (requested checkpoints per checkpoint_timeout + 1), as walrus watch
//    would do over one busy interval;
//  - the WAL rate's: PostgreSQL starts a checkpoint when the WAL since the last one reaches about
//    max_wal_size / (1 + checkpoint_completion_target), so a size that holds one checkpoint_timeout
//    of WAL at the observed rate is rate x timeout x (1 + target), plus 10% headroom.
// With no forced checkpoints, a decrease is suggested only when the WAL rate shows the current size
// is far more than needed, by one shrink step at most and never below the minimum.

import {growSize, INT32_MAX, type RuleSettings} from './rule.js'

export interface TuneFacts {
  now: number
  currentMb: number
  source: string
  requested: number
  timed: number
  /** Checkpoint statistics reset (ms), null when unknown. */
  statsResetAt: number | null
  checkpointTimeoutSec: number
  completionTarget: number
  /** WAL bytes per second: from pg_stat_wal since its reset, or from LSN movement when sampled. */
  walBytesPerSec: number | null
  walRateSource: string | null
  /** From the watcher's persisted state, for the confidence score. */
  quietIntervals: number
  baselineRequested: number
}

export interface TuneAdvice {
  currentMb: number
  recommendedMb: number
  action: 'increase' | 'decrease' | 'none'
  change: 'increase' | 'capped' | 'decrease' | null
  requested: number
  timed: number
  forcedRatio: number | null
  elapsedSec: number | null
  intervals: number | null
  requestedPerInterval: number | null
  walBytesPerSec: number | null
  neededMb: number | null
  confidence: number
  reasons: string[]
}

/** pg_walrus's confidence score (reference §7.3.1): 0 when unavailable, else 50 +20 +15 +15. */
export function confidence(o: {requested: number; quietIntervals: number; baselineRequested: number}): number {
  if (o.requested < 0) return 0
  let c = 50
  if (o.requested > 10) c += 20
  if (o.quietIntervals > 0) c += 15
  if (o.baselineRequested > 0) c += 15
  return c
}

const MiB = 1024 * 1024

export function advise(f: TuneFacts, s: RuleSettings): TuneAdvice {
  const reasons: string[] = []
  const total = f.requested + f.timed
  const forcedRatio = total > 0 ? f.requested / total : null
  const elapsedSec = f.statsResetAt === null ? null : Math.max(0, (f.now - f.statsResetAt) / 1000)
  const intervals = elapsedSec === null ? null : Math.max(1, elapsedSec / f.checkpointTimeoutSec)
  const perInterval = intervals === null ? null : f.requested / intervals
  const neededMb =
    f.walBytesPerSec === null ? null : Math.min(INT32_MAX, Math.max(2, Math.ceil(((f.walBytesPerSec * f.checkpointTimeoutSec * (1 + f.completionTarget)) / MiB) * 1.1 - 1e-9)))
  const out: TuneAdvice = {
    currentMb: f.currentMb, recommendedMb: f.currentMb, action: 'none', change: null, requested: f.requested, timed: f.timed,
    forcedRatio, elapsedSec, intervals, requestedPerInterval: perInterval, walBytesPerSec: f.walBytesPerSec, neededMb,
    confidence: confidence({requested: f.requested, quietIntervals: f.quietIntervals, baselineRequested: f.baselineRequested}), reasons,
  }
  const pct = forcedRatio === null ? 'no checkpoints yet' : `${Math.round(forcedRatio * 100)}% of ${total} checkpoints were requested`
  reasons.push(
    elapsedSec === null
      ? `${f.requested} requested and ${f.timed} timed checkpoints (${pct}); the statistics have no reset time, so no rate per interval`
      : `${f.requested} requested and ${f.timed} timed checkpoints in ${fmtSec(elapsedSec)} since the statistics reset (${pct}); ${perInterval!.toFixed(2)} requested per checkpoint_timeout (${f.checkpointTimeoutSec}s), threshold ${s.threshold}`,
  )
  if (neededMb !== null) {
    reasons.push(
      `WAL rate ${(f.walBytesPerSec! / MiB).toFixed(2)} MB/s (${f.walRateSource}): one checkpoint_timeout of WAL with checkpoint_completion_target ${f.completionTarget} needs about ${neededMb} MB`,
    )
  }
  const pressure = perInterval === null ? forcedRatio !== null && forcedRatio >= 0.5 && f.requested >= s.threshold : perInterval >= s.threshold
  if (pressure) {
    const byRule = growSize(f.currentMb, Math.max(1, Math.floor(perInterval ?? s.threshold)))
    const calc = Math.max(byRule, neededMb ?? 0)
    const capped = calc > s.maxMb
    const target = capped ? s.maxMb : calc
    if (target <= f.currentMb) {
      reasons.push(`checkpoints are forced, but max_wal_size (${f.currentMb} MB) is already at or above the ${capped ? `maximum (${s.maxMb} MB)` : `estimate (${calc} MB)`}`)
      return out
    }
    reasons.push(
      `checkpoints are forced: grow to ${target} MB${capped ? ` (capped from ${calc} MB at the maximum ${s.maxMb} MB)` : ''} (rule estimate ${byRule} MB${neededMb !== null ? `, WAL-rate estimate ${neededMb} MB` : ''})`,
    )
    return {...out, recommendedMb: target, action: 'increase', change: capped ? 'capped' : 'increase'}
  }
  if (f.requested > 0) reasons.push('requested checkpoints also count manual CHECKPOINT, base backups and CREATE DATABASE, not only WAL volume')
  if (neededMb !== null && f.currentMb > s.minMb) {
    const target = Math.max(s.minMb, neededMb, Math.ceil(f.currentMb * s.shrinkFactor))
    if (target < f.currentMb && neededMb * 2 <= f.currentMb) {
      reasons.push(`few forced checkpoints and the WAL rate needs well under the current size: shrink one step to ${target} MB (factor ${s.shrinkFactor}, minimum ${s.minMb} MB)`)
      return {...out, recommendedMb: target, action: 'decrease', change: 'decrease'}
    }
  }
  reasons.push(`keep max_wal_size at ${f.currentMb} MB`)
  return out
}

function fmtSec(sec: number): string {
  if (sec < 120) return `${Math.round(sec)}s`
  if (sec < 7200) return `${Math.round(sec / 60)}min`
  if (sec < 172_800) return `${(sec / 3600).toFixed(1)}h`
  return `${(sec / 86_400).toFixed(1)}d`
}
