// Schema drift between two nodes: per table MATCH / MISMATCH / LOCAL_ONLY / REMOTE_ONLY, per column
// differences with the blocking rules, and what else breaks logical replication (replica identity,
// sequences, publication membership). Pure: no I/O; compare-io.ts gathers the facts.
//
// Blocking (breaks replication, exit 3): a table on one node only, a column missing on one side, a
// type change, a nullability change, a generated/regular column mismatch, a table without primary key
// or usable replica identity, a table missing from the publication named with --publication, a named
// publication that exists on neither node. Not blocking (reported): default-only changes, collation,
// column position (replication maps columns by name), identity kind, sequences (their values are not
// replicated), unlogged tables (never replicated), tables in no publication when none was named.

import type {ColumnDefinition, TableFingerprint, TableKind} from './fingerprint.js'
import {tableKey} from './fingerprint.js'

export type TableStatus = 'MATCH' | 'MISMATCH' | 'LOCAL_ONLY' | 'REMOTE_ONLY'

export type ColumnDiffKind = 'missing_on_a' | 'missing_on_b' | 'type' | 'nullable' | 'generated' | 'default' | 'collation' | 'identity' | 'position'

export interface ColumnDifference {
  column: string
  kind: ColumnDiffKind
  blocking: boolean
  /** the value on node A / node B (null when absent) */
  a: string | null
  b: string | null
  message: string
}

export interface TableComparison {
  schema: string
  table: string
  key: string
  status: TableStatus
  blocking: boolean
  kindA: TableKind | null
  kindB: TableKind | null
  fingerprintA: string | null
  fingerprintB: string | null
  differences: ColumnDifference[]
}

const show = (v: string | null | undefined) => (v === null || v === undefined || v === '' ? '(none)' : v)

/** Column differences matched by name; ordered by node A's column order, then B-only columns. */
export function diffColumns(a: ColumnDefinition[], b: ColumnDefinition[]): ColumnDifference[] {
  const out: ColumnDifference[] = []
  const bByName = new Map(b.map((c) => [c.name, c]))
  const aByName = new Map(a.map((c) => [c.name, c]))
  const sortedA = [...a].sort((x, y) => x.position - y.position)
  const sortedB = [...b].sort((x, y) => x.position - y.position)
  // Relative order of the columns both sides have (replication ignores it; reported for the DBA).
  const commonA = sortedA.filter((c) => bByName.has(c.name)).map((c) => c.name)
  const commonB = sortedB.filter((c) => aByName.has(c.name)).map((c) => c.name)
  for (const ca of sortedA) {
    const cb = bByName.get(ca.name)
    if (!cb) {
      out.push({column: ca.name, kind: 'missing_on_b', blocking: true, a: ca.type, b: null, message: 'missing on node B (breaks replication)'})
      continue
    }
    if (ca.type !== cb.type) out.push({column: ca.name, kind: 'type', blocking: true, a: ca.type, b: cb.type, message: `type ${ca.type} vs ${cb.type} (breaks replication)`})
    if (ca.nullable !== cb.nullable) {
      const n = (x: ColumnDefinition) => (x.nullable ? 'NULL' : 'NOT NULL')
      out.push({column: ca.name, kind: 'nullable', blocking: true, a: n(ca), b: n(cb), message: `${n(ca)} vs ${n(cb)} (rows valid on one node fail on the other)`})
    }
    if ((ca.generated ?? null) !== (cb.generated ?? null)) {
      out.push({
        column: ca.name,
        kind: 'generated',
        blocking: true,
        a: ca.generated ?? 'regular',
        b: cb.generated ?? 'regular',
        message: `generated ${ca.generated ?? 'no'} vs ${cb.generated ?? 'no'} (a generated column cannot receive replicated values)`,
      })
    }
    if ((ca.default ?? null) !== (cb.default ?? null)) {
      out.push({column: ca.name, kind: 'default', blocking: false, a: ca.default, b: cb.default, message: `default ${show(ca.default)} vs ${show(cb.default)} (ok for replication)`})
    }
    if ((ca.collation ?? null) !== (cb.collation ?? null)) {
      out.push({column: ca.name, kind: 'collation', blocking: false, a: ca.collation, b: cb.collation, message: `collation ${show(ca.collation)} vs ${show(cb.collation)} (sorting and unique checks may differ)`})
    }
    if ((ca.identity ?? null) !== (cb.identity ?? null)) {
      out.push({column: ca.name, kind: 'identity', blocking: false, a: ca.identity, b: cb.identity, message: `identity ${show(ca.identity)} vs ${show(cb.identity)} (ok for replication)`})
    }
    const pa = commonA.indexOf(ca.name)
    const pb = commonB.indexOf(ca.name)
    if (pa !== pb) {
      out.push({column: ca.name, kind: 'position', blocking: false, a: String(ca.position), b: String(cb.position), message: `column order differs (position ${ca.position} vs ${cb.position}; replication maps by name)`})
    }
  }
  for (const cb of sortedB) {
    if (!aByName.has(cb.name)) out.push({column: cb.name, kind: 'missing_on_a', blocking: true, a: null, b: cb.type, message: 'missing on node A (breaks replication)'})
  }
  return out
}

