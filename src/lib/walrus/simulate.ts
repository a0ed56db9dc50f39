// Replays readings through the rule, as the watcher would have (every allowed adjustment treated as
// applied). Pure.

import {type Decision, initialState, type RuleSettings, type RuleState, step} from './rule.js'
import type {Sample} from './samples.js'

export const DEFAULT_INTERVAL_MS = 300_000

export interface SimulationOptions {
  /** Fixed interval (ms) for every reading; otherwise the reading's checkpoint_timeout_sec, else 5 min. */
  intervalMs?: number
  state?: RuleState
}

export interface Simulation {
  decisions: Decision[]
  state: RuleState
  finalMb: number
}

export function simulate(settings: RuleSettings, samples: Sample[], o: SimulationOptions = {}): Simulation {
  let state = o.state ?? initialState()
  let size = samples[0]?.maxWalSizeMb ?? 0
  const decisions: Decision[] = []
  for (const s of samples) {
    // A reading that gives the setting wins (it is what the server had); otherwise the simulated
    // value carries on from the previous decision.
    const current = s.maxWalSizeMb ?? size
    const intervalMs = o.intervalMs ?? (s.checkpointTimeoutSec ? s.checkpointTimeoutSec * 1000 : DEFAULT_INTERVAL_MS)
    const ev = step(settings, state, {at: s.at, requested: s.requested, statsReset: s.statsReset, maxWalSizeMb: current, intervalMs})
    decisions.push(ev.decision)
    state = ev.state
    size = ev.decision.apply ? ev.decision.targetMb : current
  }
  return {decisions, state, finalMb: size}
}
