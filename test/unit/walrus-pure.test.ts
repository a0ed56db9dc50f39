// The other pure walrus pieces: durations, sizes, the readings file, tune's advice and confidence
// (reference §7.3.1), the version switch, and the one-line renderings.

import {describe, expect, it} from 'vitest'
import {formatDuration, parseDuration} from '../../src/lib/duration.js'
import {advise, confidence, type TuneFacts} from '../../src/lib/walrus/advice.js'
import {settingsFromFlags} from '../../src/lib/walrus/flags.js'
import {eventText} from '../../src/lib/walrus/render.js'
import {evaluate, initialState, validateSettings} from '../../src/lib/walrus/rule.js'
import {formatSample, parseSamples} from '../../src/lib/walrus/samples.js'
import {alterBlockedReason, checkpointStats, cycleSql, stateFromRow, type StateRow} from '../../src/lib/walrus/server.js'
import {describeMb, parseSizeMb} from '../../src/lib/walrus/size.js'

describe('parseDuration', () => {
  it.each([
    ['30s', 30_000],
    ['5min', 300_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['1h 30min', 5_400_000],
    ['250ms', 250],
    ['1.5s', 1500],
    ['2d', 172_800_000],
    ['300', 300_000],
    ['0', 0],
    [' 10 seconds ', 10_000],
  ])('%s = %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms)
  })
  it.each(['', 'soon', '5 parsecs', '-5s', 's', '5s10', '1e3s'])('refuses %j with a UsageError naming the flag', (text) => {
    expect(() => parseDuration(text, '--interval')).toThrow(/--interval: .* is not a duration/)
    try {
      parseDuration(text, '--interval')
    } catch (err) {
      expect((err as {exitCode: number}).exitCode).toBe(2)
    }
  })
  it('formats back', () => {
    expect([300_000, 90_000, 1500, 250, 3_600_000].map(formatDuration)).toEqual(['5min', '1min30s', '1.5s', '250ms', '1h'])
  })
})

describe('parseSizeMb', () => {
  it.each([
    ['4096', 4096],
    ['512MB', 512],
    ['4GB', 4096],
    ['4gb', 4096],
    ['1TB', 1_048_576],
    ['65536kB', 64],
    ['2', 2],
    ['2147483647', 2_147_483_647],
  ])('%s = %i MB', (t, mb) => expect(parseSizeMb(t)).toBe(mb))
  it.each(['', 'lots', '1', '1000kB', '2147483648', '-4GB', '4 PB'])('refuses %j', (t) => {
    expect(() => parseSizeMb(t, '--max')).toThrow(/--max/)
  })
  it('describes', () => {
    expect(describeMb(4096)).toBe('4096 MB (4 GB)')
    expect(describeMb(1536)).toBe('1536 MB (1.5 GB)')
    expect(describeMb(32)).toBe('32 MB')
  })
})

describe('readings file', () => {
  it('round-trips what watch --record writes', () => {
    const s = {at: Date.parse('2026-01-01T00:05:00Z'), requested: 14, statsReset: '2026-01-01T00:00:00.000Z', maxWalSizeMb: 1024, checkpointTimeoutSec: 300}
    expect(parseSamples(formatSample(s))).toEqual([s])
  })
  it('reads a JSON array, epoch seconds, comments and CSV with quoted cells', () => {
    expect(parseSamples('[{"time": 1767225600, "requested": 1, "max_wal_size_mb": 64}]')[0]).toMatchObject({at: 1_767_225_600_000, requested: 1})
    const csv = '# recorded by hand\ntime,requested,stats_reset,max_wal_size_mb\n"2026-01-01T00:00:00Z",3,,64\n2026-01-01T00:05:00Z,null,,\n'
    expect(parseSamples(csv)).toEqual([
      {at: Date.parse('2026-01-01T00:00:00Z'), requested: 3, statsReset: null, maxWalSizeMb: 64, checkpointTimeoutSec: null},
      {at: Date.parse('2026-01-01T00:05:00Z'), requested: null, statsReset: null, maxWalSizeMb: null, checkpointTimeoutSec: null},
    ])
  })
  it.each([
    ['', /no readings/],
    ['{"time":"2026-01-01T00:00:00Z","requested":1}', /first reading must give max_wal_size_mb/],
    ['{"time":"2026-01-01T00:00:00Z","requested":-1,"max_wal_size_mb":64}', /line 1: "requested" must be an integer/],
    ['{"time":"2026-01-01T00:00:00Z","requested":1,"max_wal_size_mb":1}', /"max_wal_size_mb" must be an integer from 2/],
    ['{"time":"2026-01-01T00:00:00Z","requested":1,"max_wal_size_mb":64,"extra":1}', /unknown field\(s\) "extra"/],
    ['{"time":"2026-01-01T00:00:00Z","requested":1,"max_wal_size_mb":64}\n{bad json', /line 2: not valid JSON/],
    ['{"time":"2026-01-01T00:05:00Z","requested":1,"max_wal_size_mb":64}\n{"time":"2026-01-01T00:00:00Z","requested":2}', /earlier than reading 1/],
    ['a,b\n1,2', /CSV header naming/],
    ['time,requested\n2026-01-01T00:00:00Z', /1 columns, the header has 2/],
    ['{"time":"2026-01-01T00:00:00Z","requested":1,"stats_reset":5,"max_wal_size_mb":64}', /"stats_reset" must be ISO-8601/],
  ])('refuses %j', (text, msg) => {
    expect(() => parseSamples(text, 'f')).toThrow(msg)
  })
})

