import {describe, expect, it} from 'vitest'
import {z} from 'zod'
import {noop} from '../../src/direct/operations/noop.js'
import {connRefSchema, findSecret, parseConnRef} from '../../src/direct/params.js'
import {defineOperation, registeredOperation, validateParams} from '../../src/direct/registry.js'
import {UsageError} from '../../src/lib/errors.js'

describe('job params never hold secrets', () => {
  it('finds password keys, URLs with a password and key=value passwords, anywhere', () => {
    expect(findSecret({source: 'prod', tables: ['a']})).toBeNull()
    expect(findSecret({password: 'x'})).toBe('params.password')
    expect(findSecret({peer: {PGPASSWORD: 'x'}})).toBe('params.peer.PGPASSWORD')
    expect(findSecret({peers: ['ok', 'postgres://u:pw@h/db']})).toBe('params.peers[1]')
    expect(findSecret({conn: 'host=a password=b'})).toBe('params.conn')
    expect(findSecret({conn: 'postgres://u@h/db'})).toBeNull()
    expect(findSecret({note: 'my_password=1'})).toBeNull()
  })

  it('connRefSchema takes names, node ids and connection strings without a password', () => {
    expect(connRefSchema.safeParse('prod').success).toBe(true)
    expect(connRefSchema.safeParse('node:n1').success).toBe(true)
    expect(connRefSchema.safeParse('host=db2 dbname=app user=repl').success).toBe(true)
    expect(connRefSchema.safeParse('postgresql://repl:secret@db2/app').success).toBe(false)
    expect(connRefSchema.safeParse('host=db2 password=secret').success).toBe(false)
    expect(parseConnRef('node:n1')).toEqual({kind: 'node', nodeId: 'n1'})
    expect(parseConnRef('prod.eu-1')).toEqual({kind: 'name', name: 'prod.eu-1'})
    expect(parseConnRef('host=x')).toEqual({kind: 'conninfo', conninfo: 'host=x'})
  })
})

describe('operation registry', () => {
  it('validates params with the kind schema (defaults applied) and says which param is wrong', () => {
    expect(validateParams(noop, {seconds: 1})).toMatchObject({seconds: 1, items: 0})
    expect(() => validateParams(noop, {seconds: -1})).toThrow(/invalid params for noop: params\.seconds:/)
    expect(() => validateParams(noop, {bogus: 1})).toThrow(UsageError)
    expect(registeredOperation('noop')).toBe(noop)
  })

  it('refuses secrets even when the schema would take them', () => {
    const kind = defineOperation({name: 'test_loose', summary: 't', params: z.object({peer: z.string()}), handler: async () => null})
    expect(() => validateParams(kind, {peer: 'postgres://u:pw@h/db'})).toThrow(/params\.peer looks like a password/)
    expect(() => validateParams(kind, {peer: 'node:b'})).not.toThrow()
  })

  it('refuses bad and duplicate operation names', () => {
    expect(() => defineOperation({name: 'Bad-Name', summary: '', params: z.object({}), handler: async () => null})).toThrow(/invalid operation name/)
    expect(() => defineOperation({name: 'noop', summary: '', params: z.object({}), handler: async () => null})).toThrow(/already registered/)
  })
})
