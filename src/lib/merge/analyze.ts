// Overlap analysis of tables between two live nodes (merge analyze): pre-flight of the tables,
// top-level cuts chosen once from a sample of the node with more rows, then the block-hash diff of
// diff.ts over both nodes (each node's reads in one REPEATABLE READ READ ONLY transaction per
// table, so each side is a consistent picture).

import {CancelledError, ConnectionError, SchemaMismatchError, StateError, UsageError} from '../errors.js'
import type {ConnParams} from '../connection/resolve.js'
import {compareFingerprintSets} from '../schema/compare.js'
import {computeFingerprints} from '../schema/fingerprint-io.js'
import {estimateRows, loadTables} from './catalog.js'
import {type DiffResult, type DiffStats, diffTable, type OverlapCounts, type RowDiff} from './diff.js'
import {checkTables, SCHEMA_KINDS, schemaNotes, type TableFacts, type TablePair} from './preflight.js'
import {type MergeProgress, silentProgress} from './progress.js'
import {arithmeticCuts, arithmeticKeys, evenCuts, INTEGER_KEY_TYPES, type Key, planBlocks} from './ranges.js'
import {type NodeSession, openNodeSession} from './session.js'
import {SqlRangeSource} from './source.js'
import {recordHashable, type SqlTable} from './sql.js'
import {tableLabel, type TableName} from './tables.js'

export interface TuningOptions {
  /** Wanted rows per top-level block (default 64). */
  blockRows?: number
  /** Most top-level blocks per table (default 65536; composite keys fewer). */
  maxBlocks?: number
  /** Differing ranges of at most this many rows are compared row by row (default 8). */
  leafRows?: number
  /** Parts a differing range is cut into per level (default 8). */
  fanout?: number
  /** Ranges per statement (default 2000). */
  batch?: number
}

export const DEFAULT_TUNING: Required<TuningOptions> = {blockRows: 64, maxBlocks: 65536, leafRows: 8, fanout: 8, batch: 2000}

export interface TableAnalysis extends OverlapCounts {
  table: string
  schema: string
  name: string
  key: string[]
  conflicts: RowDiff[]
  aOnlyRows: RowDiff[]
  bOnlyRows: RowDiff[]
  stats: DiffStats & {estRows: number; sampledOn: 'A' | 'B' | null; cutsFrom: 'none' | 'minmax' | 'histogram' | 'sample'; statements: number; seconds: number; bytesA: number; bytesB: number}
}

export interface PreparedTable {
  name: TableName
  label: string
  a: TableFacts
  b: TableFacts
  sql: SqlTable
  /** What schema compare reports for this table without blocking (defaults, column order, …). */
  notes: string[]
}

export interface NodePair {
  a: NodeSession
  b: NodeSession
  close(): Promise<void>
}

/** Opens both nodes at once; a failure names the node (exit 6). */
export async function openPair(nodeA: ConnParams, nodeB: ConnParams): Promise<NodePair> {
  const [ra, rb] = await Promise.allSettled([openNodeSession('A', nodeA), openNodeSession('B', nodeB)])
  const fail = (r: PromiseSettledResult<NodeSession>, label: string) => {
    if (r.status === 'fulfilled') return undefined
    const e = r.reason as Error & {hint?: string}
    return e instanceof ConnectionError ? new ConnectionError(`node ${label}: ${e.message}`, {cause: e, hint: e.hint}) : e
  }
  const err = fail(ra, 'A') ?? fail(rb, 'B')
  if (err) {
    if (ra.status === 'fulfilled') await ra.value.close()
    if (rb.status === 'fulfilled') await rb.value.close()
    throw err
  }
  const a = (ra as PromiseFulfilledResult<NodeSession>).value
  const b = (rb as PromiseFulfilledResult<NodeSession>).value
  if (a.identity === b.identity) {
    await Promise.all([a.close(), b.close()])
    throw new UsageError(`--node-a and --node-b are the same database (${a.describe})`, {hint: 'Give the two nodes to compare.'})
  }
  return {a, b, close: async () => void (await Promise.all([a.close(), b.close()]))}
}

