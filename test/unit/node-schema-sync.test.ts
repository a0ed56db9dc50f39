import {describe, expect, it} from 'vitest'
import {buildReport, compareFingerprintSets, readinessIssues, type ReplicationFacts} from '../../src/lib/schema/compare.js'
import {type ColumnDefinition, fingerprintOf, type TableFingerprint} from '../../src/lib/schema/fingerprint.js'
import {schemaFindings} from '../../src/lib/node/schema-sync.js'
import {prepareNames} from '../../src/lib/node/prepare.js'

const col = (name: string, type: string, position: number, extra: Partial<ColumnDefinition> = {}): ColumnDefinition => ({
  name,
  type,
  nullable: true,
  collation: null,
  default: null,
  position,
  identity: null,
  generated: null,
  ...extra,
})
const fp = (schema: string, table: string, columns: ColumnDefinition[]): TableFingerprint => ({schema, table, kind: 'ordinary', fingerprint: fingerprintOf(columns), columnCount: columns.length, columns})
const facts = (tables: Array<{schema: string; table: string; pk: boolean}>): ReplicationFacts => ({
  tables: tables.map((t) => ({schema: t.schema, table: t.table, kind: 'ordinary', hasPrimaryKey: t.pk, replicaIdentity: 'd', replicaIdentityIndexOk: false, unlogged: false, publications: []})),
  sequences: [],
  publications: [],
})

function report(a: TableFingerprint[], b: TableFingerprint[], fa = facts([]), fb = facts([])) {
  return buildReport('src', 'dst', compareFingerprintSets(a, b), readinessIssues(fa, fb))
}

describe('schemaFindings (--schema-sync from the schema compare report)', () => {
  const id = col('id', 'integer', 1, {nullable: false})
  it('blocks on what schema compare counts as blocking, for the tables in scope only', () => {
    const r = report(
      [fp('public', 'items', [id, col('v', 'integer', 2)]), fp('public', 'other', [id]), fp('public', 'new', [id])],
      [fp('public', 'items', [id, col('v', 'bigint', 2), col('extra', 'text', 3)]), fp('public', 'other', [id, col('x', 'int', 2)])],
    )
    expect(r.blocking).toBe(true)
    const f = schemaFindings(r, [{schema: 'public', name: 'items'}])
    expect(f.blocking).toEqual(['public.items.v: type integer vs bigint (breaks replication)', 'public.items.extra: missing on node A (breaks replication)'])
    expect(f.notes).toEqual([])
    // 'new' exists only on the source: the init creates it, it is not a finding.
    expect(schemaFindings(r, []).blocking).toEqual([])
  })
  it('only notes what schema compare reports without blocking (a default, a column order)', () => {
    const r = report([fp('s', 't', [id, col('v', 'text', 2, {default: "'a'::text"})])], [fp('s', 't', [id, col('v', 'text', 2)])])
    expect(r.blocking).toBe(false)
    const f = schemaFindings(r, [{schema: 's', name: 't'}])
    expect(f.blocking).toEqual([])
    expect(f.notes).toHaveLength(1)
    expect(f.notes[0]).toMatch(/^s\.t\.v: default/)
  })
  it('includes blocking readiness issues of the tables in scope (no replica identity), not publication membership', () => {
    const t = [fp('public', 'log', [col('msg', 'text', 1)])]
    const r = report(t, t, facts([{schema: 'public', table: 'log', pk: false}]), facts([{schema: 'public', table: 'log', pk: false}]))
    expect(r.blocking).toBe(true)
    const f = schemaFindings(r, [{schema: 'public', name: 'log'}])
    expect(f.blocking.length).toBeGreaterThan(0)
    expect(f.blocking.every((x) => x.startsWith('public.log ('))).toBe(true)
    expect([...f.blocking, ...f.notes].some((x) => /publication/.test(x))).toBe(false)
  })
  it('a table dropped on the target since is blocking when named', () => {
    const r = report([fp('public', 'gone', [id])], [])
    expect(schemaFindings(r, [{schema: 'public', name: 'gone'}]).blocking).toEqual(['public.gone: exists only on src'])
  })
})

describe('prepareNames', () => {
  it('names the slot like the subscription node complete creates, the publication like snapshot generate', () => {
    expect(prepareNames('DB-2', 'db1', 'snap_20260101_000000_abcd1234')).toEqual({
      slot: 'steep_sub_db_2_from_db1',
      subscription: 'steep_sub_db_2_from_db1',
      publication: 'steep_pub_snap_20260101_000000_abcd1234',
    })
  })
})
