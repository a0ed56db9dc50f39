// The walrus rule against every worked example and test vector of the pg_walrus reference (§2.15,
// §3.3, §9, §13) and the defects a faithful port fixes (§2.14, §7.5, §8, §16).

import {describe, expect, it} from 'vitest'
import {
  checkRateLimit,
  DEFAULT_SETTINGS,
  evaluate,
  growSize,
  initialState,
  INT32_MAX,
  type Reading,
  recordAdjustment,
  type RuleSettings,
  type RuleState,
  shrinkSize,
  step,
  validateSettings,
} from '../../src/lib/walrus/rule.js'
import {simulate} from '../../src/lib/walrus/simulate.js'
import {parseSamples} from '../../src/lib/walrus/samples.js'

const T0 = Date.parse('2026-01-01T00:00:00Z')
const MIN = 60_000
const INTERVAL = 5 * MIN

const settings = (o: Partial<RuleSettings> = {}) => validateSettings(o)
/** A state with a baseline of `requested` taken one interval before `at`. */
function baseState(requested: number, o: Partial<RuleState> = {}, at = T0): RuleState {
  return {...initialState(), baseline: {requested, statsReset: null, at: at - INTERVAL}, ...o}
}
const reading = (requested: number | null, maxWalSizeMb: number, o: Partial<Reading> = {}): Reading => ({
  at: T0, requested, statsReset: null, maxWalSizeMb, intervalMs: INTERVAL, ...o,
})

describe('growSize (§2.7, §13.1 calculate_new_size)', () => {
  it.each([
    [1024, 3, 4096],
    [2048, 1, 4096],
    [512, 2, 1536],
    [512, 4, 2560],
    [100, 10, 1100],
    [1, 1, 2],
    [1, 0, 1],
    [1024, 0, 1024],
    [32, 32, 1056],
    [1024, 32, 33792],
    [2048, 10, 22528],
    // overflow saturates at i32::MAX before the cap
    [1_073_741_823, 2, INT32_MAX],
    [2_147_483_647, 1, INT32_MAX],
    [1_000_000_000, 2, INT32_MAX],
    [1_000_000_000, 3, INT32_MAX],
    [1_073_741_823, 3, INT32_MAX],
    [1024, Number.MAX_SAFE_INTEGER, INT32_MAX],
  ])('%i MB x (%i + 1) = %i', (cur, delta, want) => {
    expect(growSize(cur, delta)).toBe(want)
  })
})

