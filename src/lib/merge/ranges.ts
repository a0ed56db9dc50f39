// Primary-key ranges, pure. A key is the text form of the primary-key columns, in key order (the
// server turns each column to text and back with identical session settings, so the text is exact).
// A range is half-open, [lo, hi): lo inclusive, hi exclusive, and null means unbounded, so the first
// range of a table has no lower bound and the last no upper bound. Cutting a range at increasing keys
// gives ranges that cover it exactly once: no boundary row is counted twice or missed (the pgEdge
// ACE v2.1.1 lesson).

/** The text of each primary-key column, in key order. */
export type Key = string[]

export interface KeyRange {
  /** Inclusive lower bound; null: unbounded. */
  lo: Key | null
  /** Exclusive upper bound; null: unbounded. */
  hi: Key | null
}

export const WHOLE: KeyRange = {lo: null, hi: null}

/** A stable identity for a key (map keys, dedup, audit). */
export function keyId(key: Key): string {
  return JSON.stringify(key)
}

/** Cuts `range` at `cuts` (increasing, inside the range): cuts.length + 1 contiguous ranges. */
export function cutRange(range: KeyRange, cuts: Key[]): KeyRange[] {
  const out: KeyRange[] = []
  let lo = range.lo
  for (const c of cuts) {
    out.push({lo, hi: c})
    lo = c
  }
  out.push({lo, hi: range.hi})
  return out
}

export interface BlockPlanOptions {
  /** Wanted rows per top-level block. */
  blockRows: number
  /** Upper bound on top-level blocks (bounds the boundaries sent to each node). */
  maxBlocks: number
  /** Sampled keys wanted per block, to place boundaries evenly. */
  samplePerBlock?: number
}

export interface BlockPlan {
  /** Top-level blocks; 1 means the whole table is one range (no sampling). */
  blocks: number
  /** Percentage of rows to sample (TABLESAMPLE), 0 when blocks is 1. */
  samplePercent: number
  /** BERNOULLI (row-level, reads every page) or SYSTEM (page-level, for very large tables). */
  sampleMethod: 'BERNOULLI' | 'SYSTEM'
}

/** Above this many rows, sampling reads pages instead of every row. */
export const SYSTEM_SAMPLE_ABOVE = 20_000_000

/** How many top-level blocks a table of `estRows` rows gets, and how to sample their boundaries. */
export function planBlocks(estRows: number, o: BlockPlanOptions): BlockPlan {
  const rows = Number.isFinite(estRows) && estRows > 0 ? estRows : 0
  const blocks = Math.max(1, Math.min(o.maxBlocks, Math.ceil(rows / Math.max(1, o.blockRows))))
  if (blocks <= 1) return {blocks: 1, samplePercent: 0, sampleMethod: 'BERNOULLI'}
  const wanted = blocks * (o.samplePerBlock ?? 10)
  const pct = Math.min(100, Math.max(0.0001, (100 * wanted) / rows))
  return {blocks, samplePercent: Number(pct.toPrecision(6)), sampleMethod: rows > SYSTEM_SAMPLE_ABOVE ? 'SYSTEM' : 'BERNOULLI'}
}

/** How many parts to split a differing range of `rows` rows into. */
export function splitParts(rows: number, leafRows: number, fanout: number): number {
  if (rows <= leafRows) return 1
  return Math.max(2, Math.min(fanout, Math.ceil(rows / Math.max(1, leafRows))))
}

/** Integer key types whose top-level cuts can be evenly spaced values (no sample needed). */
export const INTEGER_KEY_TYPES: ReadonlySet<string> = new Set(['smallint', 'integer', 'bigint'])

/**
 * Evenly spaced top-level cuts of a single integer key over [lo, hi] holding about `rows` rows:
 * every `width` values, about `blockRows` rows a block when the keys are dense; keys outside fall in
 * the open first and last ranges. Null when the keys are sparse there (under one row per two values
 * on average: gaps would make the blocks uneven), so the caller looks elsewhere or samples. The
 * cuts are base + k·width for k = 1..count (the first is lo, the last at or above hi).
 */
export function evenCuts(lo: bigint, hi: bigint, rows: number, o: {blockRows: number; maxBlocks: number}): {base: bigint; width: bigint; count: number} | null {
  if (hi <= lo || !(rows > 0)) return null
  const span = hi - lo
  if (rows / Number(span) < 0.5) return null
  const n = Math.max(1, Math.min(o.maxBlocks - 2, Math.ceil(rows / Math.max(1, o.blockRows))))
  const width = (span + BigInt(n) - 1n) / BigInt(n)
  if (width < 1n) return null
  return {base: lo - width, width, count: n + 1}
}

/**
 * The same from the planner's histogram of the column (pg_stats.histogram_bounds, each bucket
 * ~1/(len-1) of the rows): from the second to the next-to-last bound, so the outermost buckets, with
 * any outliers, fall in the open first and last ranges.
 */
export function arithmeticCuts(bounds: bigint[], estRows: number, o: {blockRows: number; maxBlocks: number}): {base: bigint; width: bigint; count: number} | null {
  if (bounds.length < 4 || !(estRows > 0)) return null
  return evenCuts(bounds[1]!, bounds[bounds.length - 2]!, (estRows * (bounds.length - 3)) / (bounds.length - 1), o)
}

/** The cut keys base + k·width, k = 1..count. */
export function arithmeticKeys(a: {base: bigint; width: bigint; count: number}): Key[] {
  return Array.from({length: a.count}, (_, k) => [String(a.base + BigInt(k + 1) * a.width)])
}

/** The (base, width) of cuts that are one integer column evenly spaced (at least 2 cuts), else null. */
export function asArithmetic(cuts: Key[]): {base: bigint; width: bigint} | null {
  if (cuts.length < 2 || cuts.some((c) => c.length !== 1 || !/^-?\d+$/.test(c[0]!))) return null
  const first = BigInt(cuts[0]![0]!)
  const width = BigInt(cuts[1]![0]!) - first
  if (width < 1n) return null
  for (let i = 1; i < cuts.length; i++) if (BigInt(cuts[i]![0]!) !== first + BigInt(i) * width) return null
  return {base: first - width, width}
}

/**
 * Cuts of a closed range of a single integer key into `parts` pieces of equal width, when the keys
 * are dense there (hi - lo at most twice the rows): no statement needed. Each piece is narrower than
 * the range, so the split always progresses (a range one value wide holds at most one row, a leaf).
 * Null when the range is open, sparse or not integer text: cut by the rows instead.
 */
export function evenSplit(range: KeyRange, rows: number, parts: number): Key[] | null {
  if (!range.lo || !range.hi || range.lo.length !== 1 || parts < 2) return null
  if (!/^-?\d+$/.test(range.lo[0]!) || !/^-?\d+$/.test(range.hi[0]!)) return null
  const lo = BigInt(range.lo[0]!)
  const hi = BigInt(range.hi[0]!)
  const span = hi - lo
  if (span < 2n || Number(span) > 2 * Math.max(1, rows)) return null
  const width = (span + BigInt(parts) - 1n) / BigInt(parts)
  const cuts: Key[] = []
  for (let c = lo + width; c < hi; c += width) cuts.push([String(c)])
  return cuts
}
