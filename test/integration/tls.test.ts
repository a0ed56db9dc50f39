// TLS as libpq does it: sslmode disable / prefer / require / verify-ca / verify-full with a test CA.

import {execFileSync} from 'node:child_process'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {runCli} from '../helpers/cli.js'
import {shared} from '../helpers/pg.js'
import type {ServerHandle} from '../helpers/servers.js'

const dir = mkdtempSync(path.join(tmpdir(), 'steep-tls-'))
const f = (n: string) => path.join(dir, n)
const openssl = (...args: string[]) => execFileSync('openssl', args, {stdio: 'pipe'})

/** A CA, a server certificate for DNS:localhost signed by it, and an unrelated CA. */
function makeCerts(): void {
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=steep test CA', '-keyout', f('ca.key'), '-out', f('ca.pem'))
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=other CA', '-keyout', f('other.key'), '-out', f('other.pem'))
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', f('server.key'), '-out', f('server.csr'))
  writeFileSync(f('ext.cnf'), 'subjectAltName=DNS:localhost\n')
  openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f('server.crt'))
}

describe.skipIf(process.env.STEEP_TEST_DOCKER === '1')('TLS', () => {
  let server: ServerHandle
  beforeAll(async () => {
    makeCerts()
    const {EmbeddedServer} = await import('../../src/lib/embedded/server.js')
    const s = await new EmbeddedServer({major: shared().major as 18, tls: {certFile: f('server.crt'), keyFile: f('server.key')}}).start()
    server = {info: {url: s.url(), socket: s.socketConninfo(), port: s.port, password: s.password, major: s.major, dataDir: s.dataDir}, url: (d) => s.url(d), stop: () => s.stop(), embedded: s}
  })
  afterAll(async () => {
    await server?.stop()
  })

  const health = (conn: string) =>
    runCli(['health', '--json', '-d', `port=${server.info.port} user=postgres dbname=postgres password='${server.info.password}' ${conn}`])

  it.each([
    ['verify-full with the CA and the certificate name', `host=localhost sslmode=verify-full sslrootcert=${f('ca.pem')}`],
    ['verify-ca by IP (no name check)', `host=127.0.0.1 sslmode=verify-ca sslrootcert=${f('ca.pem')}`],
    ['require (encrypted, not verified)', 'host=127.0.0.1 sslmode=require'],
    ['prefer (the default)', 'host=127.0.0.1'],
  ])('connects with %s', async (_n, conn) => {
    const r = await health(conn)
    expect(r.json().server.tls).toMatch(/^TLSv1\.[23]$/)
  })

  it('sslmode=disable connects in plaintext', async () => {
    expect((await health('host=127.0.0.1 sslmode=disable')).json().server.tls).toBeNull()
  })

  it.each([
    ['a certificate name that does not match the host', `host=127.0.0.1 sslmode=verify-full sslrootcert=${f('ca.pem')}`, /altnames|hostname|IP/i],
    ['a certificate from another CA', `host=localhost sslmode=verify-full sslrootcert=${f('other.pem')}`, /certificate/i],
  ])('refuses %s with exit 6', async (_n, conn, re) => {
    const r = await health(conn)
    expect(r.code).toBe(6)
    expect(r.json().error.message).toMatch(re)
  })

  it('prefer falls back to plaintext on a server without TLS, require does not', async () => {
    const u = new URL(shared().url)
    const base = `host=127.0.0.1 port=${u.port} user=postgres dbname=postgres password='${shared().password}'`
    const prefer = await runCli(['health', '--json', '-d', `${base} sslmode=prefer`])
    expect(prefer.json().server.tls).toBeNull()
    const require = await runCli(['health', '--json', '-d', `${base} sslmode=require`])
    expect(require.code).toBe(6)
    expect(require.json().error.message).toMatch(/does not support SSL/)
  })
})