export function compareTable(key: string, a: TableFingerprint | undefined, b: TableFingerprint | undefined): TableComparison {
  const base = a ?? b!
  if (!a || !b) {
    return {
      schema: base.schema,
      table: base.table,
      key,
      status: a ? 'LOCAL_ONLY' : 'REMOTE_ONLY',
      blocking: true,
      kindA: a?.kind ?? null,
      kindB: b?.kind ?? null,
      fingerprintA: a?.fingerprint ?? null,
      fingerprintB: b?.fingerprint ?? null,
      differences: [],
    }
  }
  const differences = diffColumns(a.columns, b.columns)
  return {
    schema: base.schema,
    table: base.table,
    key,
    status: a.fingerprint === b.fingerprint ? 'MATCH' : 'MISMATCH',
    blocking: differences.some((d) => d.blocking),
    kindA: a.kind,
    kindB: b.kind,
    fingerprintA: a.fingerprint,
    fingerprintB: b.fingerprint,
    differences,
  }
}

/** Every table of either side, sorted by `schema.table` (code-point order, the same everywhere). */
export function compareFingerprintSets(a: TableFingerprint[], b: TableFingerprint[]): TableComparison[] {
  const ma = new Map(a.map((t) => [tableKey(t.schema, t.table), t]))
  const mb = new Map(b.map((t) => [tableKey(t.schema, t.table), t]))
  const keys = [...new Set([...ma.keys(), ...mb.keys()])].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))
  return keys.map((k) => compareTable(k, ma.get(k), mb.get(k)))
}

export interface CompareSummary {
  match: number
  mismatch: number
  localOnly: number
  remoteOnly: number
}

export function summarize(tables: TableComparison[]): CompareSummary {
  const s: CompareSummary = {match: 0, mismatch: 0, localOnly: 0, remoteOnly: 0}
  for (const t of tables) {
    if (t.status === 'MATCH') s.match++
    else if (t.status === 'MISMATCH') s.mismatch++
    else if (t.status === 'LOCAL_ONLY') s.localOnly++
    else s.remoteOnly++
  }
  return s
}

// ---- replication readiness ----------------------------------------------------------------------

export type NodeSide = 'a' | 'b'

export interface ReplicationTableFacts {
  schema: string
  table: string
  kind: TableKind
  hasPrimaryKey: boolean
  /** d default (primary key), n nothing, f full, i index */
  replicaIdentity: 'd' | 'n' | 'f' | 'i'
  /** for 'i': whether the index still exists and is valid */
  replicaIdentityIndexOk: boolean
  /** unlogged tables are never replicated */
  unlogged?: boolean
  /** publications (by name) that publish this table, directly, through a schema, or through a partition ancestor/descendant */
  publications: string[]
}

