import pg from 'pg'
import {describe, expect, it} from 'vitest'
import {keyBoundaries, pageBoundaries, type PartRange, partWeights, planParts, rangeWhere, type TableFacts} from '../../src/lib/snapshot/plan.js'

const q = pg.escapeIdentifier
const t = (name: string, bytes: number, extra: Partial<TableFacts> = {}): TableFacts => ({schema: 'public', name, bytes, pages: Math.ceil(bytes / 8192), rows: bytes / 100, ...extra})

/** Which part a key falls in, evaluating the ranges like the server would. */
function owner(ranges: PartRange[], key: bigint): number[] {
  return ranges
    .map((r, i) => {
      if (r.kind !== 'key') throw new Error('key ranges expected')
      const okFrom = r.from === null || key >= BigInt(r.from)
      const okTo = r.to === null || key < BigInt(r.to)
      return okFrom && okTo ? i : -1
    })
    .filter((i) => i >= 0)
}

describe('planParts', () => {
  it('keeps small tables whole and orders largest first', () => {
    const parts = planParts([t('small', 10), t('big', 1000), t('mid', 100)], {splitLargerThan: 0})
    expect(parts.map((p) => p.table.name)).toEqual(['big', 'mid', 'small'])
    expect(parts.every((p) => p.range.kind === 'all' && p.count === 1)).toBe(true)
  })

  it('splits on an integer key into half-open ranges with open ends, each key in exactly one part', () => {
    const table = t('orders', 10_000_000, {intKey: {column: 'id', min: '-5', max: '1000'}})
    const parts = planParts([table], {splitLargerThan: 1_000_000, by: 'key'}).sort((a, b) => a.index - b.index)
    expect(parts).toHaveLength(10)
    const ranges = parts.map((p) => p.range)
    expect(ranges[0]).toMatchObject({kind: 'key', from: null})
    expect(ranges.at(-1)).toMatchObject({kind: 'key', to: null})
    for (const k of [-1000n, -5n, -4n, 0n, 99n, 100n, 101n, 500n, 999n, 1000n, 1001n, 10n ** 18n]) expect(owner(ranges, k)).toHaveLength(1)
    for (let i = 0; i < ranges.length - 1; i++) expect((ranges[i] as {to: string}).to).toBe((ranges[i + 1] as {from: string}).from)
  })

  it('cuts on pages unless asked for key ranges, even where the table has an integer key', () => {
    const table = t('orders', 8192 * 1000, {pages: 1000, intKey: {column: 'id', min: '1', max: '1000000'}})
    expect(planParts([table], {splitLargerThan: 8192 * 250}).map((p) => p.range.kind)).toEqual(['pages', 'pages', 'pages', 'pages'])
    expect(planParts([table], {splitLargerThan: 8192 * 250, by: 'key'}).map((p) => p.range.kind)).toEqual(['key', 'key', 'key', 'key'])
  })

  it('rounds a split table\'s part count up to a multiple of the connections, within the part limit', () => {
    const table = t('accounts', 8192 * 1100, {pages: 1100})
    const count = (o: Parameters<typeof planParts>[1]) => planParts([table], o).length
    expect(count({splitLargerThan: 8192 * 100})).toBe(11)
    // 12 parts' worth; with two or more rounds of the connections the last C are cut finer (below).
    expect(count({splitLargerThan: 8192 * 100, connections: 2})).toBe(12 + 4)
    expect(count({splitLargerThan: 8192 * 100, connections: 4})).toBe(12 + 8)
    expect(count({splitLargerThan: 8192 * 100, connections: 3})).toBe(12 + 6)
    expect(count({splitLargerThan: 8192 * 100, connections: 5})).toBe(15 + 10)
    expect(count({splitLargerThan: 8192 * 100, connections: 5, maxParts: 13})).toBe(13)
    // Two rounds (4 on 2) get the finer end; one round only (2 on 2) keeps equal parts.
    expect(count({splitLargerThan: 8192 * 400, connections: 2})).toBe(4 + 4)
    expect(count({splitLargerThan: 8192 * 600, connections: 2})).toBe(2)
    // A table small enough to stay whole stays whole.
    expect(count({splitLargerThan: 8192 * 2000, connections: 4})).toBe(1)
    // Every page still in exactly one part.
    const parts = planParts([table], {splitLargerThan: 8192 * 100, connections: 2}).sort((a, b) => a.index - b.index)
    expect(parts[0]!.range).toMatchObject({from: null})
    expect(parts.at(-1)!.range).toMatchObject({to: null})
    for (let i = 0; i < parts.length - 1; i++) expect((parts[i]!.range as {to: number}).to).toBe((parts[i + 1]!.range as {from: number}).from)
  })

  it('ends a table split over several rounds in halves and quarters, scheduled last', () => {
    expect(partWeights(12, 2)).toEqual([4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 2, 2, 1, 1, 1, 1])
    expect(partWeights(3, 2)).toEqual([1, 1, 1])
    expect(partWeights(12, 1)).toEqual(Array.from({length: 12}, () => 1))
    expect(partWeights(12, 2, 15)).toEqual(Array.from({length: 12}, () => 1))
    const table = t('accounts', 8192 * 1200, {pages: 1200, intKey: {column: 'aid', min: '1', max: '1200000'}})
    for (const by of ['pages', 'key'] as const) {
      const parts = planParts([table], {splitLargerThan: 8192 * 100, connections: 2, by})
      // Largest first: ten full parts, then two halves, then four quarters.
      expect(parts.map((p) => Math.round((p.estBytes / 8192) * 10) / 10)).toEqual([...Array.from({length: 10}, () => 100), 50, 50, 25, 25, 25, 25])
      const widths = parts
        .sort((a, b) => a.index - b.index)
        .map((p) => {
          const r = p.range as {from: number | string | null; to: number | string | null}
          const lo = r.from === null ? (by === 'key' ? 1 : 0) : Number(r.from)
          const hi = r.to === null ? (by === 'key' ? 1200001 : 1200) : Number(r.to)
          return hi - lo
        })
      const unit = by === 'key' ? 1000 : 1
      expect(widths).toEqual([...Array.from({length: 10}, () => 100 * unit), 50 * unit, 50 * unit, 25 * unit, 25 * unit, 25 * unit, 25 * unit])
    }
    // Weighted cuts keep every range non-empty where the range is narrow.
    expect(pageBoundaries(3, [4, 4, 2, 1, 1])).toEqual([1, 2])
    expect(keyBoundaries(1n, 4n, [4, 4, 2, 1, 1])).toEqual([2n, 3n, 4n])
  })

  it('handles int8 bounds beyond Number precision', () => {
    const b = keyBoundaries(2n ** 62n, 2n ** 62n + 10n, 3)
    expect(b).toEqual([2n ** 62n + 3n, 2n ** 62n + 7n])
  })

  it('never makes more key parts than keys, and none for a single key', () => {
    expect(keyBoundaries(1n, 3n, 10)).toEqual([2n, 3n])
    expect(keyBoundaries(5n, 5n, 4)).toEqual([])
    const single = planParts([t('one', 1e9, {intKey: {column: 'id', min: '7', max: '7'}, pages: 1})], {splitLargerThan: 1e6, by: 'key'})
    expect(single).toHaveLength(1)
    expect(single[0]!.range.kind).toBe('all')
  })

  it('splits a table without an integer key by ctid pages, last part open', () => {
    const parts = planParts([t('logs', 8192 * 1000, {pages: 1000})], {splitLargerThan: 8192 * 250}).sort((a, b) => a.index - b.index)
    expect(parts.map((p) => p.range)).toEqual([
      {kind: 'pages', from: null, to: 250},
      {kind: 'pages', from: 250, to: 500},
      {kind: 'pages', from: 500, to: 750},
      {kind: 'pages', from: 750, to: null},
    ])
    expect(pageBoundaries(1, 4)).toEqual([])
  })

  it('caps the number of parts', () => {
    expect(planParts([t('huge', 1e12, {pages: 1e8})], {splitLargerThan: 1, maxParts: 16})).toHaveLength(16)
  })
})

describe('rangeWhere', () => {
  it('renders literals with the quoted column', () => {
    expect(rangeWhere({kind: 'key', column: 'Order Id', from: '10', to: '20'}, q)).toBe('"Order Id" >= 10 AND "Order Id" < 20')
    expect(rangeWhere({kind: 'key', column: 'id', from: null, to: '-3'}, q)).toBe('"id" < -3')
    expect(rangeWhere({kind: 'pages', from: 5, to: null}, q)).toBe(`ctid >= '(5,0)'::tid`)
    expect(rangeWhere({kind: 'all'}, q)).toBe('true')
  })

  it('refuses a bound that is not an integer', () => {
    expect(() => rangeWhere({kind: 'key', column: 'id', from: '1; DROP TABLE x', to: null}, q)).toThrow(/invalid range bound/)
  })
})
