import {describe, expect, it} from 'vitest'
import {listSome, renderCompare} from '../../src/lib/schema/cli.js'
import {buildReport, compareFingerprintSets, diffColumns, readinessIssues, type ReplicationFacts, type ReplicationTableFacts} from '../../src/lib/schema/compare.js'
import {type ColumnDefinition, fingerprintOf, type TableFingerprint} from '../../src/lib/schema/fingerprint.js'

const col = (position: number, name: string, type: string, p: Partial<ColumnDefinition> = {}): ColumnDefinition => ({
  name,
  type,
  position,
  nullable: true,
  collation: null,
  default: null,
  identity: null,
  generated: null,
  ...p,
})

const fp = (schema: string, table: string, columns: ColumnDefinition[]): TableFingerprint => ({
  schema,
  table,
  kind: 'ordinary',
  fingerprint: fingerprintOf(columns),
  columnCount: columns.length,
  columns,
})

describe('column differences', () => {
  const base = [col(1, 'id', 'integer', {nullable: false}), col(2, 'name', 'text', {default: "'x'::text"}), col(3, 'qty', 'numeric(10,2)')]

  it('type changes, missing columns and nullability are blocking', () => {
    const other = [col(1, 'id', 'bigint', {nullable: false}), col(2, 'name', 'text', {default: "'x'::text", nullable: false}), col(3, 'extra', 'text')]
    const d = diffColumns(base, other)
    expect(d.map((x) => [x.column, x.kind, x.blocking])).toEqual([
      ['id', 'type', true],
      ['name', 'nullable', true],
      ['qty', 'missing_on_b', true],
      ['extra', 'missing_on_a', true],
    ])
    expect(d[0]).toMatchObject({a: 'integer', b: 'bigint'})
  })

  it('default-only, collation, identity and order differences are not blocking', () => {
    const other = [
      col(1, 'name', 'text', {default: null}),
      col(2, 'id', 'integer', {nullable: false, identity: 'by default'}),
      col(3, 'qty', 'numeric(10,2)', {collation: null}),
    ]
    const d = diffColumns(base, other)
    expect(d.every((x) => !x.blocking)).toBe(true)
    expect(d.map((x) => `${x.column}:${x.kind}`).sort()).toEqual(['id:identity', 'id:position', 'name:default', 'name:position'])
    expect(d.find((x) => x.kind === 'default')!.message).toContain("default 'x'::text vs (none)")
  })

  it('a generated column facing a regular one is blocking', () => {
    const d = diffColumns([col(1, 'g', 'text', {generated: 'stored'})], [col(1, 'g', 'text')])
    expect(d).toMatchObject([{kind: 'generated', blocking: true}])
  })
})

describe('fingerprint sets', () => {
  it('MATCH / MISMATCH / LOCAL_ONLY / REMOTE_ONLY, sorted by schema.table in code-point order', () => {
    const a = [fp('public', 'b', [col(1, 'x', 'int')]), fp('public', 'a', [col(1, 'x', 'int')]), fp('Z', 'only_a', []), fp('public', 'mm', [col(1, 'x', 'int')])]
    const b = [fp('public', 'a', [col(1, 'x', 'int', {default: '1'})]), fp('public', 'mm', [col(1, 'x', 'bigint')]), fp('public', 'only_b', []), fp('public', 'b', [col(1, 'x', 'int')])]
    const t = compareFingerprintSets(a, b)
    expect(t.map((x) => [x.key, x.status, x.blocking])).toEqual([
      ['Z.only_a', 'LOCAL_ONLY', true],
      ['public.a', 'MATCH', false],
      ['public.b', 'MATCH', false],
      ['public.mm', 'MISMATCH', true],
      ['public.only_b', 'REMOTE_ONLY', true],
    ])
    // a default-only difference keeps the fingerprint (MATCH) but is still listed
    expect(t[1]!.differences).toMatchObject([{kind: 'default', blocking: false}])
    const r = buildReport('A', 'B', t, [])
    expect(r.summary).toEqual({match: 2, mismatch: 1, localOnly: 1, remoteOnly: 1})
    expect(r.blocking).toBe(true)
    expect(renderCompare(r)).toMatch(/✗ LOCAL_ONLY \(1 table\): only on A/)
  })

  it('only non-blocking differences: compatible, not blocking', () => {
    const t = compareFingerprintSets([fp('s', 't', [col(1, 'a', 'int'), col(2, 'b', 'int')])], [fp('s', 't', [col(1, 'b', 'int'), col(2, 'a', 'int')])])
    expect(t[0]).toMatchObject({status: 'MISMATCH', blocking: false})
    const r = buildReport('A', 'B', t, [])
    expect(r.blocking).toBe(false)
    expect(renderCompare(r)).toContain('✓ Compatible for replication')
  })
})

