// A password given in --db never appears in any output: success, --json, errors, --debug stacks.

import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {runCli} from '../helpers/cli.js'
import {dropDatabase, freshDatabase, sql} from '../helpers/pg.js'

const SECRET = 'Pw-d0-not-print!'
const role = `redact_${process.pid}`

describe('password redaction', () => {
  let db: string
  let url: string
  beforeAll(async () => {
    db = await freshDatabase('redact')
    await sql(db, `CREATE ROLE ${role} LOGIN SUPERUSER PASSWORD '${SECRET}'`)
    const u = new URL(db)
    u.username = role
    u.password = encodeURIComponent(SECRET)
    url = u.toString()
  })
  afterAll(async () => {
    await dropDatabase(db)
    await sql(db.replace(/\/[^/]*$/, '/postgres'), `DROP ROLE IF EXISTS ${role}`)
  })

  const kv = () => {
    const u = new URL(url)
    return `host=${u.hostname} port=${u.port} user=${role} dbname=${u.pathname.slice(1)} password='${SECRET}'`
  }

  const cases: Array<[string, () => string[]]> = [
    ['install', () => ['install', '-d', url]],
    ['install --dry-run', () => ['install', '-d', url, '--dry-run']],
    ['install --json', () => ['install', '-d', url, '--json']],
    ['health', () => ['health', '-d', url]],
    ['health --json', () => ['health', '-d', kv(), '--json']],
    ['a wrong database', () => ['health', '-d', url.replace(/\/[^/?]*$/, '/no_such_db'), '--debug']],
    ['a refused port', () => ['health', '-d', url.replace(/:\d+\//, ':1/'), '--debug']],
    ['a refused port, key=value', () => ['health', '-d', kv().replace(/port=\d+/, 'port=1'), '--json', '--debug']],
    ['a bad option', () => ['health', '-d', url + '?nosuch=1', '--debug']],
    ['a bad option, key=value', () => ['health', '-d', kv() + ' nosuch=1', '--json']],
    ['an unknown flag', () => ['health', '-d', url, '--nosuchflag']],
    ['a wrong password', () => ['health', '-d', kv().replace(`user=${role}`, 'user=postgres'), '--debug']],
  ]

  it.each(cases)('%s', async (_name, args) => {
    const r = await runCli(args())
    const all = r.stdout + r.stderr
    expect(all.length).toBeGreaterThan(0)
    expect(all).not.toContain(SECRET)
    expect(all).not.toContain(encodeURIComponent(SECRET))
  })

  it('also when the password comes from PGPASSWORD', async () => {
    const r = await runCli(['health', '--debug', '-d', 'host=127.0.0.1 port=1 dbname=x'], {env: {PGPASSWORD: SECRET}})
    expect(r.stdout + r.stderr).not.toContain(SECRET)
  })
})
