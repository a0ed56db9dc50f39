import {describe, expect, it} from 'vitest'
import {fkOrder} from '../../src/lib/merge/fk-order.js'
import {checkTables, compareColumns, type ColumnFacts, type TableFacts} from '../../src/lib/merge/preflight.js'
import {cutRange, planBlocks, splitParts} from '../../src/lib/merge/ranges.js'
import {chooseTimestampColumn, decide, parseStrategy} from '../../src/lib/merge/strategy.js'
import {parseTableList, tableLabel} from '../../src/lib/merge/tables.js'

describe('ranges', () => {
  it('cutting a range gives contiguous half-open ranges with open ends', () => {
    expect(cutRange({lo: null, hi: null}, [['10'], ['20']])).toEqual([
      {lo: null, hi: ['10']},
      {lo: ['10'], hi: ['20']},
      {lo: ['20'], hi: null},
    ])
    expect(cutRange({lo: ['5'], hi: ['9']}, [])).toEqual([{lo: ['5'], hi: ['9']}])
  })

  it('plans blocks from the row estimate, bounded, sampling ~10 keys a block', () => {
    expect(planBlocks(100, {blockRows: 128, maxBlocks: 1000})).toEqual({blocks: 1, samplePercent: 0, sampleMethod: 'BERNOULLI'})
    expect(planBlocks(-1, {blockRows: 128, maxBlocks: 1000}).blocks).toBe(1)
    const p = planBlocks(1_000_000, {blockRows: 128, maxBlocks: 65536})
    expect(p.blocks).toBe(7813)
    expect(p.samplePercent).toBeCloseTo(7.813, 2)
    expect(planBlocks(1e9, {blockRows: 128, maxBlocks: 65536})).toMatchObject({blocks: 65536, sampleMethod: 'SYSTEM'})
    expect(planBlocks(2000, {blockRows: 10, maxBlocks: 1000}).samplePercent).toBe(100)
  })

  it('splits a differing range into at most fanout parts, never one', () => {
    expect(splitParts(8, 8, 8)).toBe(1)
    expect(splitParts(9, 8, 8)).toBe(2)
    expect(splitParts(1000, 8, 8)).toBe(8)
    expect(splitParts(20, 8, 16)).toBe(3)
  })
})

describe('strategies', () => {
  it('parses the four strategies and refuses others', () => {
    expect(parseStrategy('manual')).toBe('manual')
    expect(() => parseStrategy('newest')).toThrow(/unknown strategy "newest"/)
  })

  it('decides per strategy; last-modified: newer wins, a timestamp beats none, ties keep A', () => {
    expect(decide('prefer-node-a')).toBe('kept_a')
    expect(decide('prefer-node-b')).toBe('kept_b')
    expect(decide('manual')).toBe('skipped')
    expect(decide('last-modified', '1700000000000001', '1700000000000002')).toBe('kept_b')
    expect(decide('last-modified', '1700000000000002', '1700000000000001')).toBe('kept_a')
    expect(decide('last-modified', '5', '5')).toBe('kept_a')
    expect(decide('last-modified', null, '5')).toBe('kept_b')
    expect(decide('last-modified', '5', null)).toBe('kept_a')
    expect(decide('last-modified', null, null)).toBe('kept_a')
    // Microsecond precision beyond float64: exact.
    expect(decide('last-modified', '9007199254740993', '9007199254740992')).toBe('kept_a')
  })

  it('finds the timestamp column, or says why not', () => {
    const cols = [{name: 'id', type: 'integer'}, {name: 'modified_at', type: 'timestamp(3) with time zone'}, {name: 'updated_at', type: 'text'}]
    expect(chooseTimestampColumn(cols)).toEqual({ok: true, column: 'modified_at'})
    expect(chooseTimestampColumn(cols, 'updated_at')).toEqual({ok: false, reason: 'column "updated_at" is text, not a timestamp or date'})
    expect(chooseTimestampColumn(cols, 'nope')).toMatchObject({ok: false})
    expect(chooseTimestampColumn([{name: 'id', type: 'integer'}])).toMatchObject({ok: false, reason: expect.stringMatching(/--timestamp-column/)})
  })
})

