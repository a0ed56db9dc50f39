// merge run: pre-flight, FK order, analysis, decisions, then per table the writes (one-sided rows
// by COPY, conflicts by batched UPDATE from the winner's rows) and the audit on node A.
//
// Per table, node B's writes and node A's writes (with the audit rows) each run in one transaction;
// B commits first, then A. There is no cross-node transaction: a failure between the two commits
// leaves B's half done and unaudited, and the merge row says 'failed' with the error; running the
// merge again finds and finishes what is left (the analysis starts from the data, not from a log).
//
// A dry run goes through the same analysis and decisions (including last-modified's timestamp
// reads) and stops before the first write: its counts are what the real run then does, on unchanged
// data. Nothing is written on either node, not even the merge record.

import {randomUUID} from 'node:crypto'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import copyStreams from 'pg-copy-streams'
import type {ConnParams} from '../connection/resolve.js'
import {CancelledError, NotInstalledError, PermissionError, StateError, UsageError} from '../errors.js'
import {missingReplicaWriteGrants} from '../privileges.js'
import {analyzeTable, type NodePair, openPair, type PreparedTable, prepareTables, type TableAnalysis, type TuningOptions} from './analyze.js'
import {type EchoLink, hasMergeSchema, hasSequenceAudit, loadEchoLinks, loadForeignKeys, loadReplication, loadWriters} from './catalog.js'
import {fkOrder} from './fk-order.js'
import {type MergeProgress, silentProgress} from './progress.js'
import type {NodeSession} from './session.js'
import {type OwnedSequence, extremeFor, furthest, planSequence, type SequenceStep} from './sequences.js'
import {
  advanceSequenceSql,
  type AuditRow,
  auditInsertSql,
  columnExtremesSql,
  copyInSql,
  copyLine,
  fetchRowsSql,
  keysExtremesSql,
  ownedSequencesSql,
  sequenceAuditSql,
  sequenceStateSql,
  updateRowsSql,
} from './sql.js'
import {chooseTimestampColumn, decide, type Resolution, type Strategy} from './strategy.js'
import {tableLabel, type TableName} from './tables.js'
import type {MergeTotals} from './audit.js'
import type {OverlapCounts} from './diff.js'

export interface MergeOptions extends TuningOptions {
  nodeA: ConnParams
  nodeB: ConnParams
  tables: TableName[]
  strategy: Strategy
  dryRun?: boolean
  /** last-modified: the column to compare (default: auto-detected per table). */
  timestampColumn?: string
  /** Rows per fetch/COPY/UPDATE/audit batch (default 1000). */
  batchRows?: number
  /** A merge id chosen by the caller (the job wrapper); default a new UUID. */
  mergeId?: string
  /** The job that runs this merge, recorded on the merge row. */
  jobId?: number
  signal?: AbortSignal
  progress?: MergeProgress
}

export interface TableOutcome extends OverlapCounts {
  table: string
  key: string[]
  timestampColumn: string | null
  /** Writes run with session_replication_role = replica (and the steep_repl_merge origin) on the node. */
  replicaRole: {a: boolean; b: boolean}
  /** What was done (or, in a dry run, what will be done). */
  transferredAToB: number
  transferredBToA: number
  keptA: number
  keptB: number
  skipped: number
  /** Conflicting keys left for manual resolution (text of the key columns). */
  skippedKeys: string[][]
  /**
   * Sequences owned by the table's columns on each node that received rows: advanced to the
   * column's extreme when behind (in a dry run: what will be done).
   */
  sequences: SequenceStep[]
}

export interface MergeResult {
  mergeId: string | null
  dryRun: boolean
  strategy: Strategy
  nodeA: string
  nodeB: string
  /** Tables in the order processed (parents before children). */
  order: string[]
  warnings: string[]
  tables: TableOutcome[]
  totals: MergeTotals
  seconds: number
}

// Replication origins are shared by the whole server, and one origin is active in one session at a
// time: the name carries the database's oid, so merges into two databases of one server (both nodes
// on one server, or two merges) do not contend. Subscriptions with origin = none skip any origin.
const REPLICATION_ORIGIN = 'steep_repl_merge'
const ORIGIN_NAME_SQL = `'${REPLICATION_ORIGIN}_' || (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())`