describe('grow path, worked examples (§2.15; threshold 2, max 4096)', () => {
  it.each([
    // current, delta, action, target, calculated
    [1024, 3, 'increase', 4096, 4096], // exact cap is not "capped"
    [512, 4, 'increase', 2560, 2560],
    [512, 2, 'increase', 1536, 1536],
    [2048, 5, 'capped', 4096, 12288],
    [2048, 10, 'capped', 4096, 22528],
    [100, 10, 'increase', 1100, 1100],
    [32, 32, 'increase', 1056, 1056],
    [1024, 32, 'capped', 4096, 33792],
  ] as const)('%i MB, delta %i -> %s to %i', (cur, delta, action, target, calc) => {
    const {decision, state} = evaluate(settings(), baseState(100, {quietIntervals: 3}), reading(100 + delta, cur))
    expect(decision).toMatchObject({outcome: action, action, apply: true, delta, currentMb: cur, targetMb: target})
    expect(decision.metadata).toMatchObject({delta, multiplier: delta + 1, calculated_size_mb: calc})
    if (action === 'capped') {
      expect(decision.metadata.walrus_max_mb).toBe(4096)
      expect(decision.reason).toBe('Calculated size exceeded walrus.max')
    } else {
      expect(decision.metadata).not.toHaveProperty('walrus_max_mb')
      expect(decision.reason).toBe('Forced checkpoints exceeded threshold')
    }
    expect(state.quietIntervals).toBe(0)
    expect(state.baseline).toEqual({requested: 100 + delta, statsReset: null, at: T0})
  })

  it('2048 MB with delta 1 does not grow and counts a quiet interval', () => {
    const {decision, state} = evaluate(settings(), baseState(10, {quietIntervals: 1}), reading(11, 2048))
    expect(decision).toMatchObject({outcome: 'none', action: null, apply: false, targetMb: 2048})
    expect(state.quietIntervals).toBe(2)
  })

  it('4096 MB with delta 3: capped target equals current, silent skip, no history, quiet reset (§2.9)', () => {
    const {decision, state} = evaluate(settings(), baseState(0, {quietIntervals: 4}), reading(3, 4096))
    expect(decision).toMatchObject({outcome: 'none', action: null, apply: false, targetMb: 4096})
    expect(decision.metadata).toMatchObject({calculated_size_mb: 16384, walrus_max_mb: 4096})
    expect(state.quietIntervals).toBe(0)
  })

  it('never lowers on the grow path when set above the maximum by hand', () => {
    const {decision} = evaluate(settings(), baseState(0), reading(5, 8192))
    expect(decision).toMatchObject({outcome: 'none', apply: false, targetMb: 8192})
  })

  it('saturates then caps (1000000000 MB, delta 2, max INT32_MAX)', () => {
    const {decision} = evaluate(settings({maxMb: INT32_MAX, minMb: 2}), baseState(0), reading(2, 1_000_000_000))
    expect(decision).toMatchObject({outcome: 'increase', targetMb: INT32_MAX})
    const d2 = evaluate(settings({maxMb: INT32_MAX - 1, minMb: 2}), baseState(0), reading(2, 1_000_000_000)).decision
    expect(d2).toMatchObject({outcome: 'capped', targetMb: INT32_MAX - 1})
    expect(d2.metadata.calculated_size_mb).toBe(INT32_MAX)
  })

  it.each([
    [2, 1, false],
    [2, 2, true],
    [2, 5, true],
    [5, 4, false],
    [5, 5, true],
    [1, 1, true],
  ])('threshold %i, delta %i -> grow %s (test_threshold_controls_trigger, _respects_threshold_changes)', (threshold, delta, grows) => {
    const {decision} = evaluate(settings({threshold}), baseState(10), reading(10 + delta, 512))
    expect(decision.apply).toBe(grows)
  })
})

describe('shrinkSize (§3.3)', () => {
  it.each([
    [4096, 0.75, 1024, 3072],
    [2048, 0.75, 1024, 1536],
    [1536, 0.75, 1024, 1152],
    [1001, 0.75, 100, 751],
    [1000, 0.75, 100, 750],
    [1003, 0.75, 100, 753],
    [101, 0.01, 1, 2],
    [2560, 0.75, 2048, 2048],
    [1024, 0.75, 1024, 1024],
    [900, 0.75, 1024, 1024],
    [4096, 0.5, 1024, 2048],
    [4096, 0.9, 1024, 3687],
    [4096, 0.1, 1024, 1024],
    [2_147_483_647, 0.99, 1024, 2_126_008_811],
  ])('ceil(%i x %f), floor %i = %i', (cur, f, min, want) => {
    expect(shrinkSize(cur, f, min)).toBe(want)
  })
})

