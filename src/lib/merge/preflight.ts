// Pre-flight checks of a merge, pure: the facts come in from catalog.ts.
//
// SWAP POINT (issue 4): compareColumns below is a small self-contained column comparison (names,
// format_type with typmod, nullability, collation, in order) for the tables being merged. When the
// schema capability lands, the lead may replace it with its `schema compare` for these tables; the
// rest of the merge only needs {table, problems[]} back.

export interface ColumnFacts {
  name: string
  /** format_type(atttypid, atttypmod) */
  type: string
  notNull: boolean
  /** Collation name, null for non-collatable types. */
  collation: string | null
  /** Generated (stored) column: not written by merges. */
  generated: boolean
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

/** Differences between the columns of a table on node A and on node B; empty when they match. */
export function compareColumns(a: ColumnFacts[], b: ColumnFacts[]): string[] {
  const problems: string[] = []
  const n = Math.max(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a[i]
    const y = b[i]
    if (!x) {
      problems.push(`column ${i + 1} "${y!.name}" (${y!.type}) exists only on node B`)
      continue
    }
    if (!y) {
      problems.push(`column ${i + 1} "${x.name}" (${x.type}) exists only on node A`)
      continue
    }
    if (x.name !== y.name) {
      problems.push(`column ${i + 1} is "${x.name}" on node A but "${y.name}" on node B`)
      continue
    }
    if (x.type !== y.type) problems.push(`column "${x.name}" is ${x.type} on node A but ${y.type} on node B`)
    if (x.notNull !== y.notNull) problems.push(`column "${x.name}" is ${x.notNull ? 'NOT NULL' : 'nullable'} on node A but ${y.notNull ? 'NOT NULL' : 'nullable'} on node B`)
    if (x.collation !== y.collation) problems.push(`column "${x.name}" has collation ${x.collation} on node A but ${y.collation} on node B`)
    if (x.generated !== y.generated) problems.push(`column "${x.name}" is ${x.generated ? '' : 'not '}generated on node A but ${y.generated ? '' : 'not '}on node B`)
  }
  return problems
}

export interface TablePair {
  table: string
  a: TableFacts | null
  b: TableFacts | null
}

export interface PreflightIssue {
  table: string
  kind: 'missing' | 'no_primary_key' | 'key_mismatch' | 'schema_mismatch'
  message: string
}

/** Checks that decide whether a table can be compared at all (analyze and run). */
export function checkTables(pairs: TablePair[]): PreflightIssue[] {
  const issues: PreflightIssue[] = []
  for (const p of pairs) {
    if (!p.a || !p.b) {
      const where = !p.a && !p.b ? 'either node' : !p.a ? 'node A' : 'node B'
      issues.push({table: p.table, kind: 'missing', message: `table ${p.table} does not exist on ${where}`})
      continue
    }
    if (p.a.key.length === 0 || p.b.key.length === 0) {
      const where = p.a.key.length === 0 && p.b.key.length === 0 ? 'on either node' : p.a.key.length === 0 ? 'on node A' : 'on node B'
      issues.push({table: p.table, kind: 'no_primary_key', message: `table ${p.table} has no primary key ${where}`})
      continue
    }
    if (p.a.key.join(',') !== p.b.key.join(',')) {
      issues.push({table: p.table, kind: 'key_mismatch', message: `table ${p.table} has primary key (${p.a.key.join(', ')}) on node A but (${p.b.key.join(', ')}) on node B`})
      continue
    }
    for (const m of compareColumns(p.a.columns, p.b.columns)) issues.push({table: p.table, kind: 'schema_mismatch', message: `table ${p.table}: ${m}`})
  }
  return issues
}
