import {describe, expect, it} from 'vitest'
import {MASK, redact, redactValue, registerSecret} from '../../src/lib/redact.js'

describe('redact', () => {
  it.each([
    ['postgresql://u:pa55@h/db', `postgresql://u:${MASK}@h/db`],
    ['postgres://:pa55@h', `postgres://:${MASK}@h`],
    ["host=h password='a b' user=u", `host=h password=${MASK} user=u`],
    ['host=h password=abc user=u', `host=h password=${MASK} user=u`],
    ['postgresql://u@h/db', 'postgresql://u@h/db'],
  ])('%s', (input, out) => {
    expect(redact(input)).toBe(out)
  })

  it('masks registered secrets anywhere, also percent-encoded', () => {
    registerSecret('p@ss word!')
    expect(redact('failed for p@ss word! and p%40ss%20word!')).toBe(`failed for ${MASK} and ${MASK}`)
  })

  it('masks values deep in JSON and password-named keys', () => {
    expect(redactValue({a: ['postgres://u:x1y2@h'], password: 'zz', n: 1})).toEqual({a: [`postgres://u:${MASK}@h`], password: MASK, n: 1})
  })
})
