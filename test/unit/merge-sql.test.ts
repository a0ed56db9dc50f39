import {describe, expect, it} from 'vitest'
import {auditInsertSql, bucketExpr, recordHashable, recordHashTerm, rowHashExpr, copyLine, cutStatsSql, fetchRowsSql, Params, parseBlocks, rangePredicate, rangesRowsSql, type SqlTable, updateRowsSql} from '../../src/lib/merge/sql.js'

const single: SqlTable = {schema: 'Sales', name: 'Order "x"', kind: 'r', columns: [{name: 'id', type: 'bigint'}, {name: 'v', type: 'text'}, {name: 'g', type: 'integer', generated: true}], key: [{name: 'id', type: 'bigint'}]}
const composite: SqlTable = {schema: 'public', name: 'lines', kind: 'p', columns: [{name: 'o', type: 'integer'}, {name: 'l', type: 'text'}, {name: 'q', type: 'integer'}], key: [{name: 'o', type: 'integer'}, {name: 'l', type: 'text'}]}

describe('merge SQL', () => {
  it('hashes the record of exact per-column terms where every type is built in, else the text row', () => {
    const cols: SqlTable['columns'] = [
      {name: 'id', type: 'bigint', typeOid: 20, send: 'int8send'},
      {name: 'Name', type: 'text', typeOid: 25, send: 'textsend'},
      {name: 'price', type: 'numeric(12,2)', typeOid: 1700, send: 'numeric_send'},
      {name: 'n', type: 'numeric', typeOid: 1700, send: 'numeric_send'},
      {name: 'f', type: 'double precision', typeOid: 701, send: 'float8send'},
      {name: 'c', type: 'character(3)', typeOid: 1042, send: 'bpcharsend'},
      {name: 'at', type: 'timestamp with time zone', typeOid: 1184, send: 'timestamptz_send'},
      {name: 'arr', type: 'integer[]', typeOid: 1007, send: 'array_send'},
    ]
    const t: SqlTable = {...composite, columns: cols, recordHash: true}
    expect(rowHashExpr(t, 'x')).toBe(
      'hash_record_extended(ROW(pg_catalog."int8send"(x."id"), x."Name" COLLATE "C", pg_catalog."numeric_send"(x."price"), pg_catalog."numeric_send"(x."n"), pg_catalog."float8send"(x."f"), pg_catalog."bpcharsend"(x."c"), pg_catalog."timestamptz_send"(x."at"), pg_catalog."array_send"(x."arr")), 0)',
    )
    expect(recordHashable(cols)).toBe(true)
    expect(recordHashTerm({name: 'k', type: 'integer', typeOid: 23, send: 'int4send'})).toBe('t."k"')
    // Facts missing (or a send function name that is not a plain identifier): not record-hashable.
    expect(recordHashable([{name: 'x', type: 'text'}])).toBe(false)
    expect(recordHashTerm({name: 'x', type: 'weird', typeOid: 9999, send: 'my.send'})).toBeNull()
    // OID aliases hash by name (text), not by the server's OID: regclass, and an array of regtype.
    expect(recordHashTerm({name: 'r', type: 'regclass', typeOid: 2205, send: 'regclasssend'})).toBeNull()
    expect(recordHashable([...cols, {name: 'rt', type: 'regtype[]', typeOid: 2211, send: 'array_send'}])).toBe(false)
    expect(rowHashExpr(composite)).toBe('hashtextextended(ROW(t."o", t."l", t."q")::text, 0)')
  })

  it('quotes identifiers and binds every bound; half-open ranges; ONLY for plain tables', () => {
    const p = new Params()
    expect(rangePredicate(single, {lo: ['5'], hi: ['9']}, p)).toBe('t."id" >= $1::bigint AND t."id" < $2::bigint')
    expect(rangePredicate(composite, {lo: null, hi: ['1', 'a']}, p)).toBe('(t."o", t."l") < ($3::integer, $4::text)')
    expect(rangePredicate(single, {lo: null, hi: null}, p)).toBe('true')
    expect(p.values).toEqual(['5', '9', '1', 'a'])
    const q = cutStatsSql(single, [['10'], ['20'], ['35']])
    expect(q.text).toContain('FROM ONLY "Sales"."Order ""x""" AS t')
    expect(q.text).toContain('width_bucket(t."id", $1::bigint[])')
    expect(q.values).toEqual([['10', '20', '35'], 3])
    expect(q.text).toContain('JOIN generate_series(0, $2::int4) AS g(b) ON g.b = width_bucket')
    // Evenly spaced integer cuts: the block by division, same numbering as width_bucket.
    const e = cutStatsSql(single, [['10'], ['20'], ['30']])
    expect(e.text).not.toContain('width_bucket')
    expect(e.text).toContain('CASE WHEN t."id" < $1::int8 THEN 0 WHEN t."id" >= $2::int8 THEN $3::int4 ELSE ((t."id" - $4::int8) / $5::int8)::int4 END')
    expect(e.values).toEqual(['10', '30', 3, '0', '10', 3])
    expect(cutStatsSql(composite, []).text).toContain('FROM "public"."lines" AS t')
  })

  it('composite keys: a balanced CASE tree numbering buckets like width_bucket', () => {
    const p = new Params()
    const e = bucketExpr(composite, 3, p, [['1', '2', '3'], ['a', 'b', 'c']])
    expect(e).toBe('CASE WHEN (t."o", t."l") < (($1::integer[])[2], ($2::text[])[2]) THEN CASE WHEN (t."o", t."l") < (($1::integer[])[1], ($2::text[])[1]) THEN 0 ELSE 1 END ELSE CASE WHEN (t."o", t."l") < (($1::integer[])[3], ($2::text[])[3]) THEN 2 ELSE 3 END END')
  })

  it('many ranges: closed ones through one unnest join, open ends as their own branches', () => {
    const p = new Params()
    const s = rangesRowsSql(single, [{lo: null, hi: ['3']}, {lo: ['3'], hi: ['7']}, {lo: ['9'], hi: ['12']}, {lo: ['12'], hi: null}], p, 't."v"')
    expect(s.split('UNION ALL')).toHaveLength(3)
    expect(s).toContain('unnest($1::int4[], $2::bigint[], $3::bigint[]) AS r(i, lo0, hi0)')
    expect(p.values.slice(0, 3)).toEqual([[1, 2], ['3', '9'], ['7', '12']])
    expect(p.values.slice(3)).toEqual([0, '3', 3, '12'])
  })

  it('parses block stats, empty blocks absent', () => {
    expect(parseBlocks('0:1a:AAAAAAAAAP8,2:1:/+8AAAAAAAE', 4)).toEqual([{count: 26, hash: 'AAAAAAAAAP8'}, {count: 0, hash: '0'}, {count: 1, hash: '/+8AAAAAAAE'}, {count: 0, hash: '0'}])
    expect(parseBlocks('a:1:x', 11)[10]).toEqual({count: 1, hash: 'x'})
    expect(parseBlocks('', 2)).toEqual([{count: 0, hash: '0'}, {count: 0, hash: '0'}])
    expect(() => parseBlocks('5:1:0', 2)).toThrow(/out of range/)
  })

  it('COPY text lines escape the specials and write NULL as \\N', () => {
    expect(copyLine(['a\tb', null, 'x\\y\nz\r', ''])).toBe('a\\tb\t\\N\tx\\\\y\\nz\\r\t\n')
  })

  it('transfer statements skip generated columns; updates set non-key columns from text arrays', () => {
    expect(fetchRowsSql(single, [['1']]).text).toContain('ARRAY[t."id"::text, t."v"::text]::text[] AS v')
    expect(fetchRowsSql(single, [['1']], 'ts').text).toContain('(extract(epoch FROM t."ts") * 1000000)::int8::text AS ts')
    const u = updateRowsSql(composite, [{key: ['1', 'a'], values: ['1', 'a', null]}])!
    expect(u.text).toContain('UPDATE "public"."lines" AS t SET ("q") = ROW(u.c0::integer)')
    expect(u.text).toContain('WHERE (t."o", t."l") = (u.k0::integer, u.k1::text)')
    expect(u.values).toEqual([['1'], ['a'], [null]])
    expect(updateRowsSql({...single, columns: [{name: 'id', type: 'bigint'}]}, [{key: ['1'], values: ['1']}])).toBeNull()
    const a = auditInsertSql(composite, [{key: ['1', 'a'], category: 'conflict', resolution: 'kept_a', a: '{}', b: '{}'}], 'm', 'strategy:x')
    expect(a.text).toContain('jsonb_build_object($3::text, u.k0::integer, $4::text, u.k1::text)')
  })
})