const facts = (tables: Array<Partial<ReplicationTableFacts> & {table: string}>, extra: Partial<ReplicationFacts> = {}): ReplicationFacts => ({
  tables: tables.map((t) => ({schema: 'public', kind: 'ordinary', hasPrimaryKey: true, replicaIdentity: 'd', replicaIdentityIndexOk: false, publications: [], ...t})),
  sequences: [],
  publications: [],
  ...extra,
})

describe('replication readiness', () => {
  it('a table without primary key or usable replica identity is blocking; FULL or an index is fine', () => {
    const a = facts([
      {table: 'nopk', hasPrimaryKey: false},
      {table: 'full', hasPrimaryKey: false, replicaIdentity: 'f'},
      {table: 'idx', hasPrimaryKey: false, replicaIdentity: 'i', replicaIdentityIndexOk: true},
      {table: 'nothing', replicaIdentity: 'n'},
      {table: 'parent', kind: 'partitioned', hasPrimaryKey: false},
    ])
    const b = facts([{table: 'nopk', hasPrimaryKey: false}])
    const issues = readinessIssues(a, b)
    expect(issues.map((i) => [i.kind, i.object, i.node, i.blocking])).toEqual([
      ['no_replica_identity', 'public.nopk', 'both', true],
      ['no_replica_identity', 'public.nothing', 'a', true],
    ])
  })

  it('sequences and unlogged tables are reported, not blocking', () => {
    const a = facts([{table: 'u', unlogged: true}], {sequences: [{schema: 'public', name: 's', ownedBy: 'public.t.id'}, {schema: 'public', name: 'only_a', ownedBy: null}]})
    const b = facts([], {sequences: [{schema: 'public', name: 's', ownedBy: 'public.t.id'}]})
    const issues = readinessIssues(a, b)
    expect(issues.every((i) => !i.blocking)).toBe(true)
    expect(issues.map((i) => `${i.kind}:${i.object}:${i.node}`)).toEqual([
      'unlogged:public.u:a',
      'sequence_one_side:public.only_a:a',
      'sequence_not_replicated:public.only_a:a',
      'sequence_not_replicated:public.s:both',
    ])
  })

  it('with --publication, tables missing from it are blocking; a publication on neither node is blocking', () => {
    const pub = [{name: 'p', allTables: false, update: true, delete: true}]
    const a = facts([{table: 'in', publications: ['p']}, {table: 'out'}], {publications: pub})
    const b = facts([{table: 'in'}, {table: 'out'}])
    const issues = readinessIssues(a, b, {publication: 'p'})
    expect(issues.map((i) => [i.kind, i.object, i.node, i.blocking])).toEqual([
      ['publication_missing', 'p', 'b', false],
      ['not_in_publication', 'public.out', 'a', true],
    ])
    expect(readinessIssues(facts([]), facts([]), {publication: 'nope'})).toMatchObject([{kind: 'publication_missing', node: 'both', blocking: true}])
  })

  it('without --publication, tables in none of a node’s publications are reported, not blocking', () => {
    const a = facts([{table: 'in', publications: ['p']}, {table: 'out'}], {publications: [{name: 'p', allTables: false, update: true, delete: true}]})
    const issues = readinessIssues(a, facts([{table: 'in'}, {table: 'out'}]))
    expect(issues).toMatchObject([{kind: 'not_published', object: 'public.out', node: 'a', blocking: false}])
  })
})

describe('compare rendering', () => {
  it('lists at most 20 names, then a count; sequences on one line', () => {
    expect(listSome(['a', 'b'])).toBe('a, b')
    expect(listSome(Array.from({length: 25}, (_, i) => `t${i}`))).toMatch(/t19 … and 5 more$/)
    const seqFacts = (n: number): ReplicationFacts => ({tables: [], publications: [], sequences: Array.from({length: n}, (_, i) => ({schema: 's', name: `q${i}`, ownedBy: null}))})
    const r = buildReport('A', 'B', [], readinessIssues(seqFacts(30), seqFacts(30)))
    const text = renderCompare(r)
    expect(text).toMatch(/· 30 sequence\(s\) whose values logical replication does not carry: s\.q0, .* … and 10 more/)
    expect(text.split('\n').filter((l) => l.includes('s.q'))).toHaveLength(1)
    expect(text).toContain('✓ Compatible for replication')
  })
})
