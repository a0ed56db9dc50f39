// Splitting tables into parts that N connections copy at once. Pure: the catalog facts come in as
// plain values (read inside the exported snapshot, so min/max and sizes are exact for it).
//
// A part is a half-open range: [lo, hi) on an integer primary key, or on ctid pages. The first part
// has no lower bound and the last none upper, so no row falls outside every part and none is in
// two (the boundary-row lesson of pgEdge ACE). Parts are scheduled largest first so the long tail
// starts early, and a table split over several rounds of the connections ends in smaller parts
// (partWeights) so the connections finish together.

export interface IntKey {
  column: string
  /** Bounds of the key inside the snapshot, as decimal strings (int8 does not fit a number). */
  min: string
  max: string
}

export interface TableFacts {
  schema: string
  name: string
  /** On-disk size of the heap in bytes (pg_relation_size), at the snapshot. */
  bytes: number
  /** Heap pages (bytes / block size). */
  pages: number
  /** Estimated rows (reltuples), for progress only. */
  rows: number
  /** Single-column integer primary key, when there is one. */
  intKey?: IntKey
}

export type PartRange =
  | {kind: 'all'}
  | {kind: 'key'; column: string; from: string | null; to: string | null}
  | {kind: 'pages'; from: number | null; to: number | null}

export interface Part<T extends TableFacts = TableFacts> {
  table: T
  index: number
  count: number
  range: PartRange
  /** Estimated bytes of this part, for scheduling and progress. */
  estBytes: number
}

export const SPLIT_BY = ['pages', 'key'] as const
export type SplitBy = (typeof SPLIT_BY)[number]

export interface SplitOptions {
  /** Split tables larger than this many bytes; 0 or undefined: never split. */
  splitLargerThan?: number
  /** Upper bound on parts per table. */
  maxParts?: number
  /**
   * 'pages' (default): ctid page ranges, each part a TID range scan of its own pages; 'key':
   * ranges of the table's single-column integer key where it has one (an index range scan each).
   */
  by?: SplitBy
  /**
   * Connections that copy the parts at once: a split table's part count is rounded up to a
   * multiple of it, so its last part does not run alone while the others idle (11 parts of
   * pgbench_accounts on 2 connections: 6 rounds on one, 5 on the other; 12 parts: 6 and 6).
   */
  connections?: number
}

export const DEFAULT_MAX_PARTS = 256

export function planParts<T extends TableFacts>(tables: T[], opts: SplitOptions = {}): Array<Part<T>> {
  const parts: Array<Part<T>> = []
  for (const t of tables) {
    const threshold = opts.splitLargerThan ?? 0
    const maxParts = opts.maxParts ?? DEFAULT_MAX_PARTS
    let wanted = threshold > 0 && t.bytes > threshold ? Math.min(Math.ceil(t.bytes / threshold), maxParts) : 1
    const c = opts.connections ?? 1
    if (wanted > 1 && c > 1) wanted = Math.min(Math.ceil(wanted / c) * c, maxParts)
    const weights = partWeights(wanted, c, maxParts)
    const ranges = wanted > 1 ? splitRanges(t, weights, opts.by === 'key') : [{kind: 'all'} as PartRange]
    // Estimates by weight where every cut was made (a narrow key range or a tiny table makes fewer).
    const total = weights.reduce((a, b) => a + b, 0)
    const share = (i: number) => (ranges.length === weights.length ? weights[i]! / total : 1 / ranges.length)
    ranges.forEach((range, index) => parts.push({table: t, index, count: ranges.length, range, estBytes: t.bytes * share(index)}))
  }
  // Largest first; ties in a stable, readable order.
  return parts.sort(
    (a, b) =>
      b.estBytes - a.estBytes ||
      a.table.schema.localeCompare(b.table.schema) ||
      a.table.name.localeCompare(b.table.name) ||
      a.index - b.index,
  )
}

/**
 * Relative sizes of a table's n parts, in table order. Equal, except when C > 1 connections share a
 * table split over at least two rounds of them: then the last C parts' worth is cut into C halves
 * and 2C quarters (n + 2C parts), which the largest-first order runs last. Parts of equal size end
 * as unevenly as their copy times vary: `onebig` (12 parts on 2 connections, ~0.3 s each) had one
 * connection idle for the last 0.16 s while the other copied its sixth part.
 */
