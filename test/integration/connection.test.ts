// Connections read as psql reads them: URL, key=value, PG* variables, named connections from the
// config file; bad input of each kind gets a clear message and the usage (2) or connection (6) code.

import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {runCli} from '../helpers/cli.js'
import {shared} from '../helpers/pg.js'

const dir = mkdtempSync(path.join(tmpdir(), 'steep-conn-'))

describe('connections', () => {
  const s = () => shared()

  it.each([
    ['postgres:// URL', () => s().url.replace(/^postgresql:/, 'postgres:')],
    ['postgresql:// URL', () => s().url],
    ['key=value over TCP', () => `host=127.0.0.1 port=${s().port} user=postgres password='${s().password}' dbname=postgres`],
    ['key=value over the Unix socket', () => s().socket],
  ])('reaches the server with a %s', async (_n, db) => {
    if (!s().dataDir && db().startsWith('host=/')) return // containers have no socket
    const r = await runCli(['health', '-d', db(), '--json'])
    expect([0, 1]).toContain(r.code) // schema not installed here makes it unhealthy; reaching it is the point
    expect(r.json().server.major).toBe(s().major)
  })

  it('uses PG* variables when --db is absent', async () => {
    const r = await runCli(['health', '--json'], {
      env: {PGHOST: '127.0.0.1', PGPORT: String(s().port), PGUSER: 'postgres', PGPASSWORD: s().password, PGDATABASE: 'postgres'},
    })
    expect(r.json().server.major).toBe(s().major)
  })

  it('uses .pgpass for the password', async () => {
    const pass = path.join(dir, 'pgpass')
    writeFileSync(pass, `127.0.0.1:${s().port}:*:postgres:${s().password.replace(/:/g, '\\:')}\n`, {mode: 0o600})
    const r = await runCli(['health', '-d', `host=127.0.0.1 port=${s().port} user=postgres dbname=postgres`, '--json'], {env: {PGPASSFILE: pass}})
    expect(r.json().server.major).toBe(s().major)
  })

  it('resolves a named connection from --config and from STEEP_REPL_CONFIG', async () => {
    const cfg = path.join(dir, 'config.yaml')
    writeFileSync(cfg, `connections:\n  local:\n    host: 127.0.0.1\n    port: ${s().port}\n    user: postgres\n    dbname: postgres\n    password_env: LOCAL_PW\n`)
    const a = await runCli(['health', '-d', 'local', '--config', cfg, '--json'], {env: {LOCAL_PW: s().password}})
    expect(a.json().server.major).toBe(s().major)
    const b = await runCli(['health', '-d', 'local', '--json'], {env: {LOCAL_PW: s().password, STEEP_REPL_CONFIG: cfg}})
    expect(b.json().server.major).toBe(s().major)
  })

  it.each<[string, string[], Record<string, string>, number, RegExp]>([
    ['an unknown keyword', ['-d', 'host=h nosuch=1'], {}, 2, /invalid connection option "nosuch"/],
    ['a malformed URL', ['-d', 'postgresql://[::1/db'], {}, 2, /IPv6/],
    ['an unterminated quote', ['-d', "host=h password='x"], {}, 2, /unterminated/],
    ['a bad port', ['-d', 'postgresql://h:99999/db'], {}, 2, /port/],
    ['an unknown name', ['-d', 'nosuchconn'], {}, 2, /no connection of that name/],
    ['a bad config file', ['-d', 'x', '--config', '/dev/null/nope.yaml'], {}, 2, /cannot read config file/],
    ['a bad sslmode', ['-d', 'host=h sslmode=perhaps'], {}, 2, /sslmode/],
    ['a missing root certificate for verify-full', ['-d', 'host=127.0.0.1 sslmode=verify-full sslrootcert=/nonexistent/ca.pem'], {}, 2, /sslrootcert/],
    ['a wrong password', [], {PGPASSWORD: 'wrong-password'}, 6, /password authentication failed/],
    ['a missing database', [], {PGDATABASE: 'no_such_db_here'}, 6, /does not exist/],
  ])('rejects %s clearly', async (_n, args, env, code, re) => {
    const r = await runCli(['health', ...args], {env: {PGHOST: '127.0.0.1', PGPORT: String(s().port), PGUSER: 'postgres', PGPASSWORD: s().password, ...env}})
    expect(r.code).toBe(code)
    expect(r.stderr).toMatch(re)
    expect(r.stdout).toBe('')
  })

  it('reports an unreachable server with exit 6 within the connect timeout', async () => {
    const started = Date.now()
    // 10.255.255.1 would leave the machine; a closed loopback port and a blackholed timeout are local.
    const r = await runCli(['health', '-d', 'host=127.0.0.1 port=1 user=x dbname=y connect_timeout=2'])
    expect(r.code).toBe(6)
    expect(r.stderr).toMatch(/could not connect to x@127\.0\.0\.1:1\/y/)
    expect(Date.now() - started).toBeLessThan(15_000)
  })

  it('honours connect_timeout when the server never answers', async () => {
    // A listening socket that never speaks the protocol: the timeout, not a refusal, ends it.
    const net = await import('node:net')
    const srv = net.createServer(() => {}).listen(0, '127.0.0.1')
    await new Promise((r) => srv.once('listening', r))
    const port = (srv.address() as {port: number}).port
    try {
      const r = await runCli(['health', '-d', `host=127.0.0.1 port=${port} user=x dbname=y connect_timeout=1 sslmode=disable`, '--json'])
      expect(r.code).toBe(6)
      expect(r.json().error.code).toBe('connection')
    } finally {
      srv.close()
    }
  })
})
