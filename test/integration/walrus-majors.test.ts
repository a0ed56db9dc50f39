// walrus watch on each supported major, against its own statistics view
// (pg_stat_bgwriter.checkpoints_req on 15-16, pg_stat_checkpointer.num_requested on 17+): bulk
// writes on a 32 MB max_wal_size force real checkpoints, and the watcher grows max_wal_size on the
// server, records the history row, sends the NOTIFY and exposes the metric.

import {appendFileSync} from 'node:fs'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {installedMajors, type PgMajor} from '../../src/lib/embedded/server.js'
import {startMetrics, type WalrusMetrics} from '../../src/lib/walrus/metrics.js'
import {checkpointStats} from '../../src/lib/walrus/server.js'
import {CHANNEL} from '../../src/lib/walrus/store.js'
import {sql} from '../helpers/pg.js'
import type {ServerHandle} from '../helpers/servers.js'
import {checkpoints, listen, showMaxWalSizeMb, startWatcher, waitFor, walrusServer} from './walrus-support.js'

const majors = ([15, 16, 17, 18] as PgMajor[]).filter((m) => installedMajors().includes(m))

describe.each(majors)('walrus watch on PostgreSQL %i', (major) => {
  let h: ServerHandle
  let url: string
  beforeAll(async () => {
    h = await walrusServer(major)
    url = h.url()
  })
  afterAll(async () => {
    await h?.stop()
  })

  it(`reads ${major >= 17 ? 'pg_stat_checkpointer.num_requested' : 'pg_stat_bgwriter.checkpoints_req'} and grows max_wal_size after forced checkpoints`, async () => {
    const [{v}] = await sql(url, `SELECT current_setting('server_version_num')::int AS v`)
    const src = checkpointStats(v)
    expect(src.view).toBe(major >= 17 ? 'pg_stat_checkpointer' : 'pg_stat_bgwriter')
    const before = Number((await sql(url, `SELECT ${src.requested} AS n FROM ${src.view}`))[0].n)
    expect(await showMaxWalSizeMb(url)).toBe(32)

    const notes = await listen(url, CHANNEL)
    let metrics: WalrusMetrics | undefined
    try {
      metrics = await startMetrics({port: 0, host: '127.0.0.1'})
      const w = startWatcher(url, {}, {intervalMs: 800, metrics})
      await waitFor('the baseline', () => w.decisions()[0])
      expect(w.decisions()[0]!.decision.outcome).toBe('baseline')
      // ~100 MB of WAL through a 32 MB max_wal_size: checkpoints requested by WAL volume ("checkpoint starting: wal")
      await sql(url, `CREATE TABLE bulk (id int, pad text); INSERT INTO bulk SELECT g, repeat('x', 1000) FROM generate_series(1, 100000) g`)
      const grow = await waitFor('a grow decision', () => w.decisions().find((d) => d.applied))
      const after = Number((await sql(url, `SELECT ${src.requested} AS n FROM ${src.view}`))[0].n)
      expect(after - before).toBeGreaterThanOrEqual(2)
      // a statistics reset (this major's target) is a new baseline, not a quiet interval
      await sql(url, `SELECT pg_stat_reset_shared($1)`, [src.resetTarget])
      const rebased = await waitFor('the re-baseline', () => w.decisions().find((x) => x.decision.outcome === 'baseline' && /statistics were reset/.test(x.decision.reason)))
      expect(rebased.decision.requested).toBeLessThan(after)
      const summary = await w.stop()

      const d = grow.decision
      expect(['increase', 'capped']).toContain(d.outcome)
      expect(d.currentMb).toBe(32)
      expect(d.targetMb).toBe(Math.min(1024, 32 * (d.delta! + 1)))
      expect(await showMaxWalSizeMb(url)).toBeGreaterThanOrEqual(d.targetMb)
      expect(summary.adjustments).toBeGreaterThanOrEqual(1)
      expect(summary.maxQueriesPerCycle).toBeLessThanOrEqual(5)

      const rows = await sql(url, `SELECT * FROM steep_repl.walrus_history WHERE id = $1`, [grow.historyId])
      expect(rows[0]).toMatchObject({action: d.outcome, old_size_mb: 32, new_size_mb: d.targetMb, forced_checkpoints: String(d.delta), source: 'watch'})
      expect(rows[0].metadata).toMatchObject({delta: d.delta, multiplier: d.delta! + 1})

      await waitFor('the NOTIFY', () => notes.payloads.find((p) => String(p.id) === grow.historyId))
      expect(notes.payloads.find((p) => String(p.id) === grow.historyId)).toMatchObject({event: 'decision', action: d.outcome, applied: true, old_size_mb: 32, new_size_mb: d.targetMb})

      const text = await (await fetch(`http://127.0.0.1:${metrics.port}/metrics`)).text()
      expect(text).toMatch(/^walrus_increases_total [1-9]/m)
      expect(text).toMatch(new RegExp(`^walrus_max_wal_size_bytes ${(await showMaxWalSizeMb(url)) * 1024 * 1024}$`, 'm'))
      expect(text).toMatch(/^walrus_last_decision\{action="(increase|capped)",change="(increase|capped)"\} 1$/m)
      expect(text).toMatch(/^walrus_forced_checkpoints_total [1-9]/m)
    } finally {
      await metrics?.close()
      await notes.close()
    }
  })
  if (major >= 17) it('with ALTER SYSTEM disabled mid-run (allow_alter_system = off) it reports the refused change, leaves max_wal_size alone and recommends', async () => {
    const sizeBefore = await showMaxWalSizeMb(url)
    const w = startWatcher(url, {maxMb: 1_000_000, maxChangesPerHour: 1000}, {intervalMs: 500})
    try {
      await waitFor('the baseline', () => w.decisions()[0])
      appendFileSync(path.join(h.info.dataDir, 'data', 'postgresql.conf'), '\nallow_alter_system = off\n')
      await sql(url, 'SELECT pg_reload_conf()')
      await waitFor('allow_alter_system off', async () => (await sql(url, 'SHOW allow_alter_system'))[0].allow_alter_system === 'off')
      await checkpoints(url, 3)
      const refused = await waitFor('the refused change', () => w.decisions().find((d) => d.problem))
      expect(refused.applied).toBe(false)
      expect(refused.problem).toMatch(/ALTER SYSTEM failed/)
      expect(w.events.some((e) => e.event === 'fallback')).toBe(true)
      const n = w.decisions().length
      await checkpoints(url, 3)
      const rec = await waitFor('a recommendation', () => w.decisions().slice(n).find((d) => d.decision.action))
      expect(rec).toMatchObject({mode: 'recommend', applied: false})
      expect(rec.decision.action).toBe('dry_run')
      const summary = await w.stop()
      expect(summary.mode).toBe('recommend')
      expect(await showMaxWalSizeMb(url)).toBe(sizeBefore)
      const [skip] = await sql(url, `SELECT action, metadata FROM steep_repl.walrus_history WHERE id = $1`, [refused.historyId])
      expect(skip).toMatchObject({action: 'skipped', metadata: {blocked_by: 'not_effective', would_apply: 'increase'}})
      const [dry] = await sql(url, `SELECT action, metadata FROM steep_repl.walrus_history WHERE id = $1`, [rec.historyId])
      expect(dry).toMatchObject({action: 'dry_run', metadata: {recommend_only: true}})
    } finally {
      await w.stop()
    }
  })
})
