import {describe, expect, it} from 'vitest'
import {fkOrder} from '../../src/lib/merge/fk-order.js'
import {checkTables, type ColumnFacts, SCHEMA_KINDS, schemaNotes, type TableFacts, type TablePair} from '../../src/lib/merge/preflight.js'
import {compareTable} from '../../src/lib/schema/compare.js'
import {type ColumnDefinition, fingerprintOf, type TableFingerprint} from '../../src/lib/schema/fingerprint.js'
import {arithmeticCuts, arithmeticKeys, asArithmetic, cutRange, evenCuts, evenSplit, planBlocks, splitParts} from '../../src/lib/merge/ranges.js'
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

describe('pre-flight: schema compare of the merged tables', () => {
  // What the merge reads (ColumnFacts) plus what schema compare compares (nullability, collation).
  type Col = ColumnFacts & {notNull: boolean; collation: string | null}
  const col = (name: string, type = 'integer', o: Partial<Col> = {}): Col => ({name, type, notNull: false, collation: null, generated: false, ...o})
  const t = (columns: Col[], key = ['id'], kind: 'r' | 'p' = 'r'): TableFacts => ({schema: 'public', name: 't', kind, columns: columns.map(({name, type, generated}) => ({name, type, generated})), key, estRows: 0})
  // The schema capability's fingerprint of the same columns, as computeFingerprints reads it.
  const fp = (columns: Col[], defaults: Record<string, string> = {}): TableFingerprint => {
    const defs: ColumnDefinition[] = columns.map((c, i) => ({
      name: c.name,
      type: c.type,
      nullable: !c.notNull,
      collation: c.collation,
      default: defaults[c.name] ?? null,
      position: i + 1,
      identity: null,
      generated: c.generated ? 'stored' : null,
    }))
    return {schema: 'public', table: 't', kind: 'ordinary', fingerprint: fingerprintOf(defs), columnCount: defs.length, columns: defs}
  }
  const pair = (table: string, a: Col[] | null, b: Col[] | null, o: {keyA?: string[]; keyB?: string[]; kindB?: 'r' | 'p'; defaultsB?: Record<string, string>} = {}): TablePair => ({
    table,
    a: a ? t(a, o.keyA) : null,
    b: b ? t(b, o.keyB, o.kindB) : null,
    schema: a || b ? compareTable(table, a ? fp(a) : undefined, b ? fp(b, o.defaultsB) : undefined) : null,
  })

  it('refuses on what schema compare calls blocking, with the differences listed', () => {
    const base = [col('id', 'integer', {notNull: true}), col('v', 'text', {collation: '"pg_catalog"."default"'})]
    expect(checkTables([pair('public.ok', base, base)])).toEqual([])
    const typ = checkTables([pair('public.t', base, [base[0]!, col('v', 'character varying(10)', {collation: '"pg_catalog"."default"'})])])
    expect(typ).toEqual([{table: 'public.t', kind: 'schema_mismatch', message: 'public.t: column "v" type text vs character varying(10) (breaks replication)'}])
    const missing = checkTables([pair('public.t', [...base, col('extra')], base)])
    expect(missing).toEqual([{table: 'public.t', kind: 'schema_mismatch', message: 'public.t: column "extra" missing on node B (breaks replication)'}])
    const nul = checkTables([pair('public.t', base, [col('id'), base[1]!])])
    expect(nul.map((i) => i.message)).toEqual(['public.t: column "id" NOT NULL vs NULL (rows valid on one node fail on the other)'])
    const gen = checkTables([pair('public.t', base, [base[0]!, col('v', 'text', {collation: '"pg_catalog"."default"', generated: true})])])
    expect(gen[0]!.message).toMatch(/column "v" generated no vs stored/)
  })

  it('adds what only a merge needs equal: the primary key, key collations, the table kind', () => {
    const base = [col('id'), col('v')]
    expect(checkTables([pair('public.k', base, base, {keyB: ['v']})])).toEqual([{table: 'public.k', kind: 'key_mismatch', message: 'public.k: primary key (id) on node A but (v) on node B'}])
    expect(checkTables([pair('public.k', base, base, {keyB: ['id', 'v']})])[0]!.message).toBe('public.k: primary key (id) on node A but (id, v) on node B')
    const ka = [col('code', 'text', {collation: '"pg_catalog"."C"'})]
    const kb = [col('code', 'text', {collation: '"pg_catalog"."default"'})]
    const coll = checkTables([pair('public.c', ka, kb, {keyA: ['code'], keyB: ['code']})])
    expect(coll.map((i) => i.kind)).toEqual(['key_mismatch'])
    expect(coll[0]!.message).toMatch(/column "code" collation .* primary-key column/)
    expect(checkTables([pair('public.p', base, base, {kindB: 'p'})])).toEqual([{table: 'public.p', kind: 'kind_mismatch', message: 'public.p: an ordinary table on node A but a partitioned table on node B'}])
    for (const i of [...coll, ...checkTables([pair('public.p', base, base, {kindB: 'p'})])]) expect(SCHEMA_KINDS.has(i.kind)).toBe(true)
  })

  it('classifies table problems: neither node, one node, no key', () => {
    const ok = [col('id')]
    const issues = checkTables([pair('public.m', null, ok), pair('public.x', null, null), pair('public.n', ok, ok, {keyA: []}), pair('public.ok', ok, ok)])
    expect(issues.map((i) => [i.table, i.kind, SCHEMA_KINDS.has(i.kind)])).toEqual([
      ['public.m', 'one_side', true],
      ['public.x', 'missing', false],
      ['public.n', 'no_primary_key', false],
    ])
    expect(issues[0]!.message).toBe('table public.m exists only on node B (does not exist on node A)')
    expect(issues[2]!.message).toBe('table public.n has no primary key on node A')
  })

  it('passes on the non-blocking differences as notes (defaults, order, other collations)', () => {
    const a = [col('id'), col('v', 'text', {collation: '"pg_catalog"."C"'}), col('n')]
    const b = [col('id'), col('n'), col('v', 'text', {collation: '"pg_catalog"."default"'})]
    const p = pair('public.t', a, b, {defaultsB: {n: '0'}})
    expect(checkTables([p])).toEqual([])
    const notes = schemaNotes([p])
    expect(notes.some((n) => /column "v" collation/.test(n))).toBe(true)
    expect(notes.some((n) => /column "n" default \(none\) vs 0/.test(n))).toBe(true)
    expect(notes.some((n) => /column order differs/.test(n))).toBe(true)
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

describe('histogram cuts (single integer key)', () => {
  const bounds = (lo: number, hi: number, n = 101) => Array.from({length: n}, (_, i) => BigInt(Math.round(lo + ((hi - lo) * i) / (n - 1))))

  it('evenly spaced cuts from the second to the next-to-last bound, about blockRows a block', () => {
    const a = arithmeticCuts(bounds(1, 1_000_000), 1_000_000, {blockRows: 64, maxBlocks: 65536})!
    expect(a).not.toBeNull()
    const cuts = arithmeticKeys(a)
    expect(cuts).toHaveLength(a.count)
    expect(BigInt(cuts[0]![0]!)).toBe(10_000n + 1n)
    expect(BigInt(cuts.at(-1)![0]!)).toBeGreaterThanOrEqual(990_000n)
    expect(a.width).toBeGreaterThanOrEqual(60n)
    expect(a.width).toBeLessThanOrEqual(70n)
    expect(asArithmetic(cuts)).toEqual({base: a.base, width: a.width})
  })

  it('refuses sparse keys, no histogram, a flat one; bounded by maxBlocks', () => {
    expect(arithmeticCuts(bounds(1, 100_000_000), 1_000_000, {blockRows: 64, maxBlocks: 65536})).toBeNull()
    expect(arithmeticCuts([], 1000, {blockRows: 64, maxBlocks: 65536})).toBeNull()
    expect(arithmeticCuts([1n, 5n, 5n, 9n], 1000, {blockRows: 64, maxBlocks: 65536})).toBeNull()
    expect(arithmeticCuts(bounds(1, 1_000_000), 1_000_000, {blockRows: 1, maxBlocks: 100})!.count).toBe(99)
    // Keys beyond int53 stay exact.
    const big = arithmeticCuts([9007199254740000n, 9007199254740993n, 9007199254741993n, 9007199254742993n], 1500, {blockRows: 10, maxBlocks: 65536})!
    expect(arithmeticKeys(big)[0]).toEqual(['9007199254740993'])
  })

  it('min..max: dense keys only', () => {
    expect(evenCuts(1n, 1000n, 1000, {blockRows: 10, maxBlocks: 65536})).toEqual({base: -9n, width: 10n, count: 101})
    expect(evenCuts(1n, 1_000_000n, 1000, {blockRows: 10, maxBlocks: 65536})).toBeNull()
    expect(evenCuts(5n, 5n, 1, {blockRows: 10, maxBlocks: 65536})).toBeNull()
  })

  it('recognises evenly spaced integer cuts only', () => {
    expect(asArithmetic([['10'], ['20'], ['30']])).toEqual({base: 0n, width: 10n})
    expect(asArithmetic([['10'], ['20'], ['31']])).toBeNull()
    expect(asArithmetic([['10']])).toBeNull()
    expect(asArithmetic([['a'], ['b']])).toBeNull()
    expect(asArithmetic([['1', 'x'], ['2', 'y']])).toBeNull()
    expect(asArithmetic([['-30'], ['-20'], ['-10']])).toEqual({base: -40n, width: 10n})
  })
})

describe('even splits of dense integer ranges', () => {
  it('cuts a closed dense range into equal widths, strictly inside', () => {
    expect(evenSplit({lo: ['0'], hi: ['64']}, 64, 8)).toEqual(['8', '16', '24', '32', '40', '48', '56'].map((x) => [x]))
    expect(evenSplit({lo: ['-10'], hi: ['-3']}, 7, 3)).toEqual([['-7'], ['-4']])
    expect(evenSplit({lo: ['5'], hi: ['7']}, 2, 8)).toEqual([['6']])
    expect(evenSplit({lo: ['9007199254740990'], hi: ['9007199254741000']}, 10, 2)).toEqual([['9007199254740995']])
  })

  it('leaves open, sparse, tiny or non-integer ranges to the rows', () => {
    expect(evenSplit({lo: null, hi: ['64']}, 64, 8)).toBeNull()
    expect(evenSplit({lo: ['0'], hi: null}, 64, 8)).toBeNull()
    expect(evenSplit({lo: ['0'], hi: ['1000']}, 64, 8)).toBeNull()
    expect(evenSplit({lo: ['5'], hi: ['6']}, 1, 8)).toBeNull()
    expect(evenSplit({lo: ['a'], hi: ['b']}, 1, 8)).toBeNull()
    expect(evenSplit({lo: ['1', 'a'], hi: ['2', 'b']}, 1, 8)).toBeNull()
  })
})