function totals(tables: TableOutcome[]): MergeResult['totals'] {
  const t = {total: 0, match: 0, conflict: 0, aOnly: 0, bOnly: 0, transferredAToB: 0, transferredBToA: 0, conflictsResolved: 0, conflictsSkipped: 0}
  for (const x of tables) {
    t.total += x.total
    t.match += x.match
    t.conflict += x.conflict
    t.aOnly += x.aOnly
    t.bOnly += x.bOnly
    t.transferredAToB += x.transferredAToB
    t.transferredBToA += x.transferredBToA
    t.conflictsResolved += x.keptA + x.keptB
    t.conflictsSkipped += x.skipped
  }
  return t
}

function chunk<T>(xs: T[], n: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n))
  return out
}

interface FetchedRow {
  key: string[]
  json: string
  ts: string | null
  values: Array<string | null>
}

async function fetchRows(node: NodeSession, t: PreparedTable, keys: string[][], ts?: string): Promise<Map<string, FetchedRow>> {
  const out = new Map<string, FetchedRow>()
  if (keys.length === 0) return out
  const {rows} = await node.client.query<Record<string, unknown>>(fetchRowsSql(t.sql, keys, ts))
  for (const r of rows) {
    const key = t.sql.key.map((_, i) => r[`k${i}`] as string)
    out.set(JSON.stringify(key), {key, json: r.j as string, ts: (r.ts as string | null | undefined) ?? null, values: r.v as Array<string | null>})
  }
  return out
}

interface Prepared {
  pair: NodePair
  tables: PreparedTable[]
  order: PreparedTable[]
  timestamp: Map<string, string>
  replica: Map<string, {a: boolean; b: boolean}>
  /** Subscriptions that would send rows merged into A back to B (b) and into B back to A (a). */
  echo: {intoA: EchoLink[]; intoB: EchoLink[]}
  warnings: string[]
}

