import {describe, expect, it} from 'vitest'
import {canonicalJson, checkManifest, dataFileName, isSafeRelativePath, type Manifest, newSnapshotId, sealManifest, tableFormat} from '../../src/lib/snapshot/manifest.js'

const h = (c: string) => c.repeat(64)

function sample(): Omit<Manifest, 'checksum'> {
  const part = {index: 0, range: {kind: 'all' as const}, file: dataFileName(1, 0, '.zst'), rows: 3, rawBytes: 30, fileBytes: 20, sha256: h('a'), dataSha256: h('b')}
  return {
    format: 'steep-repl-snapshot',
    formatVersion: 1,
    snapshotId: 'snap_20261122_010203_abcdef01',
    createdAt: '2026-11-22T01:02:03.000Z',
    tool: {name: 'steep-repl', version: '0.1.0'},
    source: {nodeId: null, database: 'app', serverVersion: '18.4', serverVersionNum: 180004, systemIdentifier: '7300000000000000000'},
    lsn: '0/1A2B3C4',
    slot: {name: 'steep_snap', kept: true},
    publication: 'steep_pub',
    compression: {algorithm: 'zstd', level: 3},
    schemaFiles: {preData: {file: 'schema/pre-data.sql', bytes: 10, sha256: h('c')}, postData: {file: 'schema/post-data.sql', bytes: 5, sha256: h('d')}, postDataPlan: {file: 'schema/post-data.json', bytes: 7, sha256: h('e')}},
    tables: [{schema: 'public', name: 'Mixed "Case"', columns: ['id', 'v'], rows: 3, rawBytes: 30, parts: [part]}],
    sequences: [{schema: 'public', name: 's', lastValue: '9223372036854775807', isCalled: false}],
    totals: {tables: 1, parts: 1, rows: 3, rawBytes: 30, fileBytes: 20},
  }
}

describe('manifest', () => {
  it('seals and checks a manifest', () => {
    const m = sealManifest(sample())
    expect(m.checksum).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(checkManifest(JSON.parse(JSON.stringify(m)))).toMatchObject({ok: true})
  })

  it('the checksum does not depend on key order or formatting', () => {
    const m = sealManifest(sample())
    const reordered = Object.fromEntries(Object.entries(m).reverse())
    expect(checkManifest(reordered)).toMatchObject({ok: true})
    expect(canonicalJson({b: 1, a: [{d: 2, c: 3}]})).toBe('{"a":[{"c":3,"d":2}],"b":1}')
  })

  it('detects any edit', () => {
    const m = sealManifest(sample())
    const edited = structuredClone(m)
    edited.tables[0]!.rows = 4
    const r = checkManifest(edited)
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.problems.map((p) => p.path)).toContain('checksum')
  })

  it.each(['../etc/passwd', 'data/../../x', '/abs/data/x', 'data/sub/x', 'other/x', 'data/.hidden', 'data/'])('refuses the path %s', (p) => {
    expect(isSafeRelativePath(p)).toBe(false)
    const bad = sample()
    bad.tables[0]!.parts[0]!.file = p
    const r = checkManifest(sealManifest(bad))
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.problems[0]!.path).toBe('tables.0.parts.0.file')
  })

  it('refuses totals that do not add up and duplicate files', () => {
    const bad = sample()
    bad.totals.rows = 99
    bad.tables.push({...bad.tables[0]!, name: 'other'})
    bad.totals.tables = 2
    const r = checkManifest(sealManifest(bad))
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.problems.map((p) => p.path).sort()).toEqual(['tables.1.parts.0.file', 'totals.fileBytes', 'totals.parts', 'totals.rawBytes', 'totals.rows'])
  })

  it('refuses unknown fields and wrong versions', () => {
    expect(checkManifest({...sealManifest(sample()), extra: 1}).ok).toBe(false)
    expect(checkManifest(sealManifest({...sample(), formatVersion: 4 as never})).ok).toBe(false)
    expect(checkManifest(sealManifest({...sample(), tables: sample().tables.map((t) => ({...t, format: 'csv' as never}))})).ok).toBe(false)
    expect(checkManifest('not an object').ok).toBe(false)
  })

  it('reads format version 1 (every table in text) and 2 (a COPY format per table)', () => {
    const v1 = checkManifest(sealManifest(sample()))
    expect(v1.ok && tableFormat(v1.manifest.tables[0]!)).toBe('text')
    const v2 = checkManifest(sealManifest({...sample(), formatVersion: 2, tables: sample().tables.map((t) => ({...t, format: 'binary' as const}))}))
    expect(v2.ok && tableFormat(v2.manifest.tables[0]!)).toBe('binary')
  })

  it('a part without dataSha256: only compressed, only from format version 3', () => {
    const withoutData = (formatVersion: 1 | 2 | 3, algorithm: 'zstd' | 'none') => {
      const m = sample()
      m.formatVersion = formatVersion
      m.compression = {algorithm, level: algorithm === 'none' ? 0 : 3}
      m.tables[0]!.parts[0]!.dataSha256 = null
      return checkManifest(sealManifest(m))
    }
    expect(withoutData(3, 'zstd').ok).toBe(true)
    for (const [v, a] of [[2, 'zstd'], [1, 'zstd'], [3, 'none']] as const) {
      const r = withoutData(v, a)
      expect(r.ok).toBe(false)
      if (!r.ok) expect(r.problems.map((p) => p.path)).toEqual(['tables.0.parts.0.dataSha256'])
    }
  })

  it('names snapshots and data files', () => {
    expect(newSnapshotId(new Date('2026-11-22T01:02:03Z'), 'deadbeefcafe')).toBe('snap_20261122_010203_deadbeef')
    expect(dataFileName(12, 3, '.lz4')).toBe('data/00012.0003.copy.lz4')
  })
})