export function partWeights(n: number, connections: number, maxParts = DEFAULT_MAX_PARTS): number[] {
  const c = connections
  if (c < 2 || n < 2 * c || n + 2 * c > maxParts) return Array.from({length: n}, () => 1)
  return [...Array.from({length: n - c}, () => 4), ...Array.from({length: c}, () => 2), ...Array.from({length: 2 * c}, () => 1)]
}

function splitRanges(t: TableFacts, weights: number[], byKey: boolean): PartRange[] {
  if (byKey && t.intKey) {
    const bounds = keyBoundaries(BigInt(t.intKey.min), BigInt(t.intKey.max), weights)
    if (bounds.length > 0) return toRanges(bounds.map(String), (from, to) => ({kind: 'key', column: t.intKey!.column, from, to}))
  }
  const bounds = pageBoundaries(t.pages, weights)
  if (bounds.length === 0) return [{kind: 'all'}]
  return toRanges(bounds, (from, to) => ({kind: 'pages', from, to}))
}

/** A number of equal parts, or the parts' relative sizes (positive integers). */
type Parts = number | number[]
const asWeights = (parts: Parts): number[] => (typeof parts === 'number' ? Array.from({length: Math.max(0, parts)}, () => 1) : parts)

/**
 * The interior boundaries that cut [min, max] into ranges of the given relative sizes (equal for a
 * count), fewer when the range is too narrow for them: each range holds at least one key.
 */
export function keyBoundaries(min: bigint, max: bigint, parts: Parts): bigint[] {
  const w = asWeights(parts)
  if (max <= min || w.length < 2) return []
  const span = max - min + 1n
  const total = BigInt(w.reduce((a, b) => a + b, 0))
  const out: bigint[] = []
  let cum = 0n
  for (let i = 0; i < w.length - 1; i++) {
    cum += BigInt(w[i]!)
    const b = min + (span * cum) / total
    if (b > (out.length ? out[out.length - 1]! : min)) out.push(b)
  }
  return out
}

/** The same on heap pages [0, pages): each range at least one page. */
export function pageBoundaries(pages: number, parts: Parts): number[] {
  const w = asWeights(parts)
  if (pages < 2 || w.length < 2) return []
  const total = w.reduce((a, b) => a + b, 0)
  const out: number[] = []
  let cum = 0
  for (let i = 0; i < w.length - 1; i++) {
    cum += w[i]!
    const b = Math.floor((pages * cum) / total)
    if (b > (out.length ? out[out.length - 1]! : 0)) out.push(b)
  }
  return out
}

function toRanges<T>(bounds: T[], make: (from: T | null, to: T | null) => PartRange): PartRange[] {
  const out: PartRange[] = [make(null, bounds[0]!)]
  for (let i = 0; i < bounds.length - 1; i++) out.push(make(bounds[i]!, bounds[i + 1]!))
  out.push(make(bounds[bounds.length - 1]!, null))
  return out
}

/**
 * The WHERE clause of a part, for `COPY (SELECT … WHERE …) TO STDOUT`, which cannot take bind
 * parameters: the bounds are written as literals. Safe because they are integers this module
 * produced (checked again here), never user text; plain integer literals also keep the comparison
 * on the column's own type, so the primary key index (or a TID range scan) is used.
 */
export function rangeWhere(range: PartRange, quote: (id: string) => string): string {
  if (range.kind === 'all') return 'true'
  const conds: string[] = []
  const check = (v: string | number) => {
    if (!/^-?\d+$/.test(String(v))) throw new Error(`invalid range bound ${String(v)}`)
    return String(v)
  }
  if (range.kind === 'key') {
    const col = quote(range.column)
    if (range.from !== null) conds.push(`${col} >= ${check(range.from)}`)
    if (range.to !== null) conds.push(`${col} < ${check(range.to)}`)
  } else {
    if (range.from !== null) conds.push(`ctid >= '(${check(range.from)},0)'::tid`)
    if (range.to !== null) conds.push(`ctid < '(${check(range.to)},0)'::tid`)
  }
  return conds.join(' AND ') || 'true'
}