/** Everything that can refuse before any write: tables, keys, schemas, FK cycles, timestamps, schema on A. */
async function preflight(pair: NodePair, o: MergeOptions): Promise<Prepared> {
  const tables = await prepareTables(pair, o.tables)
  const fks = await loadForeignKeys(pair.a.client, o.tables)
  const ord = fkOrder(tables.map((t) => t.label), fks)
  if (!ord.ok) {
    throw new StateError(`circular foreign key dependency among ${ord.cycle.join(', ')}`, {hint: 'Merge the tables of the cycle in separate runs, or drop one of the constraints for the merge.'})
  }
  const byLabel = new Map(tables.map((t) => [t.label, t]))
  const order = ord.order.map((l) => byLabel.get(l)!)
  const timestamp = new Map<string, string>()
  if (o.strategy === 'last-modified') {
    const missing: string[] = []
    for (const t of tables) {
      const c = chooseTimestampColumn(t.a.columns, o.timestampColumn)
      if (c.ok) timestamp.set(t.label, c.column)
      else missing.push(`${t.label} ${c.reason}`)
    }
    if (missing.length) throw new UsageError(`last-modified cannot decide: ${missing.join('; ')}`, {hint: 'Give --timestamp-column, or use another strategy for these tables.'})
  }
  if (!(await hasMergeSchema(pair.a.client)) || !(await hasSequenceAudit(pair.a.client))) {
    throw new NotInstalledError(`node A (${pair.a.describe}) has no steep_repl merge tables (steep_repl.merges, steep_repl.merge_audit_log, at migration 009 or later): the merge is audited there`, {
      hint: 'Run: steep-repl install -d <node A> (installs or upgrades the steep_repl schema).',
    })
  }
  const warnings: string[] = tables.flatMap((t) => t.notes.map((n) => `schema (not blocking): ${n}`))
  // The two nodes at once, each connection one statement at a time.
  const activity = async (c: typeof pair.a.client) => ({writers: await loadWriters(c, o.tables), replication: await loadReplication(c, o.tables)})
  const [{writers: wa, replication: ra}, {writers: wb, replication: rb}] = await Promise.all([activity(pair.a.client), activity(pair.b.client)])
  // Subscriptions that do not filter by origin (all of them before PostgreSQL 16) would send the
  // merge's own writes back to the node they came from.
  const unfiltered = (links: EchoLink[]) => links.filter((l) => l.origin !== 'none')
  const echo = {intoA: unfiltered(await loadEchoLinks(pair.b.client, pair.a.client, o.tables)), intoB: unfiltered(await loadEchoLinks(pair.a.client, pair.b.client, o.tables))}
  for (const [label, w] of [['A', wa], ['B', wb]] as const) {
    if (w.writers) warnings.push(`node ${label}: ${w.writers} other session(s) hold write locks on the tables; rows they change during the merge may be missed`)
    if (w.idleInTransaction) warnings.push(`node ${label}: ${w.idleInTransaction} session(s) idle in a transaction`)
  }
  const replica = new Map<string, {a: boolean; b: boolean}>()
  for (const t of tables) replica.set(t.label, {a: ra.subscriptions > 0 || ra.published.includes(t.label), b: rb.subscriptions > 0 || rb.published.includes(t.label)})
  // Writing as a replica under the merge's origin needs grants a plain role lacks: refuse before
  // the first write on either node rather than after the first table committed.
  if (!o.dryRun) {
    for (const side of ['a', 'b'] as const) {
      if (![...replica.values()].some((r) => r[side])) continue
      const node = pair[side]
      const m = await missingReplicaWriteGrants(node.client)
      if (m.missing.length) {
        throw new PermissionError(
          `node ${node.label} (${node.describe}): replication is configured there, so the merge writes as a replica under its replication origin, and role ${m.role} lacks ${m.missing.join(' and ')}; nothing was written. On node ${node.label}, as a superuser: ${m.grants.join(' ')}`,
          {hint: 'Or run the merge as a superuser; docs/privileges.md lists the grants each command needs.'},
        )
      }
    }
  }
  return {pair, tables, order, timestamp, replica, echo, warnings}
}

/**
 * Refuses, before any write, a merge whose inserts would come back as duplicates: rows copied into
 * A travel to B through a subscription of B that does not filter by origin, and B has those rows
 * (they are B's own), so B's apply worker stops on a duplicate key and retries forever; the same
 * the other way. Updates of conflicting rows are not refused: they arrive as the values B has.
 */
function checkEcho(p: Prepared, planned: Array<{t: PreparedTable; a: TableAnalysis}>): void {
  const problems: string[] = []
  for (const {t, a} of planned) {
    for (const [into, from, rows, links] of [
      ['A', 'B', a.bOnly, p.echo.intoA],
      ['B', 'A', a.aOnly, p.echo.intoB],
    ] as const) {
      if (rows === 0) continue
      for (const l of links) {
        if (l.tables.includes(t.label)) {
          problems.push(`${t.label}: ${rows} row(s) of node ${from} would be copied into node ${into}, and subscription ${l.subscription} on node ${from} (origin = ${l.origin}) would send them back to node ${from}, which has them`)
        }
      }
    }
  }
  if (problems.length) {
    throw new StateError(`the merge would break replication: ${problems.join('; ')}`, {
      hint: 'Merge before creating the subscription, or use subscriptions with origin = none (PostgreSQL 16+: ALTER SUBSCRIPTION … SET (origin = none)) so the merge writes, made under their own replication origin, are not sent back. Nothing was written.',
    })
  }
}

/** The decisions for a table's conflicts (fetching timestamps for last-modified). */
async function decideTable(pair: NodePair, t: PreparedTable, a: TableAnalysis, strategy: Strategy, ts: string | undefined, batch: number): Promise<Map<string, Resolution>> {
  const out = new Map<string, Resolution>()
  for (const keys of chunk(a.conflicts.map((c) => c.key), batch)) {
    if (strategy !== 'last-modified') {
      for (const k of keys) out.set(JSON.stringify(k), decide(strategy))
      continue
    }
    const [ra, rb] = await Promise.all([fetchRows(pair.a, t, keys, ts), fetchRows(pair.b, t, keys, ts)])
    for (const k of keys) {
      const id = JSON.stringify(k)
      out.set(id, decide(strategy, ra.get(id)?.ts ?? null, rb.get(id)?.ts ?? null))
    }
  }
  return out
}