/** Loads and checks the tables on both nodes; throws before anything else happens. */
export async function prepareTables(pair: NodePair, tables: TableName[]): Promise<PreparedTable[]> {
  if (pair.a.encoding !== pair.b.encoding) {
    throw new SchemaMismatchError(`node A's database is encoded ${pair.a.encoding} but node B's ${pair.b.encoding}: rows would not hash alike`, {
      hint: 'Merge only between databases with the same encoding.',
    })
  }
  // The two nodes at once, each connection one statement at a time.
  const facts = async (c: NodePair['a']['client']) => ({tables: await loadTables(c, tables), prints: await computeFingerprints(c, {tables})})
  const [{tables: fa, prints: pa}, {tables: fb, prints: pb}] = await Promise.all([facts(pair.a.client), facts(pair.b.client)])
  // The schema compare of these tables (the function behind `steep-repl schema compare`).
  const strip = (f: typeof pa) => f.map(({input: _i, ...x}) => x)
  const compared = compareFingerprintSets(strip(pa), strip(pb))
  const pairs: TablePair[] = tables.map((t, i) => ({
    table: tableLabel(t),
    a: fa[i]!,
    b: fb[i]!,
    schema: compared.find((c) => c.schema === t.schema && c.table === t.name) ?? null,
  }))
  const issues = checkTables(pairs)
  if (issues.length) {
    const text = issues.map((i) => i.message).join('; ')
    if (issues.every((i) => SCHEMA_KINDS.has(i.kind))) {
      throw new SchemaMismatchError(`the tables differ between the nodes (schema compare): ${text}`, {
        hint: 'Make the table definitions identical on both nodes (steep-repl schema compare / schema diff show the differences), then run again. Nothing was written.',
      })
    }
    throw new StateError(text, {
      hint: issues.some((i) => i.kind === 'no_primary_key') ? 'Rows are matched by primary key: add one (ALTER TABLE … ADD PRIMARY KEY) or leave the table out of --tables.' : 'Check --tables and the databases the connections point to.',
    })
  }
  return tables.map((t, i) => {
    const a = fa[i]!
    const b = fb[i]!
    const types = new Map(a.columns.map((c) => [c.name, c.type]))
    return {
      name: t,
      label: tableLabel(t),
      a,
      b,
      notes: schemaNotes([pairs[i]!]),
      sql: {
        schema: a.schema,
        name: a.name,
        kind: a.kind,
        columns: a.columns.map((c) => ({name: c.name, type: c.type, generated: c.generated, typeOid: c.typeOid, send: c.send})),
        key: a.key.map((k) => ({name: k, type: types.get(k)!})),
        // Decided from both nodes, so both compute the same expression (schema compare has
        // already refused tables whose column types differ).
        recordHash: a.columns.every((c) => c.builtin === true) && b.columns.every((c) => c.builtin === true) && recordHashable(a.columns) && recordHashable(b.columns),
      },
    }
  })
}

export interface AnalyzeTableOptions extends TuningOptions {
  signal?: AbortSignal
  progress?: MergeProgress
}