export interface ReplicationFacts {
  tables: ReplicationTableFacts[]
  sequences: Array<{schema: string; name: string; ownedBy: string | null}>
  publications: Array<{name: string; allTables: boolean; update: boolean; delete: boolean}>
}

export type ReadinessKind = 'no_replica_identity' | 'unlogged' | 'sequence_not_replicated' | 'sequence_one_side' | 'not_in_publication' | 'not_published' | 'publication_missing'

export interface ReadinessIssue {
  kind: ReadinessKind
  node: NodeSide | 'both'
  /** `schema.table`, `schema.sequence` or the publication name */
  object: string
  blocking: boolean
  message: string
  hint?: string
}

export interface ReadinessOptions {
  /** The publication the nodes replicate through; tables missing from it are blocking. */
  publication?: string
}

function identityProblem(t: ReplicationTableFacts): string | null {
  if (t.kind === 'partitioned') return null // rows live in the partitions, which are checked themselves
  if (t.replicaIdentity === 'n') return 'REPLICA IDENTITY NOTHING'
  if (t.replicaIdentity === 'd' && !t.hasPrimaryKey) return 'no primary key and REPLICA IDENTITY DEFAULT'
  if (t.replicaIdentity === 'i' && !t.replicaIdentityIndexOk) return 'its replica identity index is missing or invalid'
  return null
}

