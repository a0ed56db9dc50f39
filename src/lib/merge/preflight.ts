// Pre-flight checks of a merge, pure: the facts come in from catalog.ts (what the merge needs to
// build its SQL) and from the schema capability's comparison (the same `compareFingerprintSets`
// that `steep-repl schema compare` runs), restricted to the merged tables.
//
// A merge refuses (SchemaMismatchError, exit 3) on exactly what schema compare calls blocking for
// those tables (a table on one node only, a column missing on one side, a type, nullability or
// generated-column difference), plus what only a merge needs equal: the same primary key, the same
// collation on text key columns (key ranges must cut the same rows on both nodes), and the same
// table kind (partitioned or not). What schema compare reports as not blocking (defaults,
// collations of other columns, identity kind, column order) is passed on as notes: the merge
// matches columns by name and hashes them in node A's order on both nodes.

import type {ColumnDifference, TableComparison} from '../schema/compare.js'

/** What the merge's SQL needs of a column (the comparison between nodes is schema compare's). */
export interface ColumnFacts {
  name: string
  /** format_type(atttypid, atttypmod): casts of bound keys and values */
  type: string
  /** Generated (stored) column: not written by merges. */
  generated: boolean
  /**
   * A type of PostgreSQL itself (oid below FirstNormalObjectId): its oid is the same on every
   * server, so the record row hash (sql.ts) can include it. Absent: not known, treated as false.
   */
  builtin?: boolean
  /** pg_type oid and the type's send function (regproc text): how sql.ts hashes it. */
  typeOid?: number
  send?: string
}

export interface TableFacts {
  schema: string
  name: string
  /** 'r' table, 'p' partitioned table. */
  kind: 'r' | 'p'
  columns: ColumnFacts[]
  /** Primary-key columns in key order; empty when the table has none. */
  key: string[]
  /** Planner estimate of the rows (reltuples), -1 when unknown. */
  estRows: number
}

export interface TablePair {
  table: string
  a: TableFacts | null
  b: TableFacts | null
  /** The schema comparison of this table (null only when it exists on neither node). */
  schema: TableComparison | null
}

export type PreflightKind = 'missing' | 'one_side' | 'no_primary_key' | 'key_mismatch' | 'kind_mismatch' | 'schema_mismatch'

export interface PreflightIssue {
  table: string
  kind: PreflightKind
  message: string
}

/** Issues that are a schema mismatch between the nodes (exit 3); the others are exit 1. */
export const SCHEMA_KINDS: ReadonlySet<PreflightKind> = new Set(['one_side', 'key_mismatch', 'kind_mismatch', 'schema_mismatch'])

const columnText = (table: string, d: ColumnDifference) => `${table}: column "${d.column}" ${d.message}`

/** Checks that decide whether a table can be compared at all (analyze and run). */
export function checkTables(pairs: TablePair[]): PreflightIssue[] {
  const issues: PreflightIssue[] = []
  for (const p of pairs) {
    if (!p.a && !p.b) {
      issues.push({table: p.table, kind: 'missing', message: `table ${p.table} does not exist on either node`})
      continue
    }
    if (!p.a || !p.b) {
      const [has, lacks] = p.a ? ['A', 'B'] : ['B', 'A']
      issues.push({table: p.table, kind: 'one_side', message: `table ${p.table} exists only on node ${has} (does not exist on node ${lacks})`})
      continue
    }
    if (p.a.key.length === 0 || p.b.key.length === 0) {
      const where = p.a.key.length === 0 && p.b.key.length === 0 ? 'on either node' : p.a.key.length === 0 ? 'on node A' : 'on node B'
      issues.push({table: p.table, kind: 'no_primary_key', message: `table ${p.table} has no primary key ${where}`})
      continue
    }
    if (p.a.key.join(',') !== p.b.key.join(',')) {
      issues.push({table: p.table, kind: 'key_mismatch', message: `${p.table}: primary key (${p.a.key.join(', ')}) on node A but (${p.b.key.join(', ')}) on node B`})
    }
    if (p.a.kind !== p.b.kind) {
      const k = (t: TableFacts) => (t.kind === 'p' ? 'a partitioned table' : 'an ordinary table')
      issues.push({table: p.table, kind: 'kind_mismatch', message: `${p.table}: ${k(p.a)} on node A but ${k(p.b)} on node B`})
    }
    const diffs = p.schema?.differences ?? []
    for (const d of diffs) if (d.blocking) issues.push({table: p.table, kind: 'schema_mismatch', message: columnText(p.table, d)})
    const keyCols = new Set(p.a.key)
    for (const d of diffs) {
      if (d.kind === 'collation' && keyCols.has(d.column)) {
        issues.push({table: p.table, kind: 'key_mismatch', message: `${columnText(p.table, d)}; it is a primary-key column, so key ranges would not hold the same rows on both nodes`})
      }
    }
  }
  return issues
}

/** What schema compare reports for the tables without blocking (notes for the result). */
export function schemaNotes(pairs: TablePair[]): string[] {
  const out: string[] = []
  for (const p of pairs) {
    if (!p.a || !p.b) continue
    const keyCols = new Set(p.a.key)
    for (const d of p.schema?.differences ?? []) {
      if (d.blocking || (d.kind === 'collation' && keyCols.has(d.column))) continue
      out.push(columnText(p.table, d))
    }
  }
  return out
}