async function copyRows(node: NodeSession, t: PreparedTable, rows: FetchedRow[]): Promise<void> {
  if (rows.length === 0) return
  const stream = node.client.query(copyStreams.from(copyInSql(t.sql)))
  await pipeline(Readable.from([Buffer.from(rows.map((r) => copyLine(r.values)).join(''))]), stream)
}

async function setupWrites(node: NodeSession, replica: boolean): Promise<void> {
  await node.client.query('BEGIN')
  // Triggers and defaults fired by the writes see the role's own search_path (every name in the
  // merge's statements is qualified, so they do not depend on it).
  await node.client.query(`SELECT set_config('search_path', $1, true)`, [node.userSearchPath])
  if (!replica) return
  try {
    await node.client.query(`SET LOCAL session_replication_role = replica`)
  } catch (err) {
    throw new StateError(`node ${node.label}: cannot write as a replica (session_replication_role = replica, replication origin ${REPLICATION_ORIGIN}_<database oid>): ${(err as Error).message}`, {
      cause: err,
      hint: 'Replication is configured on this node, so merge writes must not be replicated back: run the merge as a superuser (or a role granted SET on session_replication_role and EXECUTE on the replication origin functions).',
    })
  }
}

async function withOrigin<T>(node: NodeSession, replica: boolean, fn: () => Promise<T>): Promise<T> {
  if (!replica) return fn()
  // Changes committed under a replication origin are not sent by origin = none subscriptions.
  await node.client
    .query(`SELECT pg_replication_origin_create(o) FROM (SELECT ${ORIGIN_NAME_SQL} AS o) n WHERE NOT EXISTS (SELECT 1 FROM pg_replication_origin WHERE roname = n.o)`)
    .then(() => node.client.query(`SELECT pg_replication_origin_session_setup(${ORIGIN_NAME_SQL})`))
    .catch((err: Error) => {
      throw new StateError(`node ${node.label}: cannot use replication origin ${REPLICATION_ORIGIN}_<database oid>: ${err.message}`, {cause: err, hint: 'Another merge may be writing to this node; wait for it, or run as a superuser.'})
    })
  try {
    return await fn()
  } finally {
    await node.client.query(`SELECT pg_replication_origin_session_reset()`).catch(() => {})
  }
}

/**
 * Owned sequences on each node that received rows (copied or overwritten), advanced to the owning
 * column's extreme when behind. The real run reads the extreme after its commits; the dry run
 * predicts it: the extreme of the receiving node's rows that stay, and of the incoming rows on the
 * sending node. `audit` null: dry run (read only).
 */
