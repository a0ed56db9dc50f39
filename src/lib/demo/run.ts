// `steep-repl demo`: the whole tool on throwaway embedded PostgreSQL servers, through the same
// library and job code the commands run (install, snapshot generate/apply as direct jobs with their
// progress display, schema compare, merge analyze/run, walrus tune). Each step first prints the
// command a user would type against their own servers. The demo checks what it claims (row counts,
// replicated writes, the merge outcome, the walrus change) and reports each check.
//
// Everything it creates lives in one directory (see servers.ts) and is stopped and removed at the
// end, on failure and on SIGINT/SIGTERM, unless --keep.

import {randomBytes, randomUUID} from 'node:crypto'
import {setTimeout as sleep} from 'node:timers/promises'
import pg from 'pg'
import {type JobDocument, runJobCommand} from '../../direct/run.js'
import {withClient} from '../connection/connect.js'
import {toConnRef} from '../connection/ref.js'
import {type ConnParams, describeConnection, resolveConnection} from '../connection/resolve.js'
import {EmbeddedServer, type PgMajor} from '../embedded/server.js'
import {SteepError} from '../errors.js'
import {install} from '../install/migrations.js'
import {analyzeOverlap} from '../merge/analyze.js'
import {mergeRun} from '../merge/job.js'
import {lineProgress} from '../merge/progress.js'
import {analyzeJson, renderAnalyze, renderMerge} from '../merge/render.js'
import type {MergeResult} from '../merge/run.js'
import {parseTableList} from '../merge/tables.js'
import {redact} from '../redact.js'
import {renderCompare} from '../schema/cli.js'
import {compareNodes} from '../schema/compare-io.js'
import {snapshotApply, snapshotGenerate, type GenerateJobResult} from '../snapshot/jobs.js'
import {newSnapshotId} from '../snapshot/manifest.js'
import type {ApplyResult} from '../snapshot/apply.js'
import {gatherHealth} from '../health/gather.js'
import {judge} from '../health/report.js'
import {formatBytes, renderTable, statusMark} from '../ui/output.js'
import {DEFAULT_SETTINGS} from '../walrus/rule.js'
import {runTune, type TuneResult} from '../walrus/tune.js'
import {type Check, commandLine, demoUrl, stepHeader, summaryLines, type TableCount, tuneLines} from './render.js'
import {
  BURST_DATABASE,
  burstSql,
  divergenceFor,
  divergenceSql,
  expectedMerge,
  liveWriteChecks,
  liveWritesSql,
  MERGE_TABLE_SPEC,
  qualified,
  SAMPLE_TABLES,
  sampleConstraintsSql,
  sampleDataSql,
  sampleSchemaSql,
  sampleSizes,
} from './sample.js'
import {type DemoDir, handOverOwnership, prepareDemoDir, removeDemoDir, writePgpass, writeState} from './servers.js'

export interface DemoOptions {
  major: PgMajor
  rows: number
  keep: boolean
  dir?: string
  json: boolean
  /** The CLI's name, for the printed commands. */
  bin: string
  /** Where the narrative goes (stdout, or stderr with --json). */
  write: (line: string) => void
}

export interface DemoServerInfo {
  role: 'source' | 'target'
  port: number
  url: string
  socket: string
  dataDir: string
}

export interface DemoStep {
  n: number
  title: string
  command: string[]
  seconds: number
}

export interface DemoReport {
  ok: boolean
  pgMajor: number
  rows: number
  dir: string
  kept: boolean
  servers: DemoServerInfo[]
  steps: DemoStep[]
  tables: TableCount[]
  snapshot: (Pick<GenerateJobResult, 'snapshotId' | 'lsn' | 'slot' | 'tables' | 'parts' | 'rows' | 'rawBytes' | 'fileBytes'> & {jobId: string}) | null
  apply: (ApplyResult & {jobId: string}) | null
  replication: {arrivedAfterSeconds: number | null; writes: Array<{what: string; expected: number; onTarget: number}>}
  schemaCompare: {match: number; mismatch: number; localOnly: number; remoteOnly: number; blocking: boolean} | null
  merge: {
    table: string
    expected: ReturnType<typeof expectedMerge>
    found: {conflict: number; aOnly: number; bOnly: number} | null
    done: {mergeId: string | null; keptA: number; keptB: number; aToB: number; bToA: number; jobId: string} | null
    after: {conflict: number; aOnly: number; bOnly: number} | null
  }
  walrus: {requested: number; beforeMb: number; action: string; recommendedMb: number; applied: boolean; nowMb: number | null} | null
  checks: Check[]
  seconds: number
  /** With --keep: the command that stops the servers and removes the directory. */
  stopCommand: string | null
}

