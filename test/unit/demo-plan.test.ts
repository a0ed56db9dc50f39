// The demo's pure parts: how --rows is spread, what the divergence must produce, how the printed
// commands are quoted.

import {describe, expect, it} from 'vitest'
import {commandLine, demoUrl, shellQuote, summaryLines} from '../../src/lib/demo/render.js'
import {burstSql, divergenceFor, divergenceSql, expectedMerge, sampleSizes, WAREHOUSES} from '../../src/lib/demo/sample.js'

describe('demo sample', () => {
  it('spreads --rows over the tables, about rows in total', () => {
    for (const rows of [2000, 300_000, 5_000_000]) {
      const s = sampleSizes(rows)
      const total = s.customers + s.products + s.orders + s.items + s.stock
      expect(Math.abs(total - rows) / rows).toBeLessThan(0.01)
      expect(s.stock).toBe(s.products * WAREHOUSES.length)
      expect(s.items).toBeGreaterThanOrEqual(s.orders)
    }
    expect(sampleSizes(10).products).toBeGreaterThanOrEqual(50)
  })

  it('diverges distinct rows, and expects last-modified to keep B for newer rows, A for older', () => {
    const d = divergenceFor(18)
    expect(expectedMerge(d)).toEqual({conflict: 5, aOnly: 4, bOnly: 2, keptA: 2, keptB: 3, aToB: 4, bToA: 2})
    const sql = divergenceSql(d)
    const ids = [...sql.matchAll(/IN \(([^)]*)\)/g)].flatMap((m) => m[1]!.split(', ').map(Number))
    expect(new Set(ids).size).toBe(ids.length)
    expect(ids.length).toBe(3 + 2 + 4 + 2)
    expect(sql).toContain('"Inventory"."StockLevel"')
  })

  it('leaves out rows only on the target on PostgreSQL 15 (no origin = none)', () => {
    expect(divergenceFor(15).insertedOnB).toBe(0)
    expect(divergenceSql(divergenceFor(15))).not.toContain('INSERT')
    expect(expectedMerge(divergenceFor(15))).toMatchObject({bOnly: 0, bToA: 0})
  })

  it('sizes the WAL burst in chunks of about 17 MB', () => {
    const s = burstSql(96)
    expect(s[0]).toMatch(/^CREATE TABLE/)
    expect(s.length - 1).toBe(6)
  })
})

describe('demo output', () => {
  it('quotes arguments as a shell needs', () => {
    expect(shellQuote('--tables')).toBe('--tables')
    expect(shellQuote('"Inventory"."StockLevel"')).toBe(`'"Inventory"."StockLevel"'`)
    expect(shellQuote("it's")).toBe(`'it'\\''s'`)
    expect(shellQuote('host=db1 dbname=app')).toBe(`'host=db1 dbname=app'`)
    expect(commandLine('steep-repl', ['install', '-d', demoUrl(5433)])).toBe('$ steep-repl install -d postgresql://postgres@127.0.0.1:5433/postgres')
  })

  it('summarises the checks', () => {
    const lines = summaryLines({checks: [{name: 'a', ok: true, detail: 'x'}, {name: 'b', ok: false, detail: 'y'}], seconds: 1.25, counts: [{table: 't', source: 3, target: 3}]})
    expect(lines).toContain('  ✓ a: x')
    expect(lines).toContain('  ✗ b: y')
    expect(lines.at(-1)).toBe('1 check(s) failed.')
  })
})