async function advanceSequences(
  pair: NodePair,
  t: PreparedTable,
  a: TableAnalysis,
  decisions: Map<string, Resolution>,
  out: TableOutcome,
  audit: {mergeId: string; resolvedBy: string} | null,
): Promise<SequenceStep[]> {
  const steps: SequenceStep[] = []
  const won = (r: Resolution) => a.conflicts.filter((c) => decisions.get(JSON.stringify(c.key)) === r).map((c) => c.key)
  const sides = [
    {to: pair.b, from: pair.a, received: out.transferredAToB + out.keptA, copied: a.aOnlyRows.map((r) => r.key), overwritten: won('kept_a')},
    {to: pair.a, from: pair.b, received: out.transferredBToA + out.keptB, copied: a.bOnlyRows.map((r) => r.key), overwritten: won('kept_b')},
  ]
  const keyCols = new Set(t.sql.key.map((k) => k.name))
  for (const side of sides) {
    if (side.received === 0) continue
    const owned = (await side.to.client.query<OwnedSequence>(ownedSequencesSql(t.sql))).rows
    for (const seq of owned) {
      const st = (await side.to.client.query<{last_value: string; is_called: boolean}>(sequenceStateSql(seq))).rows[0]!
      const state = {lastValue: st.last_value, isCalled: st.is_called}
      let extreme: string | null
      if (audit) {
        const r = (await side.to.client.query<{hi: string | null; lo: string | null}>(columnExtremesSql(t.sql, seq.column, []))).rows[0]!
        extreme = extremeFor(seq, r.hi, r.lo)
      } else {
        // Overwritten rows keep their key; a non-key column's old value there goes away.
        const stay = (await side.to.client.query<{hi: string | null; lo: string | null}>(columnExtremesSql(t.sql, seq.column, keyCols.has(seq.column) ? [] : side.overwritten))).rows[0]!
        extreme = extremeFor(seq, stay.hi, stay.lo)
        const incoming = [...side.copied, ...side.overwritten]
        for (let i = 0; i < incoming.length; i += 10000) {
          const r = (await side.from.client.query<{hi: string | null; lo: string | null}>(keysExtremesSql(t.sql, seq.column, incoming.slice(i, i + 10000)))).rows[0]!
          extreme = furthest(seq, extreme, extremeFor(seq, r.hi, r.lo))
        }
      }
      const plan = planSequence(seq, state, extreme)
      const step: SequenceStep = {
        node: side.to.label,
        sequence: `${seq.schema}.${seq.name}`,
        column: seq.column,
        increment: seq.increment,
        lastValue: state.lastValue,
        isCalled: state.isCalled,
        columnExtreme: extreme,
        advancedTo: plan.setTo,
        problem: plan.problem,
      }
      if (audit && plan.setTo !== null) {
        try {
          const r = await side.to.client.query(advanceSequenceSql(seq, plan.setTo, seq.increment))
          // No row: another session moved it past the value in the meantime; nothing to undo.
          if (r.rowCount === 0) step.advancedTo = null
        } catch (err) {
          step.advancedTo = null
          step.problem = `setval failed: ${(err as Error).message}`
        }
        if (step.advancedTo !== null) await pair.a.client.query(sequenceAuditSql(t.sql, audit.mergeId, audit.resolvedBy, {...step, advancedTo: step.advancedTo}))
      }
      steps.push(step)
    }
  }
  return steps
}

