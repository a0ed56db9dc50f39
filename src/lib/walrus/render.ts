// Text and JSON forms of watcher events and decisions (one line each). Pure.

import {formatDuration} from '../duration.js'
import {describeDecision, type Decision} from './rule.js'
import type {WatchEvent} from './watcher.js'

export function decisionJson(d: Decision): Record<string, unknown> {
  return {
    time: new Date(d.at).toISOString(),
    outcome: d.outcome,
    action: d.action,
    change: d.change,
    apply: d.apply,
    current_mb: d.currentMb,
    target_mb: d.targetMb,
    delta: d.delta,
    requested: d.requested,
    quiet_intervals: d.quietIntervals,
    reason: d.reason,
    metadata: d.metadata,
  }
}

export function eventJson(e: WatchEvent): Record<string, unknown> {
  if (e.event === 'decision') {
    const {decision, ...rest} = e
    return {
      event: 'decision', ...decisionJson(decision), mode: rest.mode, applied: rest.applied, problem: rest.problem ?? null,
      history_id: rest.historyId, notified: rest.notified, queries: rest.queries, interval_ms: rest.intervalMs,
    }
  }
  return {time: new Date().toISOString(), ...e}
}

export function eventText(e: WatchEvent): string {
  switch (e.event) {
    case 'started': {
      const s = e.settings
      return `walrus watch on ${e.server}, database ${e.database} as ${e.role}: mode ${e.mode}, interval ${e.intervalMs === null ? 'checkpoint_timeout' : formatDuration(e.intervalMs)}, threshold ${s.threshold}, max ${s.maxMb} MB, min ${s.minMb} MB, ${s.shrinkEnabled ? `shrink x${s.shrinkFactor} after ${s.shrinkIntervals} quiet intervals` : 'no shrink'}, cooldown ${s.cooldownSec}s, ${s.maxChangesPerHour} changes/hour`
    }
    case 'standby':
      return `standby: another watcher acts (${e.holders.map((h) => `pid ${h.pid} on database ${h.database ?? '?'}${h.application_name ? ` "${h.application_name}"` : ''}${h.client_addr ? ` from ${h.client_addr}` : ''}`).join(', ') || 'lock held'}); waiting to take over`
    case 'acting':
      return 'acting: this watcher holds the walrus lock'
    case 'fallback':
      return `warning: changes cannot be applied (${e.reason}); recommending only (decisions recorded as dry_run)`
    case 'decision': {
      let line = describeDecision(e.decision)
      if (e.applied) line += ' [applied]'
      else if (e.problem) line += ` [NOT applied: ${e.problem}]`
      else if (e.mode === 'recommend' && e.decision.action === 'dry_run') line += ' [recommendation]'
      return line
    }
    case 'disconnected':
      return `connection lost (${e.error}); reconnecting in ${formatDuration(e.retryInMs)}`
    case 'reconnected':
      return 'reconnected'
    case 'stopped':
      return `stopped after ${e.cycles} cycle${e.cycles === 1 ? '' : 's'}, ${e.adjustments} change${e.adjustments === 1 ? '' : 's'} applied`
  }
}
