import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {loadConfig, namedConnectionInfo as named} from '../../src/lib/connection/config-file.js'
import {describeConnection, matchPgpass, parseServiceFile, resolveConnection, splitPgpassLine} from '../../src/lib/connection/resolve.js'
import {ConfigError, UsageError} from '../../src/lib/errors.js'

const dir = mkdtempSync(path.join(tmpdir(), 'steep-resolve-'))
const noPass = path.join(dir, 'none')

describe('resolveConnection', () => {
  it('uses PG* variables when --db is absent', () => {
    const p = resolveConnection({env: {PGHOST: 'envhost', PGPORT: '6000', PGUSER: 'eu', PGDATABASE: 'edb', PGPASSWORD: 'pw', PGSSLMODE: 'require', PGPASSFILE: noPass}})
    expect(p).toMatchObject({host: 'envhost', port: 6000, user: 'eu', dbname: 'edb', password: 'pw', sslmode: 'require', source: 'environment'})
  })

  it('lets the string override the environment and fills the rest from it', () => {
    const p = resolveConnection({db: 'postgresql://h/db', env: {PGUSER: 'eu', PGPORT: '6000', PGHOST: 'other', PGPASSFILE: noPass}})
    expect(p).toMatchObject({host: 'h', port: 6000, user: 'eu', dbname: 'db', source: '--db'})
  })

  it('defaults dbname to the user name and sslmode to prefer', () => {
    const p = resolveConnection({db: 'host=h user=alice', env: {PGPASSFILE: noPass}})
    expect(p.dbname).toBe('alice')
    expect(p.sslmode).toBe('prefer')
    expect(p.port).toBe(5432)
  })

  it.each([
    ['port=0', /port/],
    ['port=abc', /port/],
    ['sslmode=sometimes', /sslmode/],
    ['host=a,b', /multiple hosts/],
  ])('rejects %s', (db, re) => {
    expect(() => resolveConnection({db: `host=h ${db}`, env: {PGPASSFILE: noPass}})).toThrow(re)
  })

  it('reads the password from .pgpass when none is given', () => {
    const f = path.join(dir, 'pgpass')
    writeFileSync(f, '# comment\nother:*:*:*:nope\nh:5432:db:u:from\\:pgpass\n', {mode: 0o600})
    expect(resolveConnection({db: 'host=h dbname=db user=u', env: {PGPASSFILE: f}}).password).toBe('from:pgpass')
  })

  it('ignores a .pgpass readable by others, like libpq', () => {
    const f = path.join(dir, 'pgpass-open')
    writeFileSync(f, '*:*:*:*:secret\n', {mode: 0o644})
    expect(resolveConnection({db: 'host=h dbname=db user=u', env: {PGPASSFILE: f}}).password).toBeUndefined()
  })

  it('resolves a service from the service file', () => {
    const f = path.join(dir, 'service.conf')
    writeFileSync(f, '[other]\nhost=x\n[mysvc]\nhost=svchost\nport=7000\ndbname=svcdb\n')
    const p = resolveConnection({db: 'service=mysvc user=u', env: {PGSERVICEFILE: f, PGPASSFILE: noPass}})
    expect(p).toMatchObject({host: 'svchost', port: 7000, dbname: 'svcdb', user: 'u'})
    expect(() => resolveConnection({db: 'service=missing', env: {PGSERVICEFILE: f, PGSYSCONFDIR: dir}})).toThrow(/service "missing" not found/)
  })

  it('resolves a named connection from the config file', () => {
    const f = path.join(dir, 'config.yaml')
    writeFileSync(f, 'connections:\n  prod:\n    url: postgresql://app@db1/app\n    port: 6432\n    password_env: PROD_PW\n')
    const config = loadConfig(f, {})
    const p = resolveConnection({db: 'prod', config, named, env: {PROD_PW: 's3cret', PGPASSFILE: noPass}})
    expect(p).toMatchObject({host: 'db1', port: 6432, user: 'app', dbname: 'app', password: 's3cret', source: 'connection "prod"'})
    expect(() => resolveConnection({db: 'prod', config, named, env: {}})).toThrow(/PROD_PW is not set/)
    expect(() => resolveConnection({db: 'nope', config, named, env: {}})).toThrow(ConfigError)
  })

  it('rejects a --db value that is neither a string nor a name', () => {
    expect(() => resolveConnection({db: 'mysql://x', env: {}})).toThrow(UsageError)
  })
})

describe('pgpass', () => {
  it('splits escaped fields', () => {
    expect(splitPgpassLine('a\\:b:5432:*:u:p:w')).toEqual(['a:b', '5432', '*', 'u', 'p:w'])
  })
  it('matches a socket directory as localhost', () => {
    expect(matchPgpass('localhost:5432:*:u:pw', '/tmp', 5432, 'd', 'u')).toBe('pw')
    expect(matchPgpass('localhost:5433:*:u:pw', '/tmp', 5432, 'd', 'u')).toBeUndefined()
  })
})

describe('service file', () => {
  it('returns undefined for an absent service', () => {
    expect(parseServiceFile('[a]\nhost=x\n', 'b')).toBeUndefined()
  })
})

describe('describeConnection', () => {
  it('has no password', () => {
    expect(describeConnection({user: 'u', host: '/tmp', port: 5432, dbname: 'd'})).toBe('u@[/tmp]:5432/d')
  })
})