export function readinessIssues(a: ReplicationFacts, b: ReplicationFacts, opts: ReadinessOptions = {}): ReadinessIssue[] {
  const out: ReadinessIssue[] = []
  const sides: Array<[NodeSide, ReplicationFacts]> = [
    ['a', a],
    ['b', b],
  ]
  // Replica identity: per table, merged when both nodes have the same problem.
  const ri = new Map<string, {sides: NodeSide[]; why: string}>()
  for (const [side, f] of sides) {
    for (const t of f.tables) {
      const why = identityProblem(t)
      if (!why) continue
      const k = tableKey(t.schema, t.table)
      const e = ri.get(k)
      if (e) e.sides.push(side)
      else ri.set(k, {sides: [side], why})
    }
  }
  for (const [k, e] of ri) {
    out.push({
      kind: 'no_replica_identity',
      node: e.sides.length === 2 ? 'both' : e.sides[0]!,
      object: k,
      blocking: true,
      message: `${k}: ${e.why}: UPDATE and DELETE cannot be replicated (the publisher rejects them)`,
      hint: `Add a primary key, or ALTER TABLE … REPLICA IDENTITY FULL (or USING INDEX on a unique index of NOT NULL columns).`,
    })
  }
  // Unlogged tables: logical decoding never sees their changes.
  const ul = new Map<string, NodeSide[]>()
  for (const [side, f] of sides) for (const t of f.tables) if (t.unlogged) ul.set(tableKey(t.schema, t.table), [...(ul.get(tableKey(t.schema, t.table)) ?? []), side])
  for (const [k, s] of ul) {
    out.push({
      kind: 'unlogged',
      node: s.length === 2 ? 'both' : s[0]!,
      object: k,
      blocking: false,
      message: `${k} is UNLOGGED: its rows are never replicated`,
      hint: `ALTER TABLE ${k} SET LOGGED if it must replicate.`,
    })
  }
  // Sequences: their values are never replicated by logical replication (PostgreSQL 15-18).
  const seqs = new Map<string, {sides: NodeSide[]; ownedBy: string | null}>()
  for (const [side, f] of sides) {
    for (const s of f.sequences) {
      const k = tableKey(s.schema, s.name)
      const e = seqs.get(k)
      if (e) e.sides.push(side)
      else seqs.set(k, {sides: [side], ownedBy: s.ownedBy})
    }
  }
  for (const [k, e] of seqs) {
    const node = e.sides.length === 2 ? 'both' : e.sides[0]!
    if (node !== 'both') {
      out.push({
        kind: 'sequence_one_side',
        node,
        object: k,
        blocking: false,
        message: `sequence ${k} exists only on node ${node.toUpperCase()}`,
      })
    }
    out.push({
      kind: 'sequence_not_replicated',
      node,
      object: k,
      blocking: false,
      message: `sequence ${k}${e.ownedBy ? ` (owned by ${e.ownedBy})` : ''}: values are not replicated by logical replication`,
      hint: 'Set it on the subscriber before it takes writes (snapshot apply and node init copy sequence values).',
    })
  }
  // Publications.
  if (opts.publication) {
    const name = opts.publication
    const has = sides.filter(([, f]) => f.publications.some((p) => p.name === name)).map(([s]) => s)
    if (has.length === 0) {
      out.push({
        kind: 'publication_missing',
        node: 'both',
        object: name,
        blocking: true,
        message: `publication ${name} exists on neither node`,
        hint: `CREATE PUBLICATION ${name} FOR ALL TABLES (or FOR TABLE …) on the publishing node.`,
      })
    } else {
      for (const side of (['a', 'b'] as NodeSide[]).filter((s) => !has.includes(s))) {
        out.push({kind: 'publication_missing', node: side, object: name, blocking: false, message: `publication ${name} does not exist on node ${side.toUpperCase()} (fine if it only subscribes)`})
      }
      const missing = new Map<string, NodeSide[]>()
      for (const [side, f] of sides) {
        if (!has.includes(side)) continue
        for (const t of f.tables) {
          if (t.kind === 'partitioned' || t.unlogged || t.publications.includes(name)) continue
          const k = tableKey(t.schema, t.table)
          missing.set(k, [...(missing.get(k) ?? []), side])
        }
      }
      for (const [k, s] of missing) {
        out.push({
          kind: 'not_in_publication',
          node: s.length === 2 ? 'both' : s[0]!,
          object: k,
          blocking: true,
          message: `${k} is not in publication ${name}: its changes will not be replicated`,
          hint: `ALTER PUBLICATION ${name} ADD TABLE ${k}`,
        })
      }
    }
  } else {
    for (const [side, f] of sides) {
      if (f.publications.length === 0) continue
      for (const t of f.tables) {
        if (t.kind === 'partitioned' || t.unlogged || t.publications.length > 0) continue
        const k = tableKey(t.schema, t.table)
        out.push({
          kind: 'not_published',
          node: side,
          object: k,
          blocking: false,
          message: `${k} is in none of node ${side.toUpperCase()}'s publications (${f.publications.map((p) => p.name).join(', ')})`,
          hint: 'Name the publication with --publication to make this blocking.',
        })
      }
    }
  }
  const order: Record<ReadinessKind, number> = {publication_missing: 0, no_replica_identity: 1, not_in_publication: 2, not_published: 3, unlogged: 4, sequence_one_side: 5, sequence_not_replicated: 6}
  return out.sort((x, y) => order[x.kind] - order[y.kind] || (x.object < y.object ? -1 : x.object > y.object ? 1 : 0) || (x.node < y.node ? -1 : 1))
}

export interface CompareReport {
  nodeA: string
  nodeB: string
  tables: TableComparison[]
  summary: CompareSummary
  readiness: ReadinessIssue[]
  /** Something would break replication: exit 3. */
  blocking: boolean
  /** No table differs and no readiness issue at all. */
  identical: boolean
}

export function buildReport(nodeA: string, nodeB: string, tables: TableComparison[], readiness: ReadinessIssue[]): CompareReport {
  const blocking = tables.some((t) => t.blocking) || readiness.some((r) => r.blocking)
  return {
    nodeA,
    nodeB,
    tables,
    summary: summarize(tables),
    readiness,
    blocking,
    identical: tables.every((t) => t.status === 'MATCH' && t.differences.length === 0),
  }
}
