// The SQL of the block-hash diff and of the row transfer, built from catalog facts, pure (no I/O),
// so the statements can be read and tested without a server. Every identifier is quoted; every
// value (keys, boundaries) travels as a bind parameter, arrays cast to the key column's type as
// format_type reported it on the node.
//
// Row hash: a 64-bit hash of the whole row (every column, in node A's order; the key is part of the
// row). When every column's type is one of PostgreSQL's own (the same oid and hash functions on
// every server): hash_record_extended(ROW(…), 0) over one term per column, each chosen so that
// different values hash apart with 64-bit odds. A type's own hash follows its = and is not always
// that: numeric ignores the scale (1.0 = 1.00) and the sign, float8 folds -0 into 0, int8 and the
// 64-bit time types fold their 64 bits into 32 first (1 and 4294967296 hash alike), and text under
// a nondeterministic collation hashes 'a' and 'A' alike. So:
//   - bool, "char", int2, int4, oid, date, uuid, bytea: the column itself (its hash reads every
//     bit of the value);
//   - text, varchar, name: the column COLLATE "C" (hashed byte for byte);
//   - every other type: the bytes of its send function (int8send, numeric_send, …), hashed whole.
// About 1.4× cheaper than hashing record_send(ROW(…)) as one bytea (PostgreSQL 18, 1M rows of
// bigint/int/text/numeric/timestamptz, one scan: 0.8–1.4 s against 1.3–1.9 s) and independent of
// session settings. Otherwise (a user-defined type: its oid and hash differ between servers)
// hashtextextended(ROW(…)::text, 0), the row's text output under the pinned session settings of
// session.ts; so does a table with an OID alias column (regclass, …), whose binary form is an OID
// that differs between servers where its text, the name, does not. A block hash is count(*) and
// bit_xor of the row hashes (order-independent, so no sort), sent in base64.

import pg from 'pg'
import {asArithmetic, INTEGER_KEY_TYPES, type KeyRange} from './ranges.js'

const q = pg.escapeIdentifier

export interface SqlColumn {
  name: string
  type: string
  /** pg_type oid and send function (regproc text): the record hash's term (rowHashExpr). */
  typeOid?: number
  send?: string
}

export interface SqlTable {
  schema: string
  name: string
  /** 'p' (partitioned) reads the partitions; 'r' reads ONLY the table, not inheritance children. */
  kind: 'r' | 'p'
  /** Every column, in node A's order (hashed, compared, transferred unless generated). */
  columns: Array<SqlColumn & {generated?: boolean}>
  /** Primary-key columns in key order. */
  key: SqlColumn[]
  /** Hash rows with hash_record_extended (every column type built in, on both nodes); see the file comment. */
  recordHash?: boolean
}

export class Params {
  readonly values: unknown[] = []
  add(v: unknown): string {
    this.values.push(v)
    return `$${this.values.length}`
  }
}

export const qualified = (t: {schema: string; name: string}): string => `${q(t.schema)}.${q(t.name)}`
export const fromTable = (t: SqlTable, alias = 't'): string => `${t.kind === 'p' ? '' : 'ONLY '}${qualified(t)} AS ${alias}`

// Built-in types whose own hash function reads every bit of the value (file comment).
const FULL_HASH_TYPES = new Set([
  16, // bool
  17, // bytea
  18, // "char"
  21, // int2
  23, // int4
  26, // oid
  1082, // date
  2950, // uuid
])
const BYTEWISE_TEXT_TYPES = new Set([19 /* name */, 25 /* text */, 1043 /* varchar */])
// The OID aliases (regclass, regtype, … and their arrays): their send function, like their hash,
// gives the object's OID, which differs between servers for the same name. Their text is the name.
const OID_ALIAS_TYPES = new Set([24, 2202, 2203, 2204, 2205, 2206, 3734, 3769, 4089, 4096, 4191, 1008, 2207, 2208, 2209, 2210, 2211, 3735, 3770, 4090, 4097, 4192])

/** The record hash's term for one column (see the file comment); null when its facts are missing. */
export function recordHashTerm(c: SqlColumn, alias = 't'): string | null {
  const col = `${alias}.${q(c.name)}`
  if (c.typeOid === undefined || OID_ALIAS_TYPES.has(c.typeOid)) return null
  if (FULL_HASH_TYPES.has(c.typeOid)) return col
  if (BYTEWISE_TEXT_TYPES.has(c.typeOid)) return `${col} COLLATE "C"`
  if (c.send && /^[a-z0-9_]+$/.test(c.send)) return `pg_catalog.${q(c.send)}(${col})`
  return null
}