describe('confidence (§7.3.1)', () => {
  it.each([
    [{requested: 5, quietIntervals: 0, baselineRequested: 0}, 50],
    [{requested: 15, quietIntervals: 0, baselineRequested: 0}, 70],
    [{requested: 5, quietIntervals: 3, baselineRequested: 0}, 65],
    [{requested: 5, quietIntervals: 0, baselineRequested: 100}, 65],
    [{requested: 50, quietIntervals: 5, baselineRequested: 100}, 100],
    [{requested: -1, quietIntervals: 0, baselineRequested: 0}, 0],
  ])('%o -> %i', (o, want) => expect(confidence(o)).toBe(want))
})

describe('tune advice', () => {
  const T = Date.parse('2026-01-01T12:00:00Z')
  const facts = (o: Partial<TuneFacts>): TuneFacts => ({
    now: T, currentMb: 1024, source: 'default', requested: 0, timed: 0, statsResetAt: T - 3_600_000, checkpointTimeoutSec: 300,
    completionTarget: 0.9, walBytesPerSec: null, walRateSource: null, quietIntervals: 0, baselineRequested: 0, ...o,
  })
  const s = validateSettings()
  it('grows by the rule when checkpoints are forced at the threshold per interval (36 in 1 h = 3 per 5 min)', () => {
    const a = advise(facts({requested: 36, timed: 0}), s)
    expect(a).toMatchObject({action: 'increase', change: 'increase', recommendedMb: 4096, requestedPerInterval: 3, intervals: 12})
  })
  it('takes the WAL-rate estimate when it is larger, and caps at --max', () => {
    // 20 MB/s x 300 s x 1.9 x 1.1 = 12540 MB
    const a = advise(facts({requested: 36, walBytesPerSec: 20 * 1024 * 1024, walRateSource: 'test'}), s)
    expect(a.neededMb).toBe(12540)
    expect(a).toMatchObject({action: 'increase', change: 'capped', recommendedMb: 4096})
    expect(a.reasons.join('\n')).toMatch(/capped from 12540 MB at the maximum 4096 MB/)
  })
  it('keeps the size below the threshold without a WAL rate', () => {
    expect(advise(facts({requested: 6, timed: 6}), s)).toMatchObject({action: 'none', recommendedMb: 1024})
  })
  it('never lowers on the grow path', () => {
    expect(advise(facts({requested: 36, currentMb: 8192}), s)).toMatchObject({action: 'none', recommendedMb: 8192})
  })
  it('suggests one shrink step when quiet and the WAL rate needs far less, never below --min', () => {
    const a = advise(facts({currentMb: 8192, timed: 12, walBytesPerSec: 0.5 * 1024 * 1024, walRateSource: 'test'}), validateSettings({maxMb: 16384}))
    expect(a).toMatchObject({action: 'decrease', recommendedMb: 6144})
    const b = advise(facts({currentMb: 1100, timed: 12, walBytesPerSec: 1024, walRateSource: 'test'}), s)
    expect(b).toMatchObject({action: 'decrease', recommendedMb: 1024})
    expect(advise(facts({currentMb: 1024, timed: 12, walBytesPerSec: 1024, walRateSource: 'test'}), s)).toMatchObject({action: 'none'})
  })
  it('without a reset time it falls back on the share of requested checkpoints', () => {
    expect(advise(facts({statsResetAt: null, requested: 30, timed: 2}), s)).toMatchObject({action: 'increase', intervals: null})
    expect(advise(facts({statsResetAt: null, requested: 1, timed: 30}), s)).toMatchObject({action: 'none'})
  })
})

