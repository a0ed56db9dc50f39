// The block-hash diff of one table between two nodes, pure: it runs over an abstract RangeSource
// ("hash these ranges on node X", "cut these ranges on node X", "give me the (key, hash) pairs of
// these ranges on node X") and never sees SQL, so it is unit-tested with plain values.
//
// 1. The top-level cuts (chosen once, from a sample) split the table into half-open blocks; both
//    nodes compute (row count, hash) per block at the same time.
// 2. Blocks whose count or hash differ are cut again, at keys of the node that has more rows there,
//    and both nodes hash the pieces; level by level, all differing ranges of a level in one batch.
// 3. Ranges small enough (leafRows) are leaves: only there are (key, row hash) pairs fetched, and
//    matched by key across all leaves (so a row that an ordering difference put in another leaf on
//    the other node is still matched, never reported as missing on both sides).
// Work and bytes grow with the number of differences, not with the table size.

import {CancelledError} from '../errors.js'
import {cutRange, type Key, keyId, type KeyRange, splitParts} from './ranges.js'

export type Side = 'a' | 'b'

export interface BlockStat {
  count: number
  /** The block hash (decimal text); equal rows on both nodes give equal hashes. */
  hash: string
}

export interface LeafRow {
  key: Key
  hash: string
}

export interface SplitRequest {
  range: KeyRange
  /** Rows of the range on the side asked. */
  rows: number
  /** Wanted parts (returns at most parts - 1 cuts). */
  parts: number
}

/** What the diff needs from a node; one implementation runs SQL (source.ts), tests use arrays. */
export interface RangeSource {
  /** Block stats of the whole table cut at `cuts` (cuts.length + 1 entries), in one pass. */
  cutStats(side: Side, cuts: Key[]): Promise<BlockStat[]>
  /** Block stats of each of the (disjoint) ranges, in order. */
  rangeStats(side: Side, ranges: KeyRange[]): Promise<BlockStat[]>
  /** For each request, increasing keys inside its range that cut it into about `parts` equal parts. */
  splitKeys(side: Side, requests: SplitRequest[]): Promise<Key[][]>
  /** (key, row hash) of every row in the ranges, in key order within each range. */
  leafRows(side: Side, ranges: KeyRange[]): Promise<LeafRow[]>
}

export interface DiffOptions {
  /** Top-level cut keys (increasing). Empty: the whole table is one block. */
  cuts: Key[]
  /** A differing range with at most this many rows (on the larger side) becomes a leaf. */
  leafRows: number
  /** A differing range is cut into at most this many parts per level. */
  fanout: number
  /** Ranges per statement (stats, splits, leaves). */
  batch: number
  signal?: AbortSignal
  onProgress?: (p: DiffProgress) => void
}

export interface DiffProgress {
  stage: 'blocks' | 'split' | 'leaves' | 'done'
  level: number
  /** Ranges compared so far (both nodes). */
  rangesCompared: number
  /** Ranges found differing at this level. */
  differing: number
  leafRanges: number
}

export interface RowDiff {
  key: Key
  hashA: string | null
  hashB: string | null
}

export interface DiffStats {
  topBlocks: number
  levels: number
  rangesCompared: number
  differingRanges: number
  leafRanges: number
  leafRowsA: number
  leafRowsB: number
}

/** The upstream categories, counted (a table's analysis and a merge's outcome share them). */
export interface OverlapCounts {
  total: number
  match: number
  conflict: number
  aOnly: number
  bOnly: number
}

export interface DiffResult extends OverlapCounts {
  conflicts: RowDiff[]
  aOnlyRows: RowDiff[]
  bOnlyRows: RowDiff[]
  stats: DiffStats
}

interface Pending {
  range: KeyRange
  /** Position in the split tree (top block, piece, piece, …): sorting by it is key order. */
  path: number[]
  a: BlockStat
  b: BlockStat
}

interface Leaf {
  range: KeyRange
  path: number[]
}

function byPath(x: {path: number[]}, y: {path: number[]}): number {
  const n = Math.min(x.path.length, y.path.length)
  for (let i = 0; i < n; i++) if (x.path[i] !== y.path[i]) return x.path[i]! - y.path[i]!
  return x.path.length - y.path.length
}

/** A guard against a source that never lets ranges shrink. */
const MAX_LEVELS = 256

const EMPTY: BlockStat = {count: 0, hash: '0'}

export function sameBlock(a: BlockStat, b: BlockStat): boolean {
  return a.count === b.count && a.hash === b.hash
}

function check(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError('the merge analysis was cancelled')
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += Math.max(1, size)) out.push(items.slice(i, i + Math.max(1, size)))
  return out
}

async function batched<T, R>(items: T[], size: number, fn: (chunk: T[]) => Promise<R[]>): Promise<R[]> {
  const out: R[] = []
  for (const c of chunks(items, size)) {
    const r = await fn(c)
    if (r.length !== c.length) throw new Error(`range source returned ${r.length} results for ${c.length} ranges`)
    out.push(...r)
  }
  return out
}