/** True when every column has a record hash term (the caller also checks the types are built in). */
export const recordHashable = (columns: SqlColumn[]): boolean => columns.every((c) => recordHashTerm(c) !== null)

export function rowHashExpr(t: SqlTable, alias = 't'): string {
  if (t.recordHash) return `hash_record_extended(ROW(${t.columns.map((c) => recordHashTerm(c, alias)!).join(', ')}), 0)`
  return `hashtextextended(ROW(${t.columns.map((c) => `${alias}.${q(c.name)}`).join(', ')})::text, 0)`
}

/** The key of a row as a comparable tuple: t.id, or (t.a, t.b). */
export function keyTuple(t: SqlTable, alias = 't'): string {
  const cols = t.key.map((c) => `${alias}.${q(c.name)}`)
  return cols.length === 1 ? cols[0]! : `(${cols.join(', ')})`
}

const keyOrder = (t: SqlTable, alias = 't') => t.key.map((c) => `${alias}.${q(c.name)}`).join(', ')
const keyText = (t: SqlTable, alias = 't') => t.key.map((c, i) => `${alias}.${q(c.name)}::text AS k${i}`).join(', ')
const keyValues = (t: SqlTable, alias = 't') => t.key.map((c, i) => `${alias}.${q(c.name)} AS k${i}_v`).join(', ')
const tuple = (xs: string[]) => (xs.length === 1 ? xs[0]! : `(${xs.join(', ')})`)

/** Predicate of one range with its bounds as parameters (lo inclusive, hi exclusive, null open). */
export function rangePredicate(t: SqlTable, r: KeyRange, p: Params, alias = 't'): string {
  const parts: string[] = []
  const bound = (k: string[]) => tuple(t.key.map((c, i) => `${p.add(k[i])}::${c.type}`))
  if (r.lo) parts.push(`${keyTuple(t, alias)} >= ${bound(r.lo)}`)
  if (r.hi) parts.push(`${keyTuple(t, alias)} < ${bound(r.hi)}`)
  return parts.length ? parts.join(' AND ') : 'true'
}

/**
 * Rows of many disjoint ranges, each tagged with its index i (0-based, in the given order): the
 * closed ranges through one join with unnest (a parameterised index scan per range), the at most
 * two open ones (first and last) as their own branches. Selects `i` plus `extra` over alias t.
 */
export function rangesRowsSql(t: SqlTable, ranges: KeyRange[], p: Params, extra: string): string {
  const branches: string[] = []
  const closed = ranges.map((r, i) => ({r, i})).filter((x) => x.r.lo && x.r.hi)
  if (closed.length) {
    const n = t.key.length
    const arrays = [p.add(closed.map((x) => x.i)) + '::int4[]']
    for (let c = 0; c < n; c++) arrays.push(`${p.add(closed.map((x) => x.r.lo![c]))}::${t.key[c]!.type}[]`)
    for (let c = 0; c < n; c++) arrays.push(`${p.add(closed.map((x) => x.r.hi![c]))}::${t.key[c]!.type}[]`)
    const cols = ['i', ...t.key.map((_, c) => `lo${c}`), ...t.key.map((_, c) => `hi${c}`)]
    const lo = tuple(t.key.map((_, c) => `r.lo${c}`))
    const hi = tuple(t.key.map((_, c) => `r.hi${c}`))
    branches.push(
      `SELECT r.i, ${extra} FROM unnest(${arrays.join(', ')}) AS r(${cols.join(', ')}) JOIN ${fromTable(t)} ON ${keyTuple(t)} >= ${lo} AND ${keyTuple(t)} < ${hi}`,
    )
  }
  ranges.forEach((r, i) => {
    if (r.lo && r.hi) return
    branches.push(`SELECT ${p.add(i)}::int4 AS i, ${extra} FROM ${fromTable(t)} WHERE ${rangePredicate(t, r, p)}`)
  })
  return branches.join('\nUNION ALL\n')
}

