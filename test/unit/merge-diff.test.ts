import {createHash} from 'node:crypto'
import {describe, expect, it} from 'vitest'
import {type BlockStat, categorize, diffTable, type LeafRow, type RangeSource, type Side, type SplitRequest} from '../../src/lib/merge/diff.js'
import type {Key, KeyRange} from '../../src/lib/merge/ranges.js'

// An in-memory node: rows sorted by a numeric composite key; hashes are a 64-bit digest of key+value
// folded with XOR, like the SQL side.
type Rows = Map<string, {key: number[]; value: string}>

const cmp = (x: number[], y: number[]) => {
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!
  return x.length - y.length
}
const num = (k: Key) => k.map(Number)
const h64 = (s: string) => BigInt('0x' + createHash('sha256').update(s).digest('hex').slice(0, 16))

class FakeSource implements RangeSource {
  calls = {cutStats: 0, rangeStats: 0, splitKeys: 0, leafRows: 0}
  rowsTouched = 0
  constructor(private readonly nodes: Record<Side, Rows>) {}
  private sorted(side: Side) {
    return [...this.nodes[side].values()].sort((x, y) => cmp(x.key, y.key))
  }
  private inRange(k: number[], r: KeyRange) {
    return (!r.lo || cmp(k, num(r.lo)) >= 0) && (!r.hi || cmp(k, num(r.hi)) < 0)
  }
  private stat(side: Side, r: KeyRange): BlockStat {
    let count = 0
    let x = 0n
    for (const row of this.sorted(side)) {
      if (!this.inRange(row.key, r)) continue
      count++
      x ^= h64(JSON.stringify(row))
    }
    this.rowsTouched += count
    return {count, hash: x.toString(16)}
  }
  async cutStats(side: Side, cuts: Key[]) {
    this.calls.cutStats++
    const bounds = [null, ...cuts, null]
    return bounds.slice(0, -1).map((lo, i) => this.stat(side, {lo, hi: bounds[i + 1]!}))
  }
  async rangeStats(side: Side, ranges: KeyRange[]) {
    this.calls.rangeStats++
    return ranges.map((r) => this.stat(side, r))
  }
  async splitKeys(side: Side, reqs: SplitRequest[]) {
    this.calls.splitKeys++
    return reqs.map((q) => {
      const rows = this.sorted(side).filter((r) => this.inRange(r.key, q.range))
      const step = Math.max(1, Math.ceil(q.rows / q.parts))
      const out: Key[] = []
      rows.forEach((r, i) => {
        const rn = i + 1
        if (rn > 1 && (rn - 1) % step === 0 && (rn - 1) / step < q.parts) out.push(r.key.map(String))
      })
      return out
    })
  }
  async leafRows(side: Side, ranges: KeyRange[]): Promise<LeafRow[]> {
    this.calls.leafRows++
    return ranges.flatMap((r) => this.sorted(side).filter((row) => this.inRange(row.key, r)).map((row) => ({key: row.key.map(String), hash: h64(JSON.stringify(row)).toString(16)})))
  }
}

function rng(seed: number) {
  let s = seed >>> 0
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32)
}

function table(keys: number[][], value: (k: number[]) => string): Rows {
  return new Map(keys.map((k) => [JSON.stringify(k), {key: k, value: value(k)}]))
}

function bruteForce(a: Rows, b: Rows) {
  let match = 0
  const conflicts: string[] = []
  const aOnly: string[] = []
  const bOnly: string[] = []
  const ids = [...new Set([...a.keys(), ...b.keys()])].sort((x, y) => cmp(JSON.parse(x), JSON.parse(y)))
  for (const id of ids) {
    const x = a.get(id)
    const y = b.get(id)
    if (x && y) {
      if (x.value === y.value) match++
      else conflicts.push(id)
    } else if (x) aOnly.push(id)
    else bOnly.push(id)
  }
  return {match, conflicts, aOnly, bOnly}
}

const ids = (rows: Array<{key: Key}>) => rows.map((r) => JSON.stringify(num(r.key)))