/** Runs the diff of one prepared table; both nodes read in REPEATABLE READ READ ONLY transactions. */
export async function analyzeTable(pair: NodePair, t: PreparedTable, o: AnalyzeTableOptions = {}): Promise<TableAnalysis> {
  const tune = {...DEFAULT_TUNING, ...definedOnly(o)}
  const progress = o.progress ?? silentProgress
  const started = performance.now()
  const bytes0 = {a: pair.a.bytesReceived(), b: pair.b.bytesReceived()}
  const src = new SqlRangeSource(t.sql, pair)
  await Promise.all([pair.a.client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY'), pair.b.client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')])
  try {
    let estA = t.a.estRows
    let estB = t.b.estRows
    if (estA < 0) estA = await estimateRows(pair.a.client, t.name)
    if (estB < 0) estB = await estimateRows(pair.b.client, t.name)
    const est = Math.max(estA, estB)
    const maxBlocks = t.sql.key.length > 1 ? Math.min(tune.maxBlocks, 8192) : tune.maxBlocks
    const plan = planBlocks(est, {blockRows: tune.blockRows, maxBlocks})
    const sampledOn = plan.blocks > 1 ? (estA >= estB ? 'a' : 'b') : null
    let cuts: Key[] = []
    let cutsFrom: 'none' | 'minmax' | 'histogram' | 'sample' = 'none'
    if (sampledOn) {
      // A single integer key with a dense histogram: evenly spaced cuts, no sampling pass, and the
      // top-level pass finds a row's block by division. Otherwise a sample of the keys.
      // The key's min..max first (dense serial keys), else the histogram's inner range (outliers).
      let ar: ReturnType<typeof evenCuts> = null
      if (t.sql.key.length === 1 && INTEGER_KEY_TYPES.has(t.sql.key[0]!.type)) {
        const span = await src.keySpan(sampledOn)
        const o = {blockRows: tune.blockRows, maxBlocks}
        ar = span ? evenCuts(span.lo, span.hi, est, o) : null
        if (ar) cutsFrom = 'minmax'
        else {
          ar = arithmeticCuts((await src.histogram(sampledOn)) ?? [], est, o)
          if (ar) cutsFrom = 'histogram'
        }
      }
      if (ar) cuts = arithmeticKeys(ar)
      else {
        cuts = await src.sampleCuts(sampledOn, plan.blocks, plan.samplePercent, plan.sampleMethod)
        cutsFrom = 'sample'
      }
    }
    const diff: DiffResult = await diffTable(src, {
      cuts,
      leafRows: tune.leafRows,
      fanout: tune.fanout,
      batch: tune.batch,
      signal: o.signal,
      onProgress: (p) => {
        if (p.stage === 'blocks') progress.message(`${t.label}: level ${p.level}, ${p.differing} range(s) differ`)
      },
    })
    await Promise.all([pair.a.client.query('COMMIT'), pair.b.client.query('COMMIT')])
    return {
      table: t.label,
      schema: t.name.schema,
      name: t.name.name,
      key: t.sql.key.map((k) => k.name),
      total: diff.total,
      match: diff.match,
      conflict: diff.conflict,
      aOnly: diff.aOnly,
      bOnly: diff.bOnly,
      conflicts: diff.conflicts,
      aOnlyRows: diff.aOnlyRows,
      bOnlyRows: diff.bOnlyRows,
      stats: {
        ...diff.stats,
        estRows: est,
        sampledOn: sampledOn === 'a' ? 'A' : sampledOn === 'b' ? 'B' : null,
        cutsFrom,
        statements: src.counters.statements,
        seconds: (performance.now() - started) / 1000,
        bytesA: pair.a.bytesReceived() - bytes0.a,
        bytesB: pair.b.bytesReceived() - bytes0.b,
      },
    }
  } catch (err) {
    await Promise.all([pair.a.client.query('ROLLBACK').catch(() => {}), pair.b.client.query('ROLLBACK').catch(() => {})])
    if (o.signal?.aborted && !(err instanceof CancelledError)) throw new CancelledError('the merge analysis was cancelled', {cause: err})
    throw err
  }
}

function definedOnly(o: TuningOptions): TuningOptions {
  const out: TuningOptions = {}
  for (const k of ['blockRows', 'maxBlocks', 'leafRows', 'fanout', 'batch'] as const) {
    const v = o[k]
    if (v !== undefined) out[k] = v
  }
  return out
}

export interface AnalyzeOptions extends AnalyzeTableOptions {
  nodeA: ConnParams
  nodeB: ConnParams
  tables: TableName[]
}

export interface AnalyzeResult {
  nodeA: string
  nodeB: string
  tables: TableAnalysis[]
  totals: {total: number; match: number; conflict: number; aOnly: number; bOnly: number}
  bytesReceived: {a: number; b: number; total: number}
  /** Schema differences of the tables that do not stop a merge (schema compare's non-blocking ones). */
  notes: string[]
  seconds: number
}

export function totalsOf(tables: Array<Pick<TableAnalysis, 'total' | 'match' | 'conflict' | 'aOnly' | 'bOnly'>>): AnalyzeResult['totals'] {
  const t = {total: 0, match: 0, conflict: 0, aOnly: 0, bOnly: 0}
  for (const x of tables) {
    t.total += x.total
    t.match += x.match
    t.conflict += x.conflict
    t.aOnly += x.aOnly
    t.bOnly += x.bOnly
  }
  return t
}

/** merge analyze: opens both nodes, checks the tables, diffs each. */
export async function analyzeOverlap(o: AnalyzeOptions): Promise<AnalyzeResult> {
  const progress = o.progress ?? silentProgress
  const started = performance.now()
  const pair = await openPair(o.nodeA, o.nodeB)
  try {
    progress.phase('preflight')
    const prepared = await prepareTables(pair, o.tables)
    progress.phase('analyze', {items: prepared.length})
    const tables: TableAnalysis[] = []
    for (const t of prepared) {
      if (o.signal?.aborted) throw new CancelledError('the merge analysis was cancelled')
      progress.item(t.label)
      tables.push(await analyzeTable(pair, t, o))
      progress.itemDone(t.label)
    }
    const a = pair.a.bytesReceived()
    const b = pair.b.bytesReceived()
    return {
      nodeA: pair.a.describe,
      nodeB: pair.b.describe,
      tables,
      totals: totalsOf(tables),
      bytesReceived: {a, b, total: a + b},
      notes: prepared.flatMap((t) => t.notes),
      seconds: (performance.now() - started) / 1000,
    }
  } finally {
    await pair.close()
  }
}