describe('shrink path (§3)', () => {
  const quiet = (s: RuleSettings, state: RuleState, cur: number) => evaluate(s, state, reading(state.baseline!.requested, cur))

  it('shrinks on the cycle where quiet reaches shrink_intervals, with the upstream metadata', () => {
    const s = settings({cooldownSec: 0})
    expect(quiet(s, baseState(7, {quietIntervals: 3}), 4096).decision.outcome).toBe('none')
    const {decision, state} = quiet(s, baseState(7, {quietIntervals: 4}), 4096)
    expect(decision).toMatchObject({outcome: 'decrease', apply: true, targetMb: 3072, reason: 'Sustained low checkpoint activity'})
    expect(decision.metadata).toMatchObject({shrink_factor: 0.75, quiet_intervals: 5, calculated_size_mb: 3072})
    expect(state.quietIntervals).toBe(5)
    expect(recordAdjustment(state, decision, false).quietIntervals).toBe(0)
  })

  it('decays 4096 -> 3072 -> 2304 -> 1728 -> 1296 -> 1024 and stops at the floor (spec 002 quickstart)', () => {
    const s = settings({cooldownSec: 0, maxChangesPerHour: 1000})
    let state = baseState(7)
    let size = 4096
    const sizes = [size]
    for (let i = 1; i <= 40; i++) {
      const ev = step(s, state, reading(7, size, {at: state.baseline!.at + INTERVAL}))
      state = ev.state
      if (ev.decision.apply) sizes.push((size = ev.decision.targetMb))
    }
    expect(sizes).toEqual([4096, 3072, 2304, 1728, 1296, 1024])
  })

  it.each([
    // current, shrink_intervals, factor, min, expected target (spec acceptance examples)
    [2048, 3, 0.75, 1024, 1536],
    [1229, 5, 0.75, 1024, 1024],
    [4096, 5, 0.5, 1024, 2048],
  ])('%i MB after %i quiet intervals, factor %f, min %i -> %i', (cur, n, factor, min, want) => {
    const s = settings({shrinkIntervals: n, shrinkFactor: factor, minMb: min, cooldownSec: 0})
    const {decision} = quiet(s, baseState(0, {quietIntervals: n - 1}), cur)
    expect(decision).toMatchObject({outcome: 'decrease', targetMb: want})
  })

  it('does nothing at or below the floor, and never raises to the floor', () => {
    const s = settings()
    for (const cur of [1024, 900]) {
      const {decision, state} = quiet(s, baseState(0, {quietIntervals: 10}), cur)
      expect(decision).toMatchObject({outcome: 'none', targetMb: cur})
      expect(state.quietIntervals).toBe(11) // counts on, unbounded
    }
  })

  it('counts quiet intervals while shrink is disabled, so re-enabling shrinks at once', () => {
    let state = baseState(0)
    for (let i = 0; i < 6; i++) state = quiet(settings({shrinkEnabled: false}), state, 4096).state
    expect(state.quietIntervals).toBe(6)
    expect(quiet(settings(), state, 4096).decision.outcome).toBe('decrease')
  })

  it('a single requested checkpoint per interval (threshold 2) is quiet', () => {
    const {decision, state} = evaluate(settings(), baseState(0), reading(1, 4096))
    expect(decision.outcome).toBe('none')
    expect(state.quietIntervals).toBe(1)
  })

  it('a rate-limited shrink keeps its quiet count and writes a skipped row', () => {
    const s = settings({cooldownSec: 300})
    const {decision, state} = quiet(s, baseState(0, {quietIntervals: 4, lastAdjustmentAt: T0 - 60_000}), 4096)
    expect(decision).toMatchObject({outcome: 'skipped', action: 'skipped', apply: false, change: 'decrease', targetMb: 3072, reason: 'cooldown active'})
    expect(state.quietIntervals).toBe(5)
  })
})