/** Bucket of a row among sorted cut keys: 0 below the first cut, k at or above cut k (1-based). */
export function bucketExpr(t: SqlTable, cutsCount: number, p: Params, cutsByColumn: string[][], alias = 't'): string {
  if (cutsCount === 0) return '0'
  if (t.key.length === 1) return `width_bucket(${alias}.${q(t.key[0]!.name)}, ${p.add(cutsByColumn[0])}::${t.key[0]!.type}[])`
  // Composite keys: a balanced CASE tree of row comparisons against the cut arrays (depth log2).
  const arrays = t.key.map((c, i) => `${p.add(cutsByColumn[i])}::${c.type}[]`)
  const cut = (m: number) => `(${arrays.map((a) => `(${a})[${m + 1}]`).join(', ')})`
  const node = (l: number, r: number): string => {
    if (l === r) return String(l)
    const m = Math.floor((l + r) / 2)
    return `CASE WHEN ${keyTuple(t, alias)} < ${cut(m)} THEN ${node(l, m)} ELSE ${node(m + 1, r)} END`
  }
  return node(0, cutsCount)
}

/** 64-bit hash as 11 base64 characters (compact on the wire; only compared for equality). */
const hash64 = (expr: string) => `rtrim(encode(int8send(${expr}), 'base64'), '=')`

// Blocks as "index:count:hash," with index and count in hex: about 20 bytes a block.
const blockAgg = (inner: string) =>
  `SELECT coalesce(string_agg(to_hex(b) || ':' || to_hex(n) || ':' || h, ',' ORDER BY b), '') AS blocks FROM (SELECT b, count(*) AS n, ${hash64('coalesce(bit_xor(h), 0)')} AS h FROM (${inner}) x GROUP BY b) s`

/**
 * Top level: per-block (count, hash) of the whole table cut at the cuts, in one pass. The bucket is
 * joined to generate_series(0, cuts) so the planner knows how few groups there are and can hash in
 * parallel workers (partial aggregation); with PLANNER_SETTINGS it picks a hash join for it.
 */
export function cutStatsSql(t: SqlTable, cuts: string[][]): {text: string; values: unknown[]} {
  const p = new Params()
  const ar = t.key.length === 1 && INTEGER_KEY_TYPES.has(t.key[0]!.type) ? asArithmetic(cuts) : null
  let bucket: string
  if (ar) {
    // Evenly spaced cuts: the block by integer division (in the middle branch k - base is in
    // [width, count·width), so it cannot overflow), no search through the cut array.
    const k = `t.${q(t.key[0]!.name)}`
    const first = p.add(cuts[0]![0])
    const last = p.add(cuts.at(-1)![0])
    bucket = `CASE WHEN ${k} < ${first}::int8 THEN 0 WHEN ${k} >= ${last}::int8 THEN ${p.add(cuts.length)}::int4 ELSE ((${k} - ${p.add(String(ar.base))}::int8) / ${p.add(String(ar.width))}::int8)::int4 END`
  } else {
    const byColumn = t.key.map((_, c) => cuts.map((k) => k[c]!))
    bucket = bucketExpr(t, cuts.length, p, byColumn)
  }
  const inner = `SELECT g.b, count(*) AS n, ${hash64(`coalesce(bit_xor(${rowHashExpr(t)}), 0)`)} AS h
  FROM ${fromTable(t)} JOIN generate_series(0, ${p.add(cuts.length)}::int4) AS g(b) ON g.b = ${bucket} GROUP BY g.b`
  return {text: `SELECT coalesce(string_agg(to_hex(b) || ':' || to_hex(n) || ':' || h, ',' ORDER BY b), '') AS blocks FROM (${inner}) s`, values: p.values}
}

/** Planner settings for the top-level pass only (set locally around it, then restored). */
export const PLANNER_SETTINGS: Array<[string, string]> = [
  ['enable_mergejoin', 'off'],
  ['enable_sort', 'off'],
]

/** Per-range (count, hash) of disjoint ranges. */
export function rangeStatsSql(t: SqlTable, ranges: KeyRange[]): {text: string; values: unknown[]} {
  const p = new Params()
  const inner = rangesRowsSql(t, ranges, p, `${rowHashExpr(t)} AS h`)
  return {text: blockAgg(`SELECT i AS b, h FROM (${inner}) y`), values: p.values}
}

/** Parses "b:n:hash,…" (b and n in hex) into `count` blocks (blocks absent from the text are empty). */
export function parseBlocks(text: string, count: number): Array<{count: number; hash: string}> {
  const out = Array.from({length: count}, () => ({count: 0, hash: '0'}))
  if (!text) return out
  for (const item of text.split(',')) {
    const [b, n, h] = item.split(':')
    const i = /^[0-9a-f]+$/.test(b ?? '') ? parseInt(b!, 16) : NaN
    if (!Number.isInteger(i) || i < 0 || i >= count) throw new Error(`block index ${b} out of range 0..${count - 1}`)
    out[i] = {count: parseInt(n!, 16), hash: h!}
  }
  return out
}