export async function diffTable(src: RangeSource, o: DiffOptions): Promise<DiffResult> {
  const stats: DiffStats = {topBlocks: o.cuts.length + 1, levels: 0, rangesCompared: 0, differingRanges: 0, leafRanges: 0, leafRowsA: 0, leafRowsB: 0}
  let match = 0
  const leaves: Leaf[] = []
  const report = (stage: DiffProgress['stage'], level: number, differing: number) =>
    o.onProgress?.({stage, level, rangesCompared: stats.rangesCompared, differing, leafRanges: leaves.length})

  check(o.signal)
  const top = cutRange({lo: null, hi: null}, o.cuts)
  const [topA, topB] = await Promise.all([src.cutStats('a', o.cuts), src.cutStats('b', o.cuts)])
  if (topA.length !== top.length || topB.length !== top.length) throw new Error('range source returned the wrong number of top-level blocks')
  stats.rangesCompared += top.length

  // Compares the ranges' stats: equal blocks are all matches, the others go on.
  const compare = (ranges: Leaf[], sa: BlockStat[], sb: BlockStat[]): Pending[] => {
    const differing: Pending[] = []
    ranges.forEach((r, i) => {
      const a = sa[i] ?? EMPTY
      const b = sb[i] ?? EMPTY
      if (sameBlock(a, b)) match += a.count
      else differing.push({range: r.range, path: r.path, a, b})
    })
    stats.differingRanges += differing.length
    return differing
  }

  let frontier = compare(top.map((range, i) => ({range, path: [i]})), topA, topB)
  report('blocks', 0, frontier.length)
  let level = 0
  while (frontier.length > 0) {
    check(o.signal)
    level++
    if (level > MAX_LEVELS) throw new Error(`the diff did not converge after ${MAX_LEVELS} levels`)
    // Which ranges are leaves, which are cut (by the side with more rows there).
    const toSplit: Record<Side, Array<{p: Pending; req: SplitRequest}>> = {a: [], b: []}
    for (const p of frontier) {
      const rows = Math.max(p.a.count, p.b.count)
      const parts = splitParts(rows, o.leafRows, o.fanout)
      if (parts <= 1) leaves.push({range: p.range, path: p.path})
      else {
        const side: Side = p.a.count >= p.b.count ? 'a' : 'b'
        toSplit[side].push({p, req: {range: p.range, rows, parts}})
      }
    }
    if (toSplit.a.length + toSplit.b.length === 0) break
    stats.levels = level
    const [cutsA, cutsB] = await Promise.all(
      (['a', 'b'] as const).map((side) =>
        toSplit[side].length ? batched(toSplit[side], o.batch, (c) => src.splitKeys(side, c.map((x) => x.req))) : Promise.resolve([] as Key[][]),
      ),
    )
    check(o.signal)
    // Pieces to hash, in key order within each parent (parents keep their own order).
    const pieces: Leaf[] = []
    const add = (items: Array<{p: Pending}>, cuts: Key[][]) =>
      items.forEach((it, i) => {
        const c = cuts[i] ?? []
        if (c.length === 0) leaves.push({range: it.p.range, path: it.p.path})
        else pieces.push(...cutRange(it.p.range, c).map((range, j) => ({range, path: [...it.p.path, j]})))
      })
    add(toSplit.a, cutsA!)
    add(toSplit.b, cutsB!)
    report('split', level, pieces.length)
    if (pieces.length === 0) break
    pieces.sort(byPath)
    const [sa, sb] = await Promise.all((['a', 'b'] as const).map((side) => batched(pieces, o.batch, (c) => src.rangeStats(side, c.map((x) => x.range)))))
    stats.rangesCompared += pieces.length
    frontier = compare(pieces, sa!, sb!)
    report('blocks', level, frontier.length)
  }

  // Leaves: (key, hash) pairs from both nodes, matched by key across all leaves.
  check(o.signal)
  stats.leafRanges = leaves.length
  leaves.sort(byPath)
  report('leaves', level, leaves.length)
  const [rowsA, rowsB] = leaves.length
    ? await Promise.all((['a', 'b'] as const).map((side) => leafRowsBatched(src, side, leaves.map((l) => l.range), o.batch)))
    : [[], []]
  stats.leafRowsA = rowsA!.length
  stats.leafRowsB = rowsB!.length
  const result = categorize(rowsA!, rowsB!)
  match += result.match
  report('done', level, 0)
  return {
    total: match + result.conflicts.length + result.aOnlyRows.length + result.bOnlyRows.length,
    match,
    conflict: result.conflicts.length,
    aOnly: result.aOnlyRows.length,
    bOnly: result.bOnlyRows.length,
    conflicts: result.conflicts,
    aOnlyRows: result.aOnlyRows,
    bOnlyRows: result.bOnlyRows,
    stats,
  }
}

async function leafRowsBatched(src: RangeSource, side: Side, leaves: KeyRange[], batch: number): Promise<LeafRow[]> {
  const out: LeafRow[] = []
  for (const c of chunks(leaves, batch)) out.push(...(await src.leafRows(side, c)))
  return out
}

/** Matches (key, hash) pairs of both nodes by key: match, conflict, only on A, only on B. */
export function categorize(rowsA: LeafRow[], rowsB: LeafRow[]): {match: number; conflicts: RowDiff[]; aOnlyRows: RowDiff[]; bOnlyRows: RowDiff[]} {
  const inB = new Map<string, LeafRow>()
  for (const r of rowsB) {
    const id = keyId(r.key)
    if (inB.has(id)) throw new Error(`key ${id} came back twice from node B: the ranges overlap`)
    inB.set(id, r)
  }
  const seenA = new Set<string>()
  let match = 0
  const conflicts: RowDiff[] = []
  const aOnlyRows: RowDiff[] = []
  for (const r of rowsA) {
    const id = keyId(r.key)
    if (seenA.has(id)) throw new Error(`key ${id} came back twice from node A: the ranges overlap`)
    seenA.add(id)
    const b = inB.get(id)
    if (!b) aOnlyRows.push({key: r.key, hashA: r.hash, hashB: null})
    else if (b.hash === r.hash) match++
    else conflicts.push({key: r.key, hashA: r.hash, hashB: b.hash})
  }
  const bOnlyRows = rowsB.filter((r) => !seenA.has(keyId(r.key))).map((r) => ({key: r.key, hashA: null, hashB: r.hash}))
  return {match, conflicts, aOnlyRows, bOnlyRows}
}
