// The walrus commands as users run them, on a dedicated server (they ALTER SYSTEM): bad input and
// exit codes, dry run, SIGTERM, two watchers, shrink, reconnection, simulate, status, history,
// reset, tune, and the refusal on a standby (last: it turns the server into one).

import {type ChildProcess, spawn} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {install} from '../../src/lib/install/migrations.js'
import {validateSettings} from '../../src/lib/walrus/rule.js'
import {readStatus} from '../../src/lib/walrus/status.js'
import {runTune} from '../../src/lib/walrus/tune.js'
import {lockHolders, resetState} from '../../src/lib/walrus/store.js'
import {BIN, runCli} from '../helpers/cli.js'
import {adminClient, sql, withDatabase} from '../helpers/pg.js'
import type {ServerHandle} from '../helpers/servers.js'
import {checkpoints, showMaxWalSizeMb, startWatcher, waitFor, walrusServer} from './walrus-support.js'

interface Spawned {
  child: ChildProcess
  lines: string[]
  stdout: () => string
  exit: Promise<number>
}

function spawnCli(args: string[]): Spawned {
  const env: Record<string, string | undefined> = {...process.env, CI: '1', NO_COLOR: '1', XDG_CONFIG_HOME: '/nonexistent-steep-test-config'}
  for (const k of Object.keys(env)) if (k.startsWith('PG')) delete env[k]
  const child = spawn(process.execPath, [BIN, ...args], {env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe']})
  const lines: string[] = []
  let out = ''
  let buf = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => {
    buf += d
    const parts = buf.split('\n')
    buf = parts.pop()!
    lines.push(...parts)
  })
  const exit = new Promise<number>((resolve) => child.on('close', (code, sig) => resolve(code ?? (sig ? 128 : 1))))
  return {child, lines, stdout: () => out, exit}
}

describe('walrus commands', () => {
  let h: ServerHandle
  let url: string
  beforeAll(async () => {
    h = await walrusServer()
    url = h.url()
  })
  afterAll(async () => {
    await h?.stop()
  })

  async function autoConf(): Promise<string> {
    return JSON.stringify(await sql(url, `SELECT name, setting FROM pg_file_settings WHERE sourcefile LIKE '%auto.conf' ORDER BY seqno`))
  }

  it('refuses bad input with exit 2 and an unreachable server with exit 6, changing nothing', async () => {
    const conf = await autoConf()
    const bad = [
      [['walrus', 'watch', '-d', url, '--threshold', '0'], /--threshold: threshold must be an integer from 1 to 1000, got 0/],
      [['walrus', 'watch', '-d', url, '--max', '512MB', '--min', '1GB'], /--max \(512 MB\) is below --min \(1024 MB\)/],
      [['walrus', 'watch', '-d', url, '--interval', 'soon'], /--interval: "soon" is not a duration/],
    ] as const
    for (const [args, msg] of bad) {
      const r = await runCli([...args])
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.stderr).toMatch(msg)
    }
    const r = await runCli(['walrus', 'watch', '-d', 'postgres://postgres@127.0.0.1:1/postgres', '--json'])
    expect(r.code).toBe(6)
    expect(r.json().error).toMatchObject({code: 'connection', exitCode: 6})
    expect(await autoConf()).toBe(conf)
  })

  it('refuses a role that may not ALTER SYSTEM, with the GRANT to run, and leaves the configuration alone', async () => {
    const role = `walrus_weak_${Date.now()}`
    await sql(url, `CREATE ROLE ${role} LOGIN PASSWORD 'weak-pass-123'`)
    try {
      const u = new URL(url)
      u.username = role
      u.password = 'weak-pass-123'
      const conf = await autoConf()
      const size = await showMaxWalSizeMb(url)
      const w = await runCli(['walrus', 'watch', '-d', u.toString()])
      expect(w.code).toBe(1)
      expect(w.stderr).toMatch(new RegExp(`role "${role}" may not change max_wal_size`))
      expect(w.stderr).toMatch(/GRANT ALTER SYSTEM ON PARAMETER max_wal_size/)
      expect(w.stderr).not.toContain('weak-pass-123')
      const t = await runCli(['walrus', 'tune', '-d', u.toString(), '--apply', '--json'])
      expect(t.code).toBe(1)
      expect(t.json().error.code).toBe('permission')
      expect(await autoConf()).toBe(conf)
      expect(await showMaxWalSizeMb(url)).toBe(size)
    } finally {
      await sql(url, `DROP ROLE ${role}`)
    }
  })

  it('watch --dry-run --json: JSON lines on stderr, a dry_run row, the server untouched, and SIGTERM stops it cleanly', async () => {
    const conf = await autoConf()
    const size = await showMaxWalSizeMb(url)
    const rec = path.join(tmpdir(), `walrus-rec-${process.pid}-${Date.now()}.jsonl`)
    const p = spawnCli(['walrus', 'watch', '-d', url, '--dry-run', '--json', '--interval', '600ms', '--cooldown', '0', '--min', '16MB', '--record', rec, '--metrics-port', '0'])
    try {
      await waitFor('the first decision', () => p.lines.some((l) => l.includes('"event":"decision"')))
      await checkpoints(url, 3)
      const line = await waitFor('a dry_run decision', () => p.lines.find((l) => l.includes('"outcome":"dry_run"')))
      const ev = JSON.parse(line)
      expect(ev).toMatchObject({event: 'decision', action: 'dry_run', change: 'increase', applied: false, current_mb: size, target_mb: size * 4, delta: 3, mode: 'dry_run'})
      for (const l of p.lines) expect(() => JSON.parse(l)).not.toThrow()
      const [row] = await sql(url, `SELECT action, old_size_mb, new_size_mb, forced_checkpoints, metadata FROM steep_repl.walrus_history WHERE id = $1`, [ev.history_id])
      expect(row).toMatchObject({action: 'dry_run', old_size_mb: size, new_size_mb: size * 4, forced_checkpoints: '3', metadata: {dry_run: true, would_apply: 'increase'}})
      expect((await lockHolders(await adminClientEnd(url))).length).toBe(1)
      const port = JSON.parse(p.lines.find((l) => l.includes('"event":"metrics"'))!).port
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
      expect(metrics).toMatch(/^walrus_decisions_total\{outcome="dry_run"\} 1$/m)
      expect(metrics).toMatch(/^walrus_acting 1$/m)
      expect(metrics).toMatch(new RegExp(`^walrus_max_wal_size_bytes ${size * 1024 * 1024}$`, 'm'))
      p.child.kill('SIGTERM')
      expect(await p.exit).toBe(0)
      const summary = JSON.parse(p.stdout())
      expect(summary).toMatchObject({mode: 'dry_run', adjustments: 0})
      expect(summary.cycles).toBeGreaterThanOrEqual(2)
      expect(p.lines.at(-1)).toMatch(/"event":"stopped"/)
      expect(await showMaxWalSizeMb(url)).toBe(size)
      expect(await autoConf()).toBe(conf)
      expect((await lockHolders(await adminClientEnd(url))).length).toBe(0)
      // the recorded readings replay through simulate to the same decision
      const sim = await runCli(['walrus', 'simulate', '--samples', rec, '--dry-run', '--cooldown', '0', '--min', '16MB', '--interval', '600ms', '--json'])
      expect(sim.code).toBe(0)
      expect(sim.json().decisions.map((d: {outcome: string}) => d.outcome)).toContain('dry_run')
      expect(sim.json().decisions.find((d: {outcome: string}) => d.outcome === 'dry_run')).toMatchObject({delta: 3, target_mb: size * 4})
    } finally {
      p.child.kill('SIGKILL')
    }
  })

  it('two watchers (on two databases of the server): one acts, the other waits and takes over when it stops or dies', async () => {
    const other = withDatabase(url, 'walrus_second')
    await sql(url, 'CREATE DATABASE walrus_second')
    const c = await adminClient(other)
    await install(c)
    await c.end()
    const a = startWatcher(url, {dryRun: true})
    await waitFor('A acting', () => a.events.some((e) => e.event === 'acting'))
    const b = startWatcher(other, {dryRun: true})
    try {
      const standby = await waitFor('B standby', () => b.events.find((e) => e.event === 'standby'))
      expect(standby.event === 'standby' && standby.holders[0]!.database).toBe(new URL(url).pathname.slice(1))
      await new Promise((r) => setTimeout(r, 1200))
      expect(b.decisions()).toHaveLength(0)
      expect(a.decisions().length).toBeGreaterThanOrEqual(2)
      await a.stop()
      await waitFor('B takes over', () => b.events.some((e) => e.event === 'acting'), 10_000)
      await waitFor('B decides', () => b.decisions().length > 0)
    } finally {
      await a.stop()
      await b.stop()
    }
    // a watcher that dies (SIGKILL, no clean stop) loses the lock with its session: the standby takes over
    const p = spawnCli(['walrus', 'watch', '-d', url, '--dry-run', '--interval', '500ms'])
    await waitFor('the CLI acting', () => p.lines.includes('acting: this watcher holds the walrus lock')).catch((err) => {
      p.child.kill('SIGKILL')
      throw err
    })
    const d = startWatcher(other, {dryRun: true})
    try {
      await waitFor('D standby', () => d.events.some((e) => e.event === 'standby'))
      expect(d.decisions()).toHaveLength(0)
      p.child.kill('SIGKILL')
      await p.exit
      await waitFor('D takes over', () => d.events.some((e) => e.event === 'acting'), 10_000)
      await waitFor('D decides', () => d.decisions().length > 0)
    } finally {
      p.child.kill('SIGKILL')
      await d.stop()
    }
  })

  it('shrinks after --shrink-intervals quiet intervals, never below --min', async () => {
    await sql(url, `ALTER SYSTEM SET max_wal_size = '64MB'`)
    await sql(url, 'SELECT pg_reload_conf()')
    await waitFor('64MB', async () => (await showMaxWalSizeMb(url)) === 64)
    const c = await adminClient(url)
    await resetState(c, {history: false}) // the quiet count persists across watchers: start from zero
    await c.end()
    const w = startWatcher(url, {shrinkIntervals: 2, minMb: 40, maxChangesPerHour: 1000})
    try {
      const d = await waitFor('a decrease', () => w.decisions().find((x) => x.applied), 15_000)
      expect(d.decision).toMatchObject({outcome: 'decrease', currentMb: 64, targetMb: 48, quietIntervals: 2})
      await waitFor('the floor', () => w.decisions().find((x) => x.applied && x.decision.targetMb === 40), 15_000)
      await new Promise((r) => setTimeout(r, 1500))
    } finally {
      await w.stop()
    }
    expect(await showMaxWalSizeMb(url)).toBe(40)
    expect(w.decisions().filter((x) => x.applied).map((x) => x.decision.targetMb)).toEqual([48, 40])
  })

  it('reconnects with backoff when the server restarts, and goes on deciding', async () => {
    const w = startWatcher(url, {dryRun: true})
    try {
      await waitFor('a decision', () => w.decisions().length > 0)
      await h.embedded!.restart('fast')
      await waitFor('reconnected', () => w.events.some((e) => e.event === 'reconnected'), 20_000)
      expect(w.events.some((e) => e.event === 'disconnected')).toBe(true)
      const n = w.decisions().length
      await waitFor('a decision after the restart', () => w.decisions().length > n)
      // walrus reset while it runs: the next reading is a new baseline
      const c = await adminClient(url)
      await resetState(c, {history: false})
      await c.end()
      const m = w.decisions().length
      await waitFor('a baseline after the reset', () => w.decisions().slice(m).find((d) => d.decision.outcome === 'baseline' && /^baseline:/.test(d.decision.reason)))
      // the state row deleted by hand is re-created at the next cycle
      await sql(url, 'DELETE FROM steep_repl.walrus_state')
      await waitFor('the state row again', async () => (await sql(url, 'SELECT count(*)::int AS n FROM steep_repl.walrus_state'))[0].n === 1)
    } finally {
      await w.stop()
    }
  })

  it('simulate reads JSON lines from stdin and CSV files', async () => {
    const lines = [
      '{"time":"2026-01-01T00:00:00Z","requested":12,"stats_reset":null,"max_wal_size_mb":32}',
      '{"time":"2026-01-01T00:00:30Z","requested":44,"stats_reset":null}',
    ].join('\n')
    const r = await runCli(['walrus', 'simulate', '--samples', '-', '--interval', '30s', '--min', '32MB', '--json'], {input: lines})
    expect(r.code).toBe(0)
    expect(r.json()).toMatchObject({finalMb: 1056, changes: 1, decisions: [{outcome: 'baseline'}, {outcome: 'increase', delta: 32, current_mb: 32, target_mb: 1056}]})
    const csv = path.join(tmpdir(), `walrus-${process.pid}.csv`)
    writeFileSync(csv, 'time,requested,stats_reset,max_wal_size_mb\n2026-01-01T00:00:00Z,0,,2048\n2026-01-01T00:05:00Z,5,,\n')
    const t = await runCli(['walrus', 'simulate', '--samples', csv])
    expect(t.code).toBe(0)
    expect(t.stdout).toMatch(/capped 2048 MB -> 4096 MB delta=5: Calculated size exceeded walrus.max/)
  })

  it('tune recommends from the statistics, and --apply writes, records and starts the cooldown', async () => {
    await sql(url, `ALTER SYSTEM SET max_wal_size = '32MB'`)
    await sql(url, 'SELECT pg_reload_conf()')
    await waitFor('32MB', async () => (await showMaxWalSizeMb(url)) === 32)
    await sql(url, `SELECT pg_stat_reset_shared($1)`, [h.info.major >= 17 ? 'checkpointer' : 'bgwriter'])
    await checkpoints(url, 4)
    const dry = await runCli(['walrus', 'tune', '-d', url, '--json', '--max', '1GB', '--min', '16MB'])
    expect(dry.code).toBe(0)
    const rec = dry.json()
    expect(rec).toMatchObject({action: 'increase', currentMb: 32, requested: 4, applied: false})
    expect(rec.recommendedMb).toBeGreaterThan(32)
    expect(rec.reasons.join('\n')).toMatch(/4 requested and \d+ timed checkpoints/)
    expect(await showMaxWalSizeMb(url)).toBe(32)
    const ap = await runCli(['walrus', 'tune', '-d', url, '--json', '--max', '1GB', '--min', '16MB', '--apply'])
    expect(ap.code).toBe(0)
    const res = ap.json()
    expect(res).toMatchObject({applied: true, apply: {effective: true}})
    expect(await showMaxWalSizeMb(url)).toBe(res.recommendedMb)
    const [row] = await sql(url, `SELECT action, source, new_size_mb, reason, metadata FROM steep_repl.walrus_history WHERE id = $1`, [res.apply.historyId])
    expect(row).toMatchObject({action: res.change, source: 'tune', new_size_mb: res.recommendedMb, metadata: {source: 'walrus tune'}})
    expect(row.reason).toMatch(/^checkpoints are forced: grow to \d+ MB/)
    const st = await runCli(['walrus', 'status', '-d', url, '--json'])
    expect(st.json().state.lastAdjustmentAt).not.toBeNull()
  })

  it('status, history --since/--action and reset', async () => {
    const st = await runCli(['walrus', 'status', '-d', url, '--json', '--last', '3'])
    expect(st.code).toBe(0)
    const s = st.json()
    expect(s).toMatchObject({installed: true, inRecovery: false, maxWalSize: {source: 'configuration file'}, watcher: {holders: []}})
    expect(s.statistics.view).toBe(h.info.major >= 17 ? 'pg_stat_checkpointer.num_requested' : 'pg_stat_bgwriter.checkpoints_req')
    expect(s.lastDecisions.length).toBe(3)
    const human = await runCli(['walrus', 'status', '-d', url])
    expect(human.stdout).toMatch(/max_wal_size\s+\d+ MB \(source: configuration file/)
    const all = (await runCli(['walrus', 'history', '-d', url, '--json'])).json()
    expect(all.length).toBeGreaterThanOrEqual(4)
    expect(all.map((r: {action: string}) => r.action)).toEqual(expect.arrayContaining(['dry_run', 'decrease']))
    const dec = (await runCli(['walrus', 'history', '-d', url, '--json', '--action', 'decrease'])).json()
    expect(dec.every((r: {action: string}) => r.action === 'decrease')).toBe(true)
    expect((await runCli(['walrus', 'history', '-d', url, '--json', '--since', '2099-01-01T00:00:00Z'])).json()).toEqual([])
    const rs = await runCli(['walrus', 'reset', '-d', url, '--history', '--json'])
    expect(rs.code).toBe(0)
    expect(rs.json().historyDeleted).toBe(all.length)
    const c = await adminClient(url)
    const after = await readStatus(c, {last: 5}).finally(() => c.end())
    expect(after.state).toMatchObject({baselineRequested: null, quietIntervals: 0, cooldownRemainingSec: 0, changesThisHour: 0, totalAdjustments: 0})
    expect(after.lastDecisions).toEqual([])
  })

  it('refuses to run on a standby, with a clear message', async () => {
    writeFileSync(path.join(h.info.dataDir, 'data', 'standby.signal'), '')
    await h.embedded!.restart('fast')
    expect((await sql(url, 'SELECT pg_is_in_recovery() AS r'))[0].r).toBe(true)
    const w = await runCli(['walrus', 'watch', '-d', url])
    expect(w.code).toBe(1)
    expect(w.stderr).toMatch(/the server is a standby \(pg_is_in_recovery\(\) is true\): walrus watch only runs against a primary/)
    const c = await adminClient(url)
    await expect(runTune(c, validateSettings(), {apply: false, sampleMs: 0}).finally(() => c.end())).rejects.toThrow(/the server is a standby .*walrus tune only runs against a primary/)
  })
})

/** A one-shot client for lockHolders (closed after the query). */
async function adminClientEnd(url: string) {
  const c = await adminClient(url)
  const q = c.query.bind(c)
  ;(c as unknown as {query: unknown}).query = async (...args: Parameters<typeof q>) => {
    try {
      return await q(...args)
    } finally {
      await c.end()
    }
  }
  return c
}