describe('rate limiting (§9, §13.3)', () => {
  const s = settings()
  it('allows at exactly last + cooldown (test_cooldown_boundary_allows_adjustment)', () => {
    expect(checkRateLimit(s, {...initialState(), lastAdjustmentAt: T0 - 300_000}, T0)).toEqual({allowed: true})
  })
  it('blocks one ms earlier, with the remaining seconds', () => {
    const r = checkRateLimit(s, {...initialState(), lastAdjustmentAt: T0 - 120_000}, T0)
    expect(r).toMatchObject({allowed: false, blockedBy: 'cooldown', reason: 'cooldown active', remainingSec: 180})
    expect(r.allowed === false && r.metadata).toEqual({blocked_by: 'cooldown', cooldown_sec: 300, cooldown_remaining_sec: 180, last_adjustment_time: (T0 - 120_000) / 1000})
  })
  it('a clock that jumped back extends the cooldown (test_clock_skew_extends_cooldown)', () => {
    expect(checkRateLimit(s, {...initialState(), lastAdjustmentAt: T0 + 600_000}, T0)).toMatchObject({allowed: false, remainingSec: 900})
  })
  it('cooldown 0 disables the cooldown; the hourly cap still applies', () => {
    const st = {...initialState(), lastAdjustmentAt: T0 - 1000, changesThisHour: 4, hourWindowStart: T0 - 1000}
    expect(checkRateLimit(settings({cooldownSec: 0}), {...st, changesThisHour: 3}, T0)).toEqual({allowed: true})
    expect(checkRateLimit(settings({cooldownSec: 0}), st, T0)).toMatchObject({allowed: false, blockedBy: 'hourly_limit', reason: 'hourly limit reached'})
  })
  it('hourly: 4 of 4 blocks inside the window, a new window allows', () => {
    const st = {...initialState(), changesThisHour: 4, hourWindowStart: T0 - 3_599_000}
    const r = checkRateLimit(settings({cooldownSec: 0}), st, T0)
    expect(r.allowed === false && r.metadata).toEqual({blocked_by: 'hourly_limit', max_changes_per_hour: 4, changes_this_hour: 4, hour_window_start: (T0 - 3_599_000) / 1000})
    expect(checkRateLimit(settings({cooldownSec: 0}), {...st, hourWindowStart: T0 - 3_600_000}, T0)).toEqual({allowed: true})
  })
  it('max_changes_per_hour = 0 blocks everything (emergency stop)', () => {
    expect(checkRateLimit(settings({maxChangesPerHour: 0}), initialState(), T0)).toMatchObject({
      allowed: false, blockedBy: 'hourly_limit', reason: 'automatic adjustments disabled (max_changes_per_hour = 0)',
    })
  })
  it('the cooldown is checked before the hourly cap', () => {
    const st = {...initialState(), lastAdjustmentAt: T0 - 1000, changesThisHour: 4, hourWindowStart: T0 - 1000}
    expect(checkRateLimit(s, st, T0)).toMatchObject({blockedBy: 'cooldown'})
  })
  it('bookkeeping: a new window starts at the first adjustment after expiry, else counts up', () => {
    const d = evaluate(settings(), baseState(0), reading(5, 1024)).decision
    const a = recordAdjustment(initialState(), d, false)
    expect(a).toMatchObject({lastAdjustmentAt: T0, changesThisHour: 1, hourWindowStart: T0, totalAdjustments: 1})
    const b = recordAdjustment(a, {...d, at: T0 + 10 * MIN}, false)
    expect(b).toMatchObject({changesThisHour: 2, hourWindowStart: T0, totalAdjustments: 2})
    const c = recordAdjustment(b, {...d, at: T0 + 61 * MIN}, false)
    expect(c).toMatchObject({changesThisHour: 1, hourWindowStart: T0 + 61 * MIN})
  })
  it('a rate-limited grow writes skipped with old = current and new = target, and consumes the delta', () => {
    const {decision, state} = evaluate(settings(), baseState(0, {lastAdjustmentAt: T0 - 60_000}), reading(3, 1024))
    expect(decision).toMatchObject({outcome: 'skipped', currentMb: 1024, targetMb: 4096, change: 'increase'})
    expect(state.baseline!.requested).toBe(3)
  })
  it('with defaults, at most 4 changes in any window (SC-006)', () => {
    const sim = simulate(settings({maxMb: INT32_MAX}),
      Array.from({length: 13}, (_, i) => ({at: T0 + i * INTERVAL, requested: i * 2, statsReset: null, maxWalSizeMb: i === 0 ? 2 : null, checkpointTimeoutSec: 300})))
    const applied = sim.decisions.filter((d) => d.apply).map((d) => d.at)
    expect(applied.length).toBe(4)
    expect(sim.decisions.filter((d) => d.outcome === 'skipped').length).toBe(8)
  })
})

