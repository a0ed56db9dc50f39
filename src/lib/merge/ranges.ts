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