/** Writes one table's merge: B's transaction, A's transaction (with the audit), B commits, A commits. */
async function writeTable(p: Prepared, t: PreparedTable, a: TableAnalysis, decisions: Map<string, Resolution>, o: MergeOptions, mergeId: string, out: TableOutcome, progress: MergeProgress): Promise<void> {
  const {pair} = p
  const batch = o.batchRows ?? 1000
  const rep = p.replica.get(t.label)!
  const resolvedBy = `strategy:${o.strategy}`
  await withOrigin(pair.a, rep.a, () =>
    withOrigin(pair.b, rep.b, async () => {
      await setupWrites(pair.b, rep.b)
      try {
        await setupWrites(pair.a, rep.a)
        try {
          const audit = async (rows: AuditRow[]) => {
            for (const c of chunk(rows, batch)) await pair.a.client.query(auditInsertSql(t.sql, c, mergeId, resolvedBy))
          }
          // One-sided rows, both ways.
          for (const [from, to, keys, dir] of [
            [pair.a, pair.b, a.aOnlyRows.map((r) => r.key), 'a_to_b'],
            [pair.b, pair.a, a.bOnlyRows.map((r) => r.key), 'b_to_a'],
          ] as const) {
            for (const keysBatch of chunk(keys, batch)) {
              if (o.signal?.aborted) throw new CancelledError('the merge was cancelled; nothing of this table was committed')
              const rows = [...(await fetchRows(from, t, keysBatch)).values()]
              await copyRows(to, t, rows)
              await audit(rows.map((r) => ({key: r.key, category: dir === 'a_to_b' ? 'local_only' : 'remote_only', resolution: dir === 'a_to_b' ? 'transferred_a_to_b' : 'transferred_b_to_a', a: dir === 'a_to_b' ? r.json : null, b: dir === 'b_to_a' ? r.json : null})))
              if (dir === 'a_to_b') out.transferredAToB += rows.length
              else out.transferredBToA += rows.length
              progress.add({rows: rows.length}, t.label)
            }
          }
          // Conflicts: both rows for the audit, the winner's values onto the loser.
          for (const keysBatch of chunk(a.conflicts.map((c) => c.key), batch)) {
            if (o.signal?.aborted) throw new CancelledError('the merge was cancelled; nothing of this table was committed')
            const [ra, rb] = await Promise.all([fetchRows(pair.a, t, keysBatch), fetchRows(pair.b, t, keysBatch)])
            const toB: Array<{key: string[]; values: Array<string | null>}> = []
            const toA: Array<{key: string[]; values: Array<string | null>}> = []
            const rows: AuditRow[] = []
            for (const k of keysBatch) {
              const id = JSON.stringify(k)
              const res = decisions.get(id) ?? 'skipped'
              const x = ra.get(id)
              const y = rb.get(id)
              if (!x || !y) continue // changed since the analysis: left for the next run
              if (res === 'kept_a') toB.push({key: k, values: x.values})
              else if (res === 'kept_b') toA.push({key: k, values: y.values})
              rows.push({key: k, category: 'conflict', resolution: res, a: x.json, b: y.json})
              if (res === 'kept_a') out.keptA++
              else if (res === 'kept_b') out.keptB++
              else {
                out.skipped++
                out.skippedKeys.push(k)
              }
            }
            const ub = toB.length ? updateRowsSql(t.sql, toB) : null
            const ua = toA.length ? updateRowsSql(t.sql, toA) : null
            if (ub) await pair.b.client.query(ub)
            if (ua) await pair.a.client.query(ua)
            await audit(rows)
            progress.add({rows: keysBatch.length}, t.label)
          }
          await pair.b.client.query('COMMIT')
          await pair.a.client.query('COMMIT')
        } catch (err) {
          await pair.a.client.query('ROLLBACK').catch(() => {})
          throw err
        }
      } catch (err) {
        await pair.b.client.query('ROLLBACK').catch(() => {})
        throw err
      }
    }),
  )
}