describe('dry run (§8)', () => {
  it('records dry_run with would_apply and never applies; grow metadata delta 3, multiplier 4, calculated 4096', () => {
    const {decision} = step(settings({dryRun: true}), baseState(0), reading(3, 1024))
    expect(decision).toMatchObject({outcome: 'dry_run', action: 'dry_run', apply: false, targetMb: 4096, reason: 'threshold exceeded'})
    expect(decision.metadata).toEqual({dry_run: true, would_apply: 'increase', delta: 3, multiplier: 4, calculated_size_mb: 4096})
  })
  it('capped in dry run: would_apply capped, walrus_max_mb 4096 (test_dry_run_capped_decision)', () => {
    const {decision} = step(settings({dryRun: true}), baseState(0), reading(10, 2048))
    expect(decision).toMatchObject({reason: 'capped at walrus.max', targetMb: 4096})
    expect(decision.metadata).toMatchObject({would_apply: 'capped', walrus_max_mb: 4096, calculated_size_mb: 22528})
  })
  it('shrink in dry run: would_apply decrease, factor 0.75, quiet 5, and the quiet count restarts', () => {
    const ev = step(settings({dryRun: true}), baseState(0, {quietIntervals: 4}), reading(0, 4096))
    expect(ev.decision).toMatchObject({outcome: 'dry_run', reason: 'sustained low activity', targetMb: 3072})
    expect(ev.decision.metadata).toMatchObject({would_apply: 'decrease', shrink_factor: 0.75, quiet_intervals: 5})
    expect(ev.state.quietIntervals).toBe(0)
  })
  it('counts against the hourly cap and (fixed) the cooldown, but not the applied total', () => {
    const ev = step(settings({dryRun: true}), baseState(0), reading(3, 1024))
    expect(ev.state).toMatchObject({changesThisHour: 1, lastAdjustmentAt: T0, totalAdjustments: 0})
    const next = evaluate(settings({dryRun: true}), {...ev.state, baseline: {...ev.state.baseline!, at: T0 + MIN}}, reading(6, 1024, {at: T0 + 2 * MIN}))
    expect(next.decision).toMatchObject({outcome: 'skipped', reason: 'cooldown active'})
  })
})

describe('baselines and fixed defects (§2.4, §2.14, §7.5, §16)', () => {
  it('the first reading is a baseline, and the first decision comes one interval later', () => {
    const sim = simulate(settings(), [
      {at: T0, requested: 50, statsReset: null, maxWalSizeMb: 1024, checkpointTimeoutSec: 300},
      {at: T0 + INTERVAL, requested: 53, statsReset: null, maxWalSizeMb: null, checkpointTimeoutSec: 300},
    ])
    expect(sim.decisions.map((d) => d.outcome)).toEqual(['baseline', 'increase'])
    expect(sim.decisions[1]).toMatchObject({delta: 3, targetMb: 4096})
  })
  it('a stats reset (stats_reset moved) takes a new baseline instead of a quiet interval', () => {
    const st = baseState(40, {quietIntervals: 4})
    st.baseline!.statsReset = '2026-01-01T00:00:00Z'
    const {decision, state} = evaluate(settings({cooldownSec: 0}), st, reading(45, 4096, {statsReset: '2026-01-01T00:03:00Z'}))
    expect(decision).toMatchObject({outcome: 'baseline', apply: false})
    expect(decision.reason).toMatch(/statistics were reset/)
    expect(state.quietIntervals).toBe(4) // not counted: would otherwise have shrunk
    expect(state.baseline).toMatchObject({requested: 45, statsReset: '2026-01-01T00:03:00Z'})
  })
  it('the same stats_reset written differently is not a reset', () => {
    const st = baseState(40)
    st.baseline!.statsReset = '2026-01-01 00:00:00+00'
    expect(evaluate(settings(), st, reading(43, 1024, {statsReset: '2026-01-01T00:00:00.000Z'})).decision.outcome).toBe('increase')
  })
  it('a negative delta (counter went back) takes a new baseline', () => {
    const {decision, state} = evaluate(settings({cooldownSec: 0}), baseState(40, {quietIntervals: 4}), reading(2, 4096))
    expect(decision.outcome).toBe('baseline')
    expect(state.quietIntervals).toBe(4)
  })
  it('a gap much longer than the interval takes a new baseline instead of one huge delta', () => {
    const st = baseState(0, {}, T0)
    st.baseline!.at = T0 - 3 * INTERVAL
    const {decision} = evaluate(settings(), st, reading(500, 1024))
    expect(decision).toMatchObject({outcome: 'baseline', apply: false})
    expect(decision.reason).toMatch(/gap of 15min/)
    // within 2x the interval it still counts
    st.baseline!.at = T0 - 2 * INTERVAL
    expect(evaluate(settings(), st, reading(500, 1024)).decision.outcome).toBe('capped')
  })
  it('after a reset of the state (walrus reset) the next reading is a baseline, not the whole counter', () => {
    expect(evaluate(settings(), initialState(), reading(100_000, 1024)).decision.outcome).toBe('baseline')
  })
  it('unavailable statistics skip the cycle and keep the baseline', () => {
    const st = baseState(5)
    const ev = evaluate(settings(), st, reading(null, 1024))
    expect(ev.decision.outcome).toBe('unavailable')
    expect(ev.state).toBe(st)
  })
})

