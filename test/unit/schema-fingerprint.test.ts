import {createHash} from 'node:crypto'
import {describe, expect, it} from 'vitest'
import {type ColumnDefinition, fingerprintInput, fingerprintLine, fingerprintOf, quotedPair} from '../../src/lib/schema/fingerprint.js'

const col = (p: Partial<ColumnDefinition> & {name: string; type: string; position: number}): ColumnDefinition => ({
  nullable: true,
  collation: null,
  default: null,
  identity: null,
  generated: null,
  ...p,
})

describe('fingerprint input string', () => {
  it('is one line per column in position order: quoted name, type, nullability, collation', () => {
    const cols = [
      col({name: 'name', type: 'character varying(10)', nullable: false, collation: quotedPair('pg_catalog', 'default'), position: 2}),
      col({name: 'id', type: 'integer', nullable: false, position: 1}),
      col({name: 'price', type: 'numeric(10,2)', position: 3}),
    ]
    expect(fingerprintInput(cols)).toBe(
      ['"id" integer NOT NULL', '"name" character varying(10) NOT NULL COLLATE "pg_catalog"."default"', '"price" numeric(10,2) NULL'].join('\n'),
    )
  })

  it('quotes names so separators inside names cannot collide', () => {
    expect(fingerprintLine({name: 'a" b\nc', type: 'text', nullable: true, collation: quotedPair('my "s"', 'C')})).toBe(
      '"a"" b\nc" text NULL COLLATE "my ""s"""."C"',
    )
    const one = [col({name: 'a NULL\n"b"', type: 'text', position: 1})]
    const two = [col({name: 'a', type: 'text', position: 1}), col({name: 'b', type: 'text', position: 2})]
    expect(fingerprintOf(one)).not.toBe(fingerprintOf(two))
  })

  it('is the SHA-256 hex of the UTF-8 input; defaults do not change it, typmods and order do', () => {
    const cols = [col({name: 'ünï', type: 'text', collation: '"pg_catalog"."default"', position: 1})]
    const expected = createHash('sha256').update(Buffer.from('"ünï" text NULL COLLATE "pg_catalog"."default"', 'utf8')).digest('hex')
    expect(fingerprintOf(cols)).toBe(expected)
    const withDefault: ColumnDefinition = {...cols[0]!, default: "'x'::text"}
    expect(fingerprintOf([withDefault])).toBe(expected)
    expect(fingerprintOf([col({name: 'v', type: 'character varying(10)', position: 1})])).not.toBe(fingerprintOf([col({name: 'v', type: 'character varying(20)', position: 1})]))
    const ab = [col({name: 'a', type: 'int', position: 1}), col({name: 'b', type: 'int', position: 2})]
    const ba = [col({name: 'b', type: 'int', position: 1}), col({name: 'a', type: 'int', position: 2})]
    expect(fingerprintOf(ab)).not.toBe(fingerprintOf(ba))
  })

  it('a table without columns hashes the empty string', () => {
    expect(fingerprintInput([])).toBe('')
    expect(fingerprintOf([])).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
  })
})
