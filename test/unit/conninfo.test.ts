import {describe, expect, it} from 'vitest'
import {parseConnString, parseKeyValue, parseUrl, toKeyValue} from '../../src/lib/connection/conninfo.js'
import {UsageError} from '../../src/lib/errors.js'

describe('parseUrl', () => {
  it.each([
    ['postgres://u:p@h:5433/db', {user: 'u', password: 'p', host: 'h', port: '5433', dbname: 'db'}],
    ['postgresql://h/db', {host: 'h', dbname: 'db'}],
    ['postgresql://', {}],
    ['postgresql://u@/db?host=%2Fvar%2Frun%2Fpostgresql', {user: 'u', dbname: 'db', host: '/var/run/postgresql'}],
    ['postgresql://%2Ftmp:5555/db', {host: '/tmp', port: '5555', dbname: 'db'}],
    ['postgresql://[::1]:5432/db', {host: '::1', port: '5432', dbname: 'db'}],
    ['postgresql://u:p%40ss%3Aword@h/d%20b', {user: 'u', password: 'p@ss:word', host: 'h', dbname: 'd b'}],
    ['postgresql://h/db?sslmode=verify-full&sslrootcert=/ca.pem&application_name=x', {host: 'h', dbname: 'db', sslmode: 'verify-full', sslrootcert: '/ca.pem', application_name: 'x'}],
    ['postgres://h/db?ssl=true', {host: 'h', dbname: 'db', sslmode: 'require'}],
    ['postgresql://h1:1,h2:2/db', {host: 'h1,h2', port: '1,2', dbname: 'db'}],
    ['POSTGRESQL://H/DB', {host: 'H', dbname: 'DB'}],
  ])('%s', (url, expected) => {
    expect(parseUrl(url)).toEqual(expected)
  })

  it.each(['postgresql://h/db?nosuch=1', 'postgresql://h/db?sslmode', 'postgresql://[::1/db', 'postgresql://h/%zz'])('rejects %s', (url) => {
    expect(() => parseUrl(url)).toThrow(UsageError)
  })

  it('never puts the password in an error', () => {
    try {
      parseUrl('postgresql://u:hunter22@h/db?bogus=1')
    } catch (err) {
      expect((err as Error).message).not.toContain('hunter22')
    }
  })
})

describe('parseKeyValue', () => {
  it.each([
    ['host=h port=5433 dbname=db user=u', {host: 'h', port: '5433', dbname: 'db', user: 'u'}],
    ["password='it\\'s a \\\\ test' dbname=x", {password: "it's a \\ test", dbname: 'x'}],
    ["dbname='my db'", {dbname: 'my db'}],
    ['dbname=a\\ b', {dbname: 'a b'}],
    ["application_name=''", {application_name: ''}],
    ['sslmode=verify-ca sslrootcert=/c sslcert=/x sslkey=/k', {sslmode: 'verify-ca', sslrootcert: '/c', sslcert: '/x', sslkey: '/k'}],
    ['target_session_attrs=any host=h', {host: 'h'}],
  ])('%s', (s, expected) => {
    expect(parseKeyValue(s)).toEqual(expected)
  })

  it.each(['host', 'host=h bogus=1', "password='open", '=x'])('rejects %s', (s) => {
    expect(() => parseKeyValue(s)).toThrow(UsageError)
  })

  it('round-trips through toKeyValue', () => {
    const info = {host: 'h', password: "a b'c\\d", dbname: 'x'}
    expect(parseKeyValue(toKeyValue(info))).toEqual(info)
  })
})

describe('parseConnString', () => {
  it('rejects something that is neither', () => {
    expect(() => parseConnString('mysql://x')).toThrow(/not a connection string/)
  })
})
