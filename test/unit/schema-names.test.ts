import {describe, expect, it} from 'vitest'
import {lit, parseQualifiedName, parseQualifiedNameList, qi, qname} from '../../src/lib/schema/names.js'

describe('schema names', () => {
  it('quotes every identifier, doubling embedded quotes', () => {
    expect(qi('abc')).toBe('"abc"')
    expect(qi('Order "Items"')).toBe('"Order ""Items"""')
    expect(qname('Weird.s', 'select')).toBe('"Weird.s"."select"')
    expect(lit("it's")).toBe("'it''s'")
  })

  it('parses schema.table like psql: unquoted folded, quoted kept', () => {
    expect(parseQualifiedName('orders')).toEqual({schema: 'public', name: 'orders'})
    expect(parseQualifiedName('App.Orders')).toEqual({schema: 'app', name: 'orders'})
    expect(parseQualifiedName('"My Schema"."Order.Items"')).toEqual({schema: 'My Schema', name: 'Order.Items'})
    expect(parseQualifiedName('"a""b".c')).toEqual({schema: 'a"b', name: 'c'})
    expect(parseQualifiedName('s."ünï 表"')).toEqual({schema: 's', name: 'ünï 表'})
  })

  it('rejects malformed names with a usage error', () => {
    for (const bad of ['', 'a.b.c', '"unterminated', 'a.', '.b', '"x"y', 'a"b']) {
      expect(() => parseQualifiedName(bad), bad).toThrowError(expect.objectContaining({exitCode: 2}))
    }
  })

  it('ignores spaces around the dot, also next to quoted parts; honours another default schema', () => {
    expect(parseQualifiedName(' "My Schema" . "T" ')).toEqual({schema: 'My Schema', name: 'T'})
    expect(parseQualifiedName('s . t')).toEqual({schema: 's', name: 't'})
    expect(parseQualifiedName('s. "T"')).toEqual({schema: 's', name: 'T'})
    expect(parseQualifiedName('Orders', 'app')).toEqual({schema: 'app', name: 'orders'})
    expect(() => parseQualifiedName('"Mixed"Case', 'app')).toThrowError(expect.objectContaining({exitCode: 2}))
  })

  it('splits a comma-separated list outside quotes, drops empties and duplicates', () => {
    expect(parseQualifiedNameList('a, s.b ,"X,Y".c,,A')).toEqual([
      {schema: 'public', name: 'a'},
      {schema: 's', name: 'b'},
      {schema: 'X,Y', name: 'c'},
    ])
    expect(parseQualifiedNameList('"a"",b"."c,d", "Q"')).toEqual([
      {schema: 'a",b', name: 'c,d'},
      {schema: 'public', name: 'Q'},
    ])
    expect(parseQualifiedNameList(' , ')).toEqual([])
    expect(() => parseQualifiedNameList('a,b.c.d')).toThrowError(expect.objectContaining({exitCode: 2}))
  })
})