/**
 * For each range (i), the keys of rows step+1, 2·step+1, …: at most parts - 1 cuts, each above the
 * range's first row, so every piece holds rows of this node and each level makes progress.
 */
export function splitKeysSql(t: SqlTable, reqs: Array<{range: KeyRange; rows: number; parts: number}>): {text: string; values: unknown[]} {
  const p = new Params()
  const steps = p.add(reqs.map((r) => Math.max(1, Math.ceil(r.rows / r.parts))))
  const parts = p.add(reqs.map((r) => r.parts))
  const inner = rangesRowsSql(t, reqs.map((r) => r.range), p, `${keyValues(t)}, ${keyText(t)}`)
  const kcols = t.key.map((_, c) => `k${c}`)
  const text = `SELECT coalesce(array_agg(i ORDER BY i, rn), '{}') AS i, ${kcols.map((k) => `coalesce(array_agg(${k} ORDER BY i, rn), '{}') AS ${k}`).join(', ')}
FROM (SELECT y.i, ${kcols.map((k) => `y.${k}`).join(', ')}, row_number() OVER (PARTITION BY y.i ORDER BY ${kcols.map((k) => `y.${k}_v`).join(', ')}) AS rn FROM (${inner}) y) z
WHERE rn > 1 AND (rn - 1) % (${steps}::int8[])[i + 1] = 0 AND (rn - 1) / (${steps}::int8[])[i + 1] < (${parts}::int4[])[i + 1]`
  return {text, values: p.values}
}

/** (key text, row hash) of every row of the ranges, ordered by range and key. */
export function leafRowsSql(t: SqlTable, ranges: KeyRange[]): {text: string; values: unknown[]} {
  const p = new Params()
  const extra = `${keyValues(t)}, ${keyText(t)}, ${hash64(rowHashExpr(t))} AS h`
  const inner = rangesRowsSql(t, ranges, p, extra)
  const order = ['i', ...t.key.map((_, c) => `k${c}_v`)].join(', ')
  const kcols = t.key.map((_, c) => `k${c}`)
  const text = `SELECT ${kcols.map((k) => `coalesce(array_agg(${k} ORDER BY ${order}), '{}') AS ${k}`).join(', ')}, coalesce(array_agg(h ORDER BY ${order}), '{}') AS h FROM (${inner}) y`
  return {text, values: p.values}
}

/** Evenly spaced keys of a row sample: at most blocks - 1 cut keys for the top level. */
export function sampleCutsSql(t: SqlTable, blocks: number, percent: number, method: 'BERNOULLI' | 'SYSTEM'): {text: string; values: unknown[]} {
  const p = new Params()
  const pct = p.add(percent)
  const nb = p.add(blocks)
  const kcols = t.key.map((_, c) => `k${c}`)
  const text = `SELECT ${kcols.map((k) => `coalesce(array_agg(${k} ORDER BY rn), '{}') AS ${k}`).join(', ')}
FROM (SELECT ${keyText(t)}, row_number() OVER (ORDER BY ${keyOrder(t)}) AS rn, count(*) OVER () AS c
      FROM ${fromTable(t)} TABLESAMPLE ${method} (${pct}::float8) REPEATABLE (42)) s
WHERE rn % greatest(1, c / ${nb}::int8) = 0 AND rn / greatest(1, c / ${nb}::int8) < ${nb}::int8`
  return {text, values: p.values}
}

/** Full (key, hash) of every row: the upstream-style comparison, for the benchmark. */
export function fullKeyHashSql(t: SqlTable): string {
  return `SELECT ${keyText(t)}, ${rowHashExpr(t)} AS h FROM ${fromTable(t)}`
}

// ---- transfer and resolution -------------------------------------------------------------------

/** Columns a merge writes: all but generated ones. */
export const writableColumns = (t: SqlTable): SqlColumn[] => t.columns.filter((c) => !c.generated)

/** Join of the table with a batch of keys given as text arrays (one parameter per key column). */
function keysJoin(t: SqlTable, keys: string[][], p: Params): string {
  const arrays = t.key.map((c, i) => `${p.add(keys.map((k) => k[i]))}::${c.type}[]`)
  const cols = t.key.map((_, i) => `k${i}`)
  return `unnest(${arrays.join(', ')}) AS u(${cols.join(', ')}) JOIN ${fromTable(t)} ON ${keyTuple(t)} = ${tuple(cols.map((c) => `u.${c}`))}`
}