describe('diffTable over a fake range source', () => {
  it('finds exactly what a brute-force join finds, for random tables, cuts and tunings', async () => {
    const rand = rng(7)
    for (let round = 0; round < 40; round++) {
      const n = 1 + Math.floor(rand() * 400)
      const composite = rand() < 0.3
      const keys: number[][] = []
      for (let i = 0; i < n; i++) keys.push(composite ? [Math.floor(i / 7), i % 7] : [i * 3 - 50])
      const a = table(keys, (k) => `v${k.join('.')}`)
      const b = table(keys, (k) => `v${k.join('.')}`)
      // Differences: changes, deletions on either side, and keys outside the other's span.
      for (const k of keys) {
        const id = JSON.stringify(k)
        const r = rand()
        if (r < 0.03) b.get(id)!.value = 'changed'
        else if (r < 0.05) a.delete(id)
        else if (r < 0.07) b.delete(id)
      }
      const extra = composite ? [[-1, 0], [99999, 3]] : [[-1000], [99999]]
      for (const k of extra) (rand() < 0.5 ? a : b).set(JSON.stringify(k), {key: k, value: 'edge'})
      // Cuts from "a sample" of A, sometimes exactly on differing keys, sometimes none at all.
      const sample = [...a.values()].map((r) => r.key).sort(cmp)
      const nCuts = rand() < 0.2 ? 0 : Math.floor(rand() * 20)
      const cuts = [...new Set(Array.from({length: nCuts}, () => Math.floor(rand() * sample.length)))].sort((x, y) => x - y).map((i) => sample[i]!.map(String))
      const src = new FakeSource({a, b})
      const opts = {cuts, leafRows: 1 + Math.floor(rand() * 10), fanout: 2 + Math.floor(rand() * 8), batch: 1 + Math.floor(rand() * 50)}
      const got = await diffTable(src, opts)
      const want = bruteForce(a, b)
      expect({match: got.match, conflicts: ids(got.conflicts), aOnly: ids(got.aOnlyRows), bOnly: ids(got.bOnlyRows)}).toEqual(want)
      expect(got.total).toBe(new Set([...a.keys(), ...b.keys()]).size)
    }
  })

  it('identical tables: only the top level is hashed, nothing is fetched row by row', async () => {
    const keys = Array.from({length: 1000}, (_, i) => [i])
    const src = new FakeSource({a: table(keys, String), b: table(keys, String)})
    const r = await diffTable(src, {cuts: [['250'], ['500'], ['750']], leafRows: 8, fanout: 8, batch: 100})
    expect(r).toMatchObject({total: 1000, match: 1000, conflict: 0, aOnly: 0, bOnly: 0})
    expect(src.calls).toEqual({cutStats: 2, rangeStats: 0, splitKeys: 0, leafRows: 0})
    expect(r.stats.leafRanges).toBe(0)
  })

  it('one difference in 10 000 rows: the work below the top level stays small', async () => {
    const keys = Array.from({length: 10000}, (_, i) => [i])
    const a = table(keys, String)
    const b = table(keys, String)
    b.get('[4321]')!.value = 'x'
    const cuts = Array.from({length: 78}, (_, i) => [String((i + 1) * 128)])
    const src = new FakeSource({a, b})
    const r = await diffTable(src, {cuts, leafRows: 8, fanout: 8, batch: 100})
    expect(ids(r.conflicts)).toEqual(['[4321]'])
    expect(r.stats.leafRowsA).toBeLessThanOrEqual(8)
    expect(r.stats.differingRanges).toBeLessThanOrEqual(4)
  })

  it('stops when cancelled', async () => {
    const ac = new AbortController()
    ac.abort()
    const src = new FakeSource({a: new Map(), b: new Map()})
    await expect(diffTable(src, {cuts: [], leafRows: 8, fanout: 8, batch: 10, signal: ac.signal})).rejects.toThrow(/cancelled/)
  })
})

describe('categorize', () => {
  it('matches by key across leaves; a key returned twice by one node is an error (overlapping ranges)', () => {
    const r = categorize(
      [{key: ['1'], hash: 'a'}, {key: ['2'], hash: 'b'}, {key: ['3'], hash: 'c'}],
      [{key: ['3'], hash: 'c'}, {key: ['2'], hash: 'B'}, {key: ['4'], hash: 'd'}],
    )
    expect(r.match).toBe(1)
    expect(r.conflicts).toEqual([{key: ['2'], hashA: 'b', hashB: 'B'}])
    expect(r.aOnlyRows).toEqual([{key: ['1'], hashA: 'a', hashB: null}])
    expect(r.bOnlyRows).toEqual([{key: ['4'], hashA: null, hashB: 'd'}])
    expect(() => categorize([{key: ['1'], hash: 'a'}, {key: ['1'], hash: 'a'}], [])).toThrow(/twice/)
  })
})