describe('version switch and server helpers', () => {
  it('reads pg_stat_bgwriter.checkpoints_req on 15-16 and pg_stat_checkpointer.num_requested on 17+', () => {
    expect(checkpointStats(150018)).toMatchObject({view: 'pg_stat_bgwriter', requested: 'checkpoints_req', timed: 'checkpoints_timed', resetTarget: 'bgwriter'})
    expect(checkpointStats(169999).view).toBe('pg_stat_bgwriter')
    expect(checkpointStats(170000)).toMatchObject({view: 'pg_stat_checkpointer', requested: 'num_requested', timed: 'num_timed', resetTarget: 'checkpointer'})
    expect(cycleSql(180001, false)).toMatch(/FROM pg_stat_checkpointer s/)
    expect(cycleSql(160001, true)).toMatch(/s\.checkpoints_req::bigint[\s\S]*steep_repl\.walrus_state[\s\S]*FROM pg_stat_bgwriter s/)
  })
  it('knows when ALTER SYSTEM cannot take effect', () => {
    expect(alterBlockedReason('command line', null)).toMatch(/command line/)
    expect(alterBlockedReason('configuration file', false)).toMatch(/allow_alter_system = off/)
    expect(alterBlockedReason('configuration file', true)).toBeNull()
    expect(alterBlockedReason('default', null)).toBeNull()
  })
  it('a dry-run rate-limit clock does not bind a real run (and the baseline carries over)', () => {
    const row: StateRow = {
      generation: '3', baseline_requested: '40', baseline_stats_reset: null, baseline_at: new Date(1000), quiet_intervals: 2,
      last_adjustment_at: new Date(5000), changes_this_hour: 3, hour_window_start: new Date(4000), total_adjustments: '7', dry_run: true, watcher: null, updated_at: new Date(),
    }
    expect(stateFromRow(row, true)).toMatchObject({baseline: {requested: 40, at: 1000}, quietIntervals: 2, lastAdjustmentAt: 5000, changesThisHour: 3, totalAdjustments: 7})
    expect(stateFromRow(row, false)).toMatchObject({baseline: {requested: 40}, lastAdjustmentAt: null, changesThisHour: 0, hourWindowStart: null})
  })
})

describe('flags and rendering', () => {
  it('turns flag text into validated settings', () => {
    expect(settingsFromFlags({threshold: 3, max: '16GB', min: '2GB', 'shrink-factor': '0.5', cooldown: '10min', shrink: false, 'dry-run': true})).toMatchObject({
      threshold: 3, maxMb: 16_384, minMb: 2048, shrinkFactor: 0.5, cooldownSec: 600, shrinkEnabled: false, dryRun: true,
    })
    expect(() => settingsFromFlags({'shrink-factor': 'abc'})).toThrow(/--shrink-factor/)
    expect(() => settingsFromFlags({cooldown: '1.5s'})).toThrow(/--cooldown/)
  })
  it('renders events as single lines', () => {
    const text = eventText({event: 'standby', holders: [{pid: 42, database: 'app', application_name: 'steep-repl walrus watch', client_addr: '10.0.0.1', backend_start: null, usename: 'x'}]})
    expect(text).toBe('standby: another watcher acts (pid 42 on database app "steep-repl walrus watch" from 10.0.0.1); waiting to take over')
    expect(eventText({event: 'disconnected', error: 'boom', retryInMs: 2000})).toBe('connection lost (boom); reconnecting in 2s')
    expect(eventText({event: 'stopped', cycles: 1, adjustments: 2})).toBe('stopped after 1 cycle, 2 changes applied')
    const d = evaluate(validateSettings(), {...initialState(), baseline: {requested: 10, statsReset: null, at: Date.parse('2026-01-01T00:00:00Z')}}, {
      at: Date.parse('2026-01-01T00:05:00Z'), requested: 13, statsReset: null, maxWalSizeMb: 1024, intervalMs: 300_000,
    }).decision
    const base = {event: 'decision' as const, decision: d, historyId: '1', notified: true, queries: 5, intervalMs: 300_000}
    expect(eventText({...base, mode: 'apply', applied: true})).toBe('2026-01-01T00:05:00.000Z increase 1024 MB -> 4096 MB delta=3: Forced checkpoints exceeded threshold [applied]')
    expect(eventText({...base, mode: 'apply', applied: false, problem: 'ALTER SYSTEM failed: no'})).toMatch(/\[NOT applied: ALTER SYSTEM failed: no\]$/)
    const dry = {...d, outcome: 'dry_run' as const, action: 'dry_run' as const, apply: false, reason: 'threshold exceeded'}
    expect(eventText({...base, decision: dry, mode: 'recommend', applied: false})).toBe('2026-01-01T00:05:00.000Z dry_run (increase) 1024 MB -> 4096 MB delta=3: threshold exceeded [recommendation]')
  })
})