/**
 * Rows of a batch of keys: key text, the row as jsonb (for the audit), every writable column as text
 * (NULL stays NULL), and optionally a timestamp column as exact microseconds since the epoch.
 */
export function fetchRowsSql(t: SqlTable, keys: string[][], timestampColumn?: string): {text: string; values: unknown[]} {
  const p = new Params()
  const cols = writableColumns(t)
  const ts = timestampColumn ? `, (extract(epoch FROM t.${q(timestampColumn)}) * 1000000)::int8::text AS ts` : ''
  const text = `SELECT ${keyText(t)}, to_jsonb(t)::text AS j${ts}, ARRAY[${cols.map((c) => `t.${q(c.name)}::text`).join(', ')}]::text[] AS v FROM ${keysJoin(t, keys, p)}`
  return {text, values: p.values}
}

export function copyInSql(t: SqlTable): string {
  return `COPY ${qualified(t)} (${writableColumns(t).map((c) => q(c.name)).join(', ')}) FROM STDIN`
}

/** One COPY text line: tab-separated, \N for NULL, backslash escapes for the specials. */
export function copyLine(values: Array<string | null>): string {
  return (
    values
      .map((v) => (v === null ? '\\N' : v.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r')))
      .join('\t') + '\n'
  )
}

/** Sets every non-key writable column of the rows with the given keys to the given text values. */
export function updateRowsSql(t: SqlTable, rows: Array<{key: string[]; values: Array<string | null>}>): {text: string; values: unknown[]} | null {
  const cols = writableColumns(t)
  const keyNames = new Set(t.key.map((k) => k.name))
  const setCols = cols.map((c, i) => ({c, i})).filter((x) => !keyNames.has(x.c.name))
  if (setCols.length === 0) return null
  const p = new Params()
  const keyArrays = t.key.map((_, i) => `${p.add(rows.map((r) => r.key[i]))}::text[]`)
  const valArrays = setCols.map((x) => `${p.add(rows.map((r) => r.values[x.i] ?? null))}::text[]`)
  const names = [...t.key.map((_, i) => `k${i}`), ...setCols.map((_, j) => `c${j}`)]
  const target = `${t.kind === 'p' ? '' : 'ONLY '}${qualified(t)} AS t`
  const text = `UPDATE ${target} SET (${setCols.map((x) => q(x.c.name)).join(', ')}) = ROW(${setCols.map((x, j) => `u.c${j}::${x.c.type}`).join(', ')})
FROM unnest(${[...keyArrays, ...valArrays].join(', ')}) AS u(${names.join(', ')})
WHERE ${keyTuple(t)} = ${tuple(t.key.map((c, i) => `u.k${i}::${c.type}`))}`
  return {text, values: p.values}
}

/** The primary key of audit rows as upstream's jsonb object ({"id": 1}), typed by node A's catalog. */
export function auditInsertSql(t: SqlTable, rows: AuditRow[], mergeId: string, resolvedBy: string): {text: string; values: unknown[]} {
  const p = new Params()
  const keyArrays = t.key.map((_, i) => `${p.add(rows.map((r) => r.key[i]))}::text[]`)
  const pk = `jsonb_build_object(${t.key.map((c, i) => `${p.add(c.name)}::text, u.k${i}::${c.type}`).join(', ')})`
  const text = `INSERT INTO steep_repl.merge_audit_log (merge_id, table_schema, table_name, pk_value, category, resolution, node_a_value, node_b_value, resolved_by)
SELECT ${p.add(mergeId)}::uuid, ${p.add(t.schema)}::text, ${p.add(t.name)}::text, ${pk}, u.category, u.resolution, u.a::jsonb, u.b::jsonb, ${p.add(resolvedBy)}::text
FROM unnest(${[...keyArrays, p.add(rows.map((r) => r.category)) + '::text[]', p.add(rows.map((r) => r.resolution)) + '::text[]', p.add(rows.map((r) => r.a)) + '::text[]', p.add(rows.map((r) => r.b)) + '::text[]'].join(', ')})
  AS u(${[...t.key.map((_, i) => `k${i}`), 'category', 'resolution', 'a', 'b'].join(', ')})`
  return {text, values: p.values}
}

export interface AuditRow {
  key: string[]
  category: 'conflict' | 'local_only' | 'remote_only'
  resolution: 'kept_a' | 'kept_b' | 'skipped' | 'transferred_a_to_b' | 'transferred_b_to_a'
  /** Row on node A as jsonb text, null when absent. */
  a: string | null
  b: string | null
}

// ---- owned sequences ---------------------------------------------------------------------------

/** Sequences owned by a column of the table (serial OWNED BY, identity), with their bounds. $1 = the table. */
export function ownedSequencesSql(t: SqlTable): {text: string; values: unknown[]} {
  return {
    text: `SELECT n.nspname::text AS schema, s.relname::text AS name, a.attname::text AS column,
       q.seqincrement::text AS increment, q.seqmin::text AS min, q.seqmax::text AS max
  FROM pg_depend d
  JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
  JOIN pg_namespace n ON n.oid = s.relnamespace
  JOIN pg_sequence q ON q.seqrelid = s.oid
  JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
 WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
   AND d.refobjid = $1::regclass
 ORDER BY a.attnum, 1, 2`,
    values: [qualified(t)],
  }
}

/** last_value and is_called of a sequence. */
export function sequenceStateSql(seq: {schema: string; name: string}): string {
  return `SELECT last_value::text AS last_value, is_called FROM ${qualified(seq)}`
}

/**
 * max and min of a column over the table, leaving out the rows with the given keys (the rows a
 * merge overwrites there). Without keys, the whole table (an index scan for key columns).
 */
export function columnExtremesSql(t: SqlTable, column: string, excludeKeys: string[][]): {text: string; values: unknown[]} {
  const p = new Params()
  const c = `t.${q(column)}`
  let where = ''
  if (excludeKeys.length) {
    const arrays = t.key.map((k, i) => `${p.add(excludeKeys.map((x) => x[i]))}::${k.type}[]`)
    const cols = t.key.map((_, i) => `k${i}`)
    where = ` WHERE NOT EXISTS (SELECT 1 FROM unnest(${arrays.join(', ')}) AS u(${cols.join(', ')}) WHERE ${keyTuple(t)} = ${tuple(cols.map((x) => `u.${x}`))})`
  }
  return {text: `SELECT max(${c})::text AS hi, min(${c})::text AS lo FROM ${fromTable(t)}${where}`, values: p.values}
}

/** max and min of a column over the rows with the given keys. */
export function keysExtremesSql(t: SqlTable, column: string, keys: string[][]): {text: string; values: unknown[]} {
  const p = new Params()
  const c = `t.${q(column)}`
  return {text: `SELECT max(${c})::text AS hi, min(${c})::text AS lo FROM ${keysJoin(t, keys, p)}`, values: p.values}
}

/**
 * setval(seq, value, true), only when the sequence is not already at or past the value in its own
 * direction, checked in the same statement (a nextval between our read and this cannot be undone).
 * Returns one row when it advanced.
 */
export function advanceSequenceSql(seq: {schema: string; name: string}, value: string, increment: string): {text: string; values: unknown[]} {
  return {
    text: `SELECT setval($1::regclass, $2::int8, true)::text AS v FROM ${qualified(seq)} s
 WHERE CASE WHEN $3::int8 > 0 THEN (CASE WHEN s.is_called THEN s.last_value::numeric + $3::int8 ELSE s.last_value END) <= $2::int8
            ELSE (CASE WHEN s.is_called THEN s.last_value::numeric + $3::int8 ELSE s.last_value END) >= $2::int8 END`,
    values: [qualified(seq), value, increment],
  }
}

/** The audit row of a sequence the merge advanced on one node (node A keeps the audit). */
export function sequenceAuditSql(
  t: SqlTable,
  mergeId: string,
  resolvedBy: string,
  s: {node: 'A' | 'B'; sequence: string; column: string; lastValue: string; isCalled: boolean; advancedTo: string},
): {text: string; values: unknown[]} {
  const value = JSON.stringify({before: s.lastValue, is_called: s.isCalled, after: s.advancedTo})
  return {
    text: `INSERT INTO steep_repl.merge_audit_log (merge_id, table_schema, table_name, pk_value, category, resolution, node_a_value, node_b_value, resolved_by)
VALUES ($1::uuid, $2::text, $3::text, jsonb_build_object('sequence', $4::text, 'column', $5::text), 'sequence', $6::text, $7::jsonb, $8::jsonb, $9::text)`,
    values: [mergeId, t.schema, t.name, s.sequence, s.column, s.node === 'A' ? 'advanced_on_a' : 'advanced_on_b', s.node === 'A' ? value : null, s.node === 'B' ? value : null, resolvedBy],
  }
}