export async function runMerge(o: MergeOptions): Promise<MergeResult> {
  const progress = o.progress ?? silentProgress
  const started = performance.now()
  const dryRun = o.dryRun ?? false
  const pair = await openPair(o.nodeA, o.nodeB)
  let mergeId: string | null = null
  const outcomes: TableOutcome[] = []
  let p: Prepared | undefined
  try {
    progress.plan?.(['preflight', 'merge'])
    progress.phase('preflight')
    p = await preflight(pair, o)
    for (const w of p.warnings) progress.message(w)
    const labels = p.order.map((t) => t.label)
    // Tables an earlier attempt of the same job merged (a retry after that attempt was lost).
    let earlier = new Map<string, EarlierTable>()
    if (!dryRun) {
      mergeId = o.mergeId ?? randomUUID()
      earlier = await recordMerge(pair.a, mergeId, {labels, strategy: o.strategy, timestampColumn: o.timestampColumn ?? null, jobId: o.jobId ?? null, nodeB: pair.b.describe})
      if (earlier.size) {
        progress.message(`resuming merge ${mergeId}: ${[...earlier.keys()].join(', ')} merged by an earlier attempt of job ${o.jobId} (audited); the other tables are merged now`)
      }
    }
    progress.phase('merge', {items: p.order.length})
    // Every table is analysed before the first write, so a refusal (checkEcho) leaves both nodes untouched.
    const planned: Array<{t: PreparedTable; a: TableAnalysis; decisions: Awaited<ReturnType<typeof decideTable>>}> = []
    for (const t of p.order) {
      if (o.signal?.aborted) throw new CancelledError('the merge was cancelled')
      progress.item(t.label)
      const a = await analyzeTable(pair, t, {...o, progress})
      planned.push({t, a, decisions: await decideTable(pair, t, a, o.strategy, p.timestamp.get(t.label), o.batchRows ?? 1000)})
    }
    checkEcho(p, planned)
    for (const {t, a, decisions} of planned) {
      if (o.signal?.aborted) throw new CancelledError('the merge was cancelled')
      const ts = p.timestamp.get(t.label)
      const out: TableOutcome = {
        table: t.label,
        key: a.key,
        timestampColumn: ts ?? null,
        replicaRole: p.replica.get(t.label)!,
        total: a.total,
        match: a.match,
        conflict: a.conflict,
        aOnly: a.aOnly,
        bOnly: a.bOnly,
        transferredAToB: 0,
        transferredBToA: 0,
        keptA: 0,
        keptB: 0,
        skipped: 0,
        skippedKeys: [],
        sequences: [],
      }
      if (dryRun) {
        out.transferredAToB = a.aOnly
        out.transferredBToA = a.bOnly
        for (const c of a.conflicts) {
          const r = decisions.get(JSON.stringify(c.key))
          if (r === 'kept_a') out.keptA++
          else if (r === 'kept_b') out.keptB++
          else {
            out.skipped++
            out.skippedKeys.push(c.key)
          }
        }
      } else if (earlier.has(t.label)) {
        // Merged and audited by the earlier attempt: its audit is what was done; nothing is
        // written again (the data now matches) and no decision is audited twice.
        Object.assign(out, earlierOutcome(earlier.get(t.label)!, a.total, t.sql.key.map((k) => k.name)))
      } else if (a.aOnly + a.bOnly + a.conflict > 0) {
        await writeTable(p, t, a, decisions, o, mergeId!, out, progress)
      }
      out.sequences = await advanceSequences(pair, t, a, decisions, out, dryRun ? null : {mergeId: mergeId!, resolvedBy: `strategy:${o.strategy}`})
      for (const s of out.sequences) if (s.problem) p.warnings.push(`${t.label}: sequence ${s.sequence} on node ${s.node} is behind ${s.column} and was not advanced: ${s.problem}`)
      outcomes.push(out)
      progress.itemDone(t.label)
    }
    const result: MergeResult = {
      mergeId,
      dryRun,
      strategy: o.strategy,
      nodeA: pair.a.describe,
      nodeB: pair.b.describe,
      order: labels,
      warnings: p.warnings,
      tables: outcomes,
      totals: totals(outcomes),
      seconds: (performance.now() - started) / 1000,
    }
    if (mergeId) await finishMergeRow(pair.a, mergeId, 'complete', result, [])
    return result
  } catch (err) {
    if (mergeId) {
      const status = err instanceof CancelledError ? 'cancelled' : 'failed'
      const partial = {tables: outcomes, totals: totals(outcomes)} as Pick<MergeResult, 'tables' | 'totals'>
      await finishMergeRow(pair.a, mergeId, status, partial, [(err as Error).message]).catch(() => {})
    }
    throw err
  } finally {
    await pair.close()
  }
}

/** What an earlier attempt of the same job did to one table, from its audit rows. */
interface EarlierTable {
  transferredAToB: number
  transferredBToA: number
  keptA: number
  keptB: number
  /** pk_value of each conflict left for manual resolution. */
  skipped: Array<Record<string, unknown>>
}

/**
 * Records the merge on node A. The merge id is already there when this is a retry of the same job
 * (its earlier attempt was lost: killed, or its connection dropped): the record is reused, and
 * the tables whose writes that attempt committed are returned with what its audit says it did.
 * A table's audit rows commit with node A's writes, after node B's: a table with audit rows is
 * merged on both nodes. The id recorded by anything else (another job, a direct run) is refused.
 */