describe('foreign-key order', () => {
  it('parents before children, deterministic, self-references and outside parents ignored', () => {
    expect(fkOrder(['s.d', 's.c', 's.b', 's.a'], [{parent: 's.a', child: 's.b'}, {parent: 's.b', child: 's.c'}, {parent: 's.c', child: 's.d'}])).toEqual({ok: true, order: ['s.a', 's.b', 's.c', 's.d']})
    expect(fkOrder(['x', 'b', 'a'], [{parent: 'outside', child: 'a'}, {parent: 'a', child: 'a'}])).toEqual({ok: true, order: ['a', 'b', 'x']})
    expect(fkOrder(['p', 'c', 'z'], [{parent: 'p', child: 'c'}, {parent: 'p', child: 'c'}])).toEqual({ok: true, order: ['p', 'c', 'z']})
  })

  it('reports a cycle with its members', () => {
    expect(fkOrder(['a', 'b', 'c'], [{parent: 'a', child: 'b'}, {parent: 'b', child: 'a'}])).toEqual({ok: false, cycle: ['a', 'b']})
  })
})

describe('pre-flight column comparison', () => {
  const col = (name: string, type = 'integer', o: Partial<ColumnFacts> = {}): ColumnFacts => ({name, type, notNull: false, collation: null, generated: false, ...o})
  const t = (columns: ColumnFacts[], key = ['id']): TableFacts => ({schema: 'public', name: 't', kind: 'r', columns, key, estRows: 0})

  it('names, types with modifiers, nullability, collation, order', () => {
    expect(compareColumns([col('id'), col('v', 'text')], [col('id'), col('v', 'text')])).toEqual([])
    expect(compareColumns([col('id'), col('v', 'numeric(10,2)')], [col('id'), col('v', 'numeric(12,2)')])).toEqual(['column "v" is numeric(10,2) on node A but numeric(12,2) on node B'])
    expect(compareColumns([col('id', 'integer', {notNull: true})], [col('id')])).toEqual(['column "id" is NOT NULL on node A but nullable on node B'])
    expect(compareColumns([col('a'), col('b')], [col('b'), col('a')])).toHaveLength(2)
    expect(compareColumns([col('a')], [col('a'), col('x')])).toEqual(['column 2 "x" (integer) exists only on node B'])
    expect(compareColumns([col('s', 'text', {collation: '"C"'})], [col('s', 'text', {collation: 'pg_catalog."default"'})])[0]).toMatch(/collation/)
  })

  it('classifies table problems', () => {
    const ok = t([col('id')])
    const issues = checkTables([
      {table: 'public.m', a: null, b: ok},
      {table: 'public.n', a: t([col('id')], []), b: ok},
      {table: 'public.k', a: ok, b: t([col('id')], ['v'])},
      {table: 'public.s', a: ok, b: t([col('id', 'bigint')])},
      {table: 'public.ok', a: ok, b: ok},
    ])
    expect(issues.map((i) => [i.table, i.kind])).toEqual([
      ['public.m', 'missing'],
      ['public.n', 'no_primary_key'],
      ['public.k', 'key_mismatch'],
      ['public.s', 'schema_mismatch'],
    ])
    expect(issues[0]!.message).toBe('table public.m does not exist on node A')
  })
})

describe('table names (--tables, through the schema parser)', () => {
  it('defaults to public, keeps quoted case, dots, commas and quotes, lowercases the rest', () => {
    expect(parseTableList('Orders')).toEqual([{schema: 'public', name: 'orders'}])
    expect(parseTableList('"My Schema"."Odd.Name"')).toEqual([{schema: 'My Schema', name: 'Odd.Name'}])
    expect(parseTableList('"a""b".t')).toEqual([{schema: 'a"b', name: 't'}])
    expect(parseTableList('a, s.b ,"X,Y".c,a')).toEqual([{schema: 'public', name: 'a'}, {schema: 's', name: 'b'}, {schema: 'X,Y', name: 'c'}])
    expect(parseTableList('Shop.Orders,"Shop".orders, shop.ORDERS')).toEqual([{schema: 'shop', name: 'orders'}, {schema: 'Shop', name: 'orders'}])
    expect(parseTableList('"a"",b"."c,d"')).toEqual([{schema: 'a",b', name: 'c,d'}])
    expect(tableLabel({schema: 'My Schema', name: 'T'})).toBe('My Schema.T')
  })

  it('refuses what it would have to guess (usage error, exit 2)', () => {
    for (const bad of ['a.b.c', '.t', '"open', 't.', 'a"b', '""."t"']) {
      expect(() => parseTableList(bad), bad).toThrowError(expect.objectContaining({exitCode: 2}))
    }
    expect(() => parseTableList(' , ')).toThrow(/names no table/)
  })
})