const TOTAL_STEPS = 9
const ROLE = ['source', 'target'] as const

/** Server-wide settings of the source: a small max_wal_size, so the walrus step has something to fix. */
const SOURCE_SETTINGS = {max_wal_size: '32MB', min_wal_size: '32MB'}
const BURST_MB = 96

export class DemoFailed extends SteepError {
  override readonly code = 'demo_failed'
}

export async function runDemo(o: DemoOptions): Promise<DemoReport> {
  const t0 = Date.now()
  const say = (line = '') => o.write(redact(line))
  const d: DemoDir = prepareDemoDir(o.dir)
  const servers: EmbeddedServer[] = []
  const report: DemoReport = {
    ok: false, pgMajor: o.major, rows: o.rows, dir: d.dir, kept: false, servers: [], steps: [], tables: [], snapshot: null, apply: null,
    replication: {arrivedAfterSeconds: null, writes: []}, schemaCompare: null,
    merge: {table: MERGE_TABLE_SPEC, expected: expectedMerge(divergenceFor(o.major)), found: null, done: null, after: null},
    walrus: null, checks: [], seconds: 0, stopCommand: null,
  }
  const check = (name: string, ok: boolean, detail: string) => {
    report.checks.push({name, ok, detail})
    say(`${ok ? '✓' : '✗'} ${name}: ${detail}`)
    return ok
  }

  // Stop and remove everything: at the end, on failure, on an interrupt (once).
  let cleaning: Promise<void> | undefined
  const cleanup = () =>
    (cleaning ??= (async () => {
      for (const s of servers) await s.stop().catch(() => {})
      removeDemoDir(d.dir)
    })())
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`\n${signal}: stopping the demo servers and removing ${d.dir}\n`)
    void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  let stepNo = 0
  const step = (title: string, args: string[][], note?: string) => {
    stepNo++
    say(stepHeader(stepNo, TOTAL_STEPS, title))
    for (const a of args) say(commandLine(o.bin, a))
    if (note) say(note)
    const started = Date.now()
    const entry: DemoStep = {n: stepNo, title, command: args[0] ?? [], seconds: 0}
    report.steps.push(entry)
    return () => (entry.seconds = (Date.now() - started) / 1000)
  }
  const host = {jsonEnabled: () => o.json}
  const direct = {direct: true}

  let keepServers = false
  try {
    // 1. Servers -------------------------------------------------------------------------------
    let done = step(`Start two embedded PostgreSQL ${o.major} servers`, [], `(wal_level = logical; in ${d.dir})`)
    // Both are in the list before they start: if one fails, the cleanup still stops the other.
    const source = new EmbeddedServer({major: o.major, baseDir: d.serversDir, settings: SOURCE_SETTINGS})
    const target = new EmbeddedServer({major: o.major, baseDir: d.serversDir})
    servers.push(source, target)
    const started = await Promise.allSettled([source.start(), target.start()])
    const failedStart = started.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failedStart) throw failedStart.reason
    writeState(d, servers, [...ROLE], false)
    writePgpass(d, servers)
    const conn = (s: EmbeddedServer): ConnParams => resolveConnection({db: s.url(), flag: '--db', env: {}})
    const src = conn(source)
    const dst = conn(target)
    const S = demoUrl(source.port)
    const T = demoUrl(target.port)
    report.servers = servers.map((s, i) => ({role: ROLE[i]!, port: s.port, url: demoUrl(s.port), socket: s.socketConninfo(), dataDir: s.dataDir}))
    say(`source: ${S}   (max_wal_size ${SOURCE_SETTINGS.max_wal_size}, small on purpose for the walrus step)`)
    say(`target: ${T}`)
    say(`passwords: export PGPASSFILE=${d.pgpass} to run the printed commands yourself while the demo runs`)
    done()

    // 2. Sample data ---------------------------------------------------------------------------
    const sizes = sampleSizes(o.rows)
    done = step('Load the sample database into the source', [], `(schemas shop and "Inventory": FKs, sequences, orders partitioned by year, mixed-case names; generated with generate_series)`)
    await source.query(sampleSchemaSql())
    for (const sql of sampleDataSql(sizes)) await source.query(sql)
    await source.query(sampleConstraintsSql())
    await source.query('ANALYZE')
    const loaded = await countRows(source)
    say(loaded.map((c) => `  ${c.table}: ${c.n}`).join('\n'))
    say(`  ${loaded.reduce((s, c) => s + c.n, 0)} rows`)
    done()

    // 3. install -------------------------------------------------------------------------------
    done = step('Install the steep_repl schema on both servers; check the source', [['install', '-d', S], ['install', '-d', T], ['health', '-d', S]])
    for (const [p, label] of [[src, 'source'], [dst, 'target']] as const) {
      const r = await withClient(p, (c) => install(c))
      say(`steep_repl schema ${r.applied.length ? 'installed' : 'already'} at version ${r.to} on the ${label} (${describeConnection(p)})`)
    }
    const health = judge(await withClient(src, gatherHealth))
    say(`${describeConnection(src)}: ${health.healthy ? 'healthy' : 'NOT healthy'}`)
    say(renderTable(['check', 'status', 'detail'], health.checks.map((c) => [c.name, statusMark(c.status, o.json ? false : undefined), c.detail])))
    check('health', health.healthy, health.healthy ? `the source is ready (${health.checks.length} checks)` : `failed: ${health.checks.filter((c) => c.status === 'fail').map((c) => c.name).join(', ')}`)
    done()

    // 4. snapshot generate ---------------------------------------------------------------------
    const genArgs = ['snapshot', 'generate', '-d', S, '--output', d.snapshotDir, '--parallel', '4', '--split-larger-than', '4MB', '--direct']
    done = step('Snapshot the source at a replication slot\'s LSN', [genArgs])
    const gen = await runJobCommand(host, {
      kind: snapshotGenerate,
      db: src,
      flags: direct,
      params: {
        snapshotId: newSnapshotId(new Date(), randomBytes(4).toString('hex')),
        output: d.snapshotDir,
        parallel: 4,
        compression: 'zstd',
        schemas: [],
        tables: [],
        excludeTables: [],
        keepSlot: true,
        splitLargerThan: 4 * 1024 * 1024,
        force: false,
      },
    })
    const g = gen.result as GenerateJobResult
    report.snapshot = {jobId: gen.id, snapshotId: g.snapshotId, lsn: g.lsn, slot: g.slot, tables: g.tables, parts: g.parts, rows: g.rows, rawBytes: g.rawBytes, fileBytes: g.fileBytes}
    say(`snapshot ${g.snapshotId} written to ${g.output}: ${g.tables} tables (${g.parts} parts), ${g.rows} rows, ${formatBytes(g.rawBytes)} → ${formatBytes(g.fileBytes)}, at LSN ${g.lsn}; slot ${g.slot} kept for the subscriber`)
    done()

    // 5. snapshot apply --subscribe ------------------------------------------------------------
    const applyArgs = ['snapshot', 'apply', '-d', T, '--input', d.snapshotDir, '--subscribe', '--source', S, '--parallel', '4', '--direct']
    done = step('Load it into the target and subscribe at the snapshot\'s LSN', [applyArgs], '(the target reaches the source with its password, which PostgreSQL keeps in the subscription)')
    const srcRef = toConnRef(undefined, src)
    const app = await runJobCommand(host, {
      kind: snapshotApply,
      db: dst,
      flags: direct,
      localConnections: new Map([[srcRef, src]]),
      params: {input: d.snapshotDir, parallel: 4, verify: true, resume: false, subscribeFrom: srcRef},
    })
    const a = app.result as ApplyResult
    report.apply = {...a, jobId: app.id}
    say(`snapshot ${a.snapshotId} applied: ${a.tables} tables, ${a.rows} rows loaded; subscription ${a.subscription} replicates from LSN ${a.lsn}`)
    const afterApply = await compareCounts(source, target)
    const equalAfterApply = afterApply.every((c) => c.source === c.target)
    check('snapshot rows', equalAfterApply && a.rows === g.rows, `${a.rows} rows applied of ${g.rows} written; ${afterApply.length} tables with equal counts on both servers${equalAfterApply ? '' : ` (differ: ${afterApply.filter((c) => c.source !== c.target).map((c) => `${c.table} ${c.source}≠${c.target}`).join(', ')})`}`)
    done()

    // 6. live writes ---------------------------------------------------------------------------
    done = step('Write on the source; watch the rows arrive on the target', [], `(plain SQL on the source: a new customer with two orders and their lines, a price change)`)
    const writeAt = Date.now()
    await source.query(liveWritesSql())
    const waited = await waitFor(async () => {
      const rows = await Promise.all(liveWriteChecks().map(async (c) => ({what: c.what, expected: c.expect, onTarget: (await target.query(c.sql)).rows[0].n as number})))
      report.replication.writes = rows
      return rows.every((r) => r.onTarget === r.expected)
    }, 60_000)
    report.replication.arrivedAfterSeconds = waited ? (Date.now() - writeAt) / 1000 : null
    for (const w of report.replication.writes) say(`  ${w.what}: ${w.onTarget} of ${w.expected} on the target`)
    const priceSame = await sameValue(source, target, `SELECT price::text AS v FROM shop.products WHERE id = 1`)
    check('replicated writes', waited && priceSame, waited ? `arrived on the target ${report.replication.arrivedAfterSeconds!.toFixed(2)} s after the commit on the source${priceSame ? ', price change included' : ', but the price change did not'}` : 'not all on the target after 60 s')
    done()

    // 7. schema compare ------------------------------------------------------------------------
    done = step('Compare the schemas of both servers', [['schema', 'compare', '--node-a', S, '--node-b', T]])
    const cmp = await withClient(src, (ca) => withClient(dst, (cb) => compareNodes(ca, cb, {labelA: describeConnection(src), labelB: describeConnection(dst)})))
    say(renderCompare(cmp))
    report.schemaCompare = {match: cmp.summary.match, mismatch: cmp.summary.mismatch, localOnly: cmp.summary.localOnly, remoteOnly: cmp.summary.remoteOnly, blocking: cmp.blocking}
    check('schema compare', !cmp.blocking && cmp.summary.mismatch === 0 && cmp.summary.localOnly === 0 && cmp.summary.remoteOnly === 0, `${cmp.summary.match} tables match, nothing blocking`)
    done()

    // 8. merge ---------------------------------------------------------------------------------
    const div = divergenceFor(o.major)
    const exp = expectedMerge(div)
    const tables = parseTableList(MERGE_TABLE_SPEC)
    const analyzeArgs = ['merge', 'analyze', '--node-a', S, '--node-b', T, '--tables', MERGE_TABLE_SPEC, '--detailed']
    const runArgs = ['merge', 'run', '--node-a', S, '--node-b', T, '--tables', MERGE_TABLE_SPEC, '--strategy', 'last-modified', '--direct']
    done = step(
      'Diverge a table on the target by hand; find and fix it with merge',
      [analyzeArgs, runArgs],
      `(on the target: ${div.newerOnB} stock levels changed now, ${div.olderOnB} set back to an old value, ${div.deletedOnB} deleted${div.insertedOnB ? `, ${div.insertedOnB} added` : ''}; merge keeps the newer updated_at of each conflicting row and copies missing rows both ways${o.major < 16 ? '; rows only on the target are left out on PostgreSQL 15, whose subscriptions cannot filter by origin' : ''})`,
    )
    await target.query(divergenceSql(div))
    const analysis = analyzeJson(await analyzeOverlap({nodeA: src, nodeB: dst, tables, progress: o.json ? undefined : lineProgress((l) => process.stderr.write(l + '\n'))}), {limit: 20, offset: 0})
    say(renderAnalyze(analysis))
    const found = {conflict: analysis.totals.conflict, aOnly: analysis.totals.aOnly, bOnly: analysis.totals.bOnly}
    report.merge.found = found
    check('merge analyze', found.conflict === exp.conflict && found.aOnly === exp.aOnly && found.bOnly === exp.bOnly, `found ${found.conflict} conflicts, ${found.aOnly} rows only on the source, ${found.bOnly} only on the target (expected ${exp.conflict}, ${exp.aOnly}, ${exp.bOnly})`)
    say('')
    say(commandLine(o.bin, runArgs))
    const dstRef = toConnRef(undefined, dst)
    const mj: JobDocument = await runJobCommand(host, {
      kind: mergeRun,
      db: src,
      flags: direct,
      localConnections: new Map([[dstRef, dst]]),
      params: {nodeB: dstRef, tables, strategy: 'last-modified', dryRun: false, mergeId: randomUUID()},
    })
    const m = mj.result as MergeResult
    say(renderMerge(m))
    const keptA = m.tables.reduce((s, t) => s + t.keptA, 0)
    const keptB = m.tables.reduce((s, t) => s + t.keptB, 0)
    report.merge.done = {mergeId: m.mergeId, keptA, keptB, aToB: m.totals.transferredAToB, bToA: m.totals.transferredBToA, jobId: mj.id}
    check(
      'merge run',
      keptA === exp.keptA && keptB === exp.keptB && m.totals.transferredAToB === exp.aToB && m.totals.transferredBToA === exp.bToA,
      `kept the source's row ${keptA}×, the target's ${keptB}×, copied ${m.totals.transferredAToB} rows to the target and ${m.totals.transferredBToA} to the source (expected ${exp.keptA}, ${exp.keptB}, ${exp.aToB}, ${exp.bToA})`,
    )
    const again = await analyzeOverlap({nodeA: src, nodeB: dst, tables})
    report.merge.after = {conflict: again.totals.conflict, aOnly: again.totals.aOnly, bOnly: again.totals.bOnly}
    check('merge result', again.totals.conflict + again.totals.aOnly + again.totals.bOnly === 0 && again.totals.match === again.totals.total, `merge analyze again: ${again.totals.match} of ${again.totals.total} rows match, nothing left to do`)
    done()

    // 9. walrus --------------------------------------------------------------------------------
    const tuneArgs = ['walrus', 'tune', '-d', S, '--apply']
    done = step('Size max_wal_size from the checkpoint statistics', [tuneArgs], `(first the checkpoint statistics are reset, then a batch job in another database of the source writes about ${BURST_MB} MB of WAL with max_wal_size at ${SOURCE_SETTINGS.max_wal_size})`)
    // Only the batch job's checkpoints count: the statistics start from here (17+ keep them in
    // pg_stat_checkpointer, 15 and 16 in pg_stat_bgwriter).
    await source.query(`SELECT pg_stat_reset_shared($1)`, [o.major >= 17 ? 'checkpointer' : 'bgwriter'])
    await source.query(`CREATE DATABASE ${pg.escapeIdentifier(BURST_DATABASE)}`)
    for (const sql of burstSql(BURST_MB)) await source.query(sql, [], BURST_DATABASE)
    await source.query(`DROP DATABASE ${pg.escapeIdentifier(BURST_DATABASE)}`)
    const tune: TuneResult = await withClient(src, (c) => runTune(c, {...DEFAULT_SETTINGS}, {apply: true, sampleMs: 0}), {applicationName: 'steep-repl walrus tune'})
    for (const l of tuneLines(tune)) say(l)
    const nowMb = Number((await source.query(`SELECT setting FROM pg_settings WHERE name = 'max_wal_size'`)).rows[0].setting)
    report.walrus = {requested: tune.requested, beforeMb: tune.currentMb, action: tune.action, recommendedMb: tune.recommendedMb, applied: tune.applied, nowMb}
    check(
      'walrus tune',
      tune.action === 'increase' && tune.applied && nowMb === tune.recommendedMb,
      tune.action === 'increase'
        ? `${tune.requested} requested checkpoints: max_wal_size ${tune.currentMb} MB → ${nowMb} MB on the running source (ALTER SYSTEM + reload)`
        : `expected an increase after ${tune.requested} requested checkpoints, got ${tune.action}`,
    )

    // Final state of both servers.
    report.tables = await compareCounts(source, target)
    const equal = report.tables.every((c) => c.source === c.target)
    check('row counts', equal, equal ? `all ${report.tables.length} tables equal on both servers (${report.tables.reduce((s, c) => s + c.source, 0)} rows)` : `differ: ${report.tables.filter((c) => c.source !== c.target).map((c) => `${c.table} ${c.source}≠${c.target}`).join(', ')}`)
    const sub = (await target.query(`SELECT count(*) FILTER (WHERE srsubstate <> 'r')::int AS not_ready, count(*)::int AS n FROM pg_subscription_rel`)).rows[0]
    check('subscription', sub.n > 0 && sub.not_ready === 0, `${sub.n} tables replicating, all ready`)
    done()

    report.ok = report.checks.length > 0 && report.checks.every((c) => c.ok)
    report.seconds = (Date.now() - t0) / 1000
    for (const l of summaryLines({checks: report.checks, seconds: report.seconds, counts: report.tables})) say(l)
    if (o.keep) {
      keepServers = true
      handOverOwnership(servers)
      writeState(d, servers, [...ROLE], true)
      report.kept = true
      report.stopCommand = `${o.bin} demo --stop --dir ${d.dir}`
      say('')
      say('The servers keep running (--keep):')
      for (const s of report.servers) say(`  ${s.role}: ${s.url}   or over the Unix socket (trust): psql "${s.socket}"`)
      say(`  export PGPASSFILE=${d.pgpass}   # the passwords, for the URLs above`)
      say(`  stop them and remove ${d.dir}: ${report.stopCommand}`)
    }
    return report
  } catch (err) {
    report.seconds = (Date.now() - t0) / 1000
    const e = err as Error
    if (o.keep && servers.length) {
      keepServers = true
      handOverOwnership(servers)
      writeState(d, servers, [...ROLE], true)
      report.kept = true
      report.stopCommand = `${o.bin} demo --stop --dir ${d.dir}`
      process.stderr.write(`the demo failed; its servers keep running for a look (--keep); stop them with: ${report.stopCommand}\n`)
    }
    if (err instanceof SteepError) {
      // Keep its exit code (a failed job 1, a cancelled one 4, a lost server 6), name the step.
      err.message = `the demo failed at step ${stepNo} (${report.steps.at(-1)?.title ?? 'setup'}): ${err.message}`
      throw err
    }
    throw new DemoFailed(`the demo failed at step ${stepNo} (${report.steps.at(-1)?.title ?? 'setup'}): ${e.message}`, {cause: err})
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    if (!keepServers) await cleanup()
  }
}

async function countRows(s: EmbeddedServer): Promise<Array<{table: string; n: number}>> {
  const parts = SAMPLE_TABLES.map((t) => `SELECT ${pg.escapeLiteral(`${t.schema}.${t.name}`)} AS t, count(*)::int AS n FROM ${qualified(t)}`)
  const r = await s.query(parts.join(' UNION ALL '))
  return r.rows.map((x) => ({table: x.t as string, n: x.n as number}))
}

async function compareCounts(a: EmbeddedServer, b: EmbeddedServer): Promise<TableCount[]> {
  const [ca, cb] = await Promise.all([countRows(a), countRows(b)])
  return ca.map((x, i) => ({table: x.table, source: x.n, target: cb[i]!.n}))
}

async function sameValue(a: EmbeddedServer, b: EmbeddedServer, sql: string): Promise<boolean> {
  const [ra, rb] = await Promise.all([a.query(sql), b.query(sql)])
  return JSON.stringify(ra.rows) === JSON.stringify(rb.rows)
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await cond()) return true
    if (Date.now() > deadline) return false
    await sleep(100)
  }
}