async function recordMerge(
  a: NodeSession,
  mergeId: string,
  m: {labels: string[]; strategy: Strategy; timestampColumn: string | null; jobId: number | null; nodeB: string},
): Promise<Map<string, EarlierTable>> {
  const prior = await a.client.query<{job_id: string | null; status: string}>(`SELECT job_id::text, status FROM steep_repl.merges WHERE merge_id = $1`, [mergeId])
  if (!prior.rows.length) {
    await a.client.query(
      `INSERT INTO steep_repl.merges (merge_id, node_a, node_b, tables, strategy, timestamp_column, dry_run, job_id) VALUES ($1, $2, $3, $4, $5, $6, false, $7)`,
      [mergeId, a.describe, m.nodeB, m.labels, m.strategy, m.timestampColumn, m.jobId],
    )
    return new Map()
  }
  const row = prior.rows[0]!
  if (m.jobId === null || row.job_id !== String(m.jobId)) {
    throw new StateError(`merge ${mergeId} is already recorded on node A (${row.status}${row.job_id ? `, job ${row.job_id}` : ''}): a merge id is used once`, {
      hint: 'Run the merge again without giving its id; steep-repl merge report shows the recorded one.',
    })
  }
  await a.client.query(`UPDATE steep_repl.merges SET status = 'running', completed_at = NULL WHERE merge_id = $1`, [mergeId])
  const {rows} = await a.client.query<{schema: string; name: string; resolution: string; n: number; skipped: Array<Record<string, unknown>> | null}>(
    `SELECT l.table_schema AS schema, l.table_name AS name, l.resolution, count(*)::int AS n,
            CASE WHEN l.resolution = 'skipped' THEN jsonb_agg(l.pk_value) END AS skipped
       FROM steep_repl.merge_audit_log l
      WHERE l.merge_id = $1 AND l.category IN ('local_only', 'remote_only', 'conflict')
      GROUP BY 1, 2, 3`,
    [mergeId],
  )
  const out = new Map<string, EarlierTable>()
  for (const r of rows) {
    const label = tableLabel({schema: r.schema, name: r.name})
    const e = out.get(label) ?? {transferredAToB: 0, transferredBToA: 0, keptA: 0, keptB: 0, skipped: []}
    if (r.resolution === 'transferred_a_to_b') e.transferredAToB += r.n
    else if (r.resolution === 'transferred_b_to_a') e.transferredBToA += r.n
    else if (r.resolution === 'kept_a') e.keptA += r.n
    else if (r.resolution === 'kept_b') e.keptB += r.n
    else if (r.resolution === 'skipped') e.skipped.push(...(r.skipped ?? []))
    out.set(label, e)
  }
  return out
}

/** A table merged by an earlier attempt, counted as the merge saw it before its writes. */
function earlierOutcome(e: EarlierTable, total: number, key: string[]): Partial<TableOutcome> {
  const conflict = e.keptA + e.keptB + e.skipped.length
  return {
    total,
    aOnly: e.transferredAToB,
    bOnly: e.transferredBToA,
    conflict,
    match: Math.max(0, total - e.transferredAToB - e.transferredBToA - conflict),
    transferredAToB: e.transferredAToB,
    transferredBToA: e.transferredBToA,
    keptA: e.keptA,
    keptB: e.keptB,
    skipped: e.skipped.length,
    skippedKeys: e.skipped.map((pk) => key.map((k) => String(pk[k]))),
  }
}

async function finishMergeRow(a: NodeSession, mergeId: string, status: 'complete' | 'failed' | 'cancelled', r: Pick<MergeResult, 'tables' | 'totals'>, errors: string[]): Promise<void> {
  const t = r.totals
  const summary = r.tables.map(({skippedKeys: _s, ...rest}) => rest)
  await a.client.query(
    `UPDATE steep_repl.merges SET status = $2, completed_at = now(), total_rows = $3, total_matches = $4, total_conflicts = $5, total_a_only = $6,
            total_b_only = $7, rows_transferred_a_to_b = $8, rows_transferred_b_to_a = $9, conflicts_resolved = $10, conflicts_skipped = $11,
            summary = $12::jsonb, errors = $13::jsonb
      WHERE merge_id = $1`,
    [mergeId, status, t.total, t.match, t.conflict, t.aOnly, t.bOnly, t.transferredAToB, t.transferredBToA, t.conflictsResolved, t.conflictsSkipped, JSON.stringify(summary), JSON.stringify(errors)],
  )
}