describe('settings validation (bad input)', () => {
  it('has the pg_walrus defaults', () => {
    expect(validateSettings()).toEqual({...DEFAULT_SETTINGS})
    expect(DEFAULT_SETTINGS).toMatchObject({threshold: 2, maxMb: 4096, shrinkFactor: 0.75, shrinkIntervals: 5, minMb: 1024, cooldownSec: 300, maxChangesPerHour: 4})
  })
  it.each([
    [{threshold: 0}, /--threshold.*1 to 1000/],
    [{threshold: 1001}, /--threshold/],
    [{threshold: 1.5}, /--threshold/],
    [{maxMb: 1}, /--max/],
    [{maxMb: 512, minMb: 1024}, /--max \(512 MB\) is below --min \(1024 MB\)/],
    [{shrinkFactor: 1}, /--shrink-factor/],
    [{shrinkFactor: 0}, /--shrink-factor/],
    [{shrinkIntervals: 0}, /--shrink-intervals/],
    [{cooldownSec: -1}, /--cooldown/],
    [{cooldownSec: 86_401}, /--cooldown/],
    [{maxChangesPerHour: 1001}, /--max-changes-per-hour/],
  ])('%o is refused', (input, msg) => {
    expect(() => validateSettings(input as Partial<RuleSettings>)).toThrow(msg)
  })
})

describe('simulate', () => {
  it('replays the checked PostgreSQL 15 pgbench scenario (§14.2): 32 MB, delta 32 -> 1056 MB', () => {
    const samples = parseSamples(
      [
        '{"time":"2026-01-01T00:00:00Z","requested":12,"stats_reset":null,"max_wal_size_mb":32}',
        '{"time":"2026-01-01T00:00:30Z","requested":44,"stats_reset":null}',
      ].join('\n'),
    )
    const sim = simulate(settings({minMb: 32}), samples, {intervalMs: 30_000})
    expect(sim.decisions[1]).toMatchObject({outcome: 'increase', delta: 32, targetMb: 1056})
    expect(sim.finalMb).toBe(1056)
  })
  it('carries the simulated size when a reading omits it, and uses the given size otherwise', () => {
    const base = {statsReset: null, checkpointTimeoutSec: 300}
    const sim = simulate(settings({cooldownSec: 0}), [
      {...base, at: T0, requested: 0, maxWalSizeMb: 512},
      {...base, at: T0 + INTERVAL, requested: 2, maxWalSizeMb: null},
      {...base, at: T0 + 2 * INTERVAL, requested: 4, maxWalSizeMb: null},
      {...base, at: T0 + 3 * INTERVAL, requested: 9, maxWalSizeMb: 2048},
    ])
    expect(sim.decisions.map((d) => [d.outcome, d.currentMb, d.targetMb])).toEqual([
      ['baseline', 512, 512],
      ['increase', 512, 1536],
      ['capped', 1536, 4096],
      ['capped', 2048, 4096],
    ])
  })
})
