// TLS as libpq does it: sslmode disable / prefer / require / verify-ca / verify-full with a test CA.

import {execFileSync} from 'node:child_process'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {createConnection, createServer, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {runCli} from '../helpers/cli.js'
import {shared} from '../helpers/pg.js'
import {openClient} from '../../src/lib/connection/connect.js'
import {resolveConnection} from '../../src/lib/connection/resolve.js'
import type {ServerHandle} from '../helpers/servers.js'

const dir = mkdtempSync(path.join(tmpdir(), 'steep-tls-'))
const f = (n: string) => path.join(dir, n)
const openssl = (...args: string[]) => execFileSync('openssl', args, {stdio: 'pipe'})

/** Pipes a client's socket to the server on `port`, `first` (bytes already read from it) first. */
function relayTo(inbound: Socket, port: number, first?: Buffer): void {
  const outbound = createConnection({host: '127.0.0.1', port})
  if (first) outbound.write(first)
  inbound.pipe(outbound).pipe(inbound)
  const close = () => (inbound.destroy(), outbound.destroy())
  inbound.on('error', close).on('close', close)
  outbound.on('error', close).on('close', close)
}

/** A TCP relay on a free local port; `onConnection` gets each client's socket. */
async function listenRelay(onConnection: (inbound: Socket) => void): Promise<{port: number; close: () => Promise<unknown>}> {
  const relay = createServer(onConnection)
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r))
  return {port: (relay.address() as {port: number}).port, close: () => new Promise((r) => relay.close(r))}
}

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

  it('prefer remembers a server that refused TLS: the next connection is one TCP connection, not two', async () => {
    // A TCP relay in front of the server without TLS counts the connections made through it.
    let accepted = 0
    const {port, close} = await listenRelay((inbound) => {
      accepted++
      relayTo(inbound, Number(new URL(shared().url).port))
    })
    try {
      const base = `host=127.0.0.1 port=${port} user=postgres dbname=postgres password='${shared().password}'`
      const prefer = resolveConnection({db: `${base} sslmode=prefer`, env: {}})
      const first = await openClient(prefer)
      await first.end()
      expect(accepted).toBe(2) // TLS asked and refused, then plaintext
      const second = await openClient(prefer)
      expect((await second.query('SELECT 1 AS one')).rows[0].one).toBe(1)
      await second.end()
      expect(accepted).toBe(3)
      // Only prefer takes the shortcut: require still asks, and is still refused.
      await expect(openClient(resolveConnection({db: `${base} sslmode=require`, env: {}}))).rejects.toThrow(/does not support SSL/)
    } finally {
      await close()
    }
  })

  it('prefer asks for TLS again when a server it remembers without TLS now refuses plaintext', async () => {
    // One address, two servers behind it: first the one without TLS (remembered as such), then one
    // that, like a hostssl-only pg_hba.conf, refuses a plaintext startup and accepts TLS (the TLS
    // server above, reached through the relay byte for byte).
    let phase: 'plain' | 'hostssl' = 'plain'
    const tlsPort = server.info.port
    const {port, close} = await listenRelay((inbound) => {
      if (phase === 'plain') return relayTo(inbound, Number(new URL(shared().url).port))
      inbound.once('data', (first: Buffer) => {
        const sslRequest = first.length >= 8 && first.readUInt32BE(4) === 80877103
        if (sslRequest) return relayTo(inbound, tlsPort, first)
        const fields = 'SFATAL\0C28000\0Mno pg_hba.conf entry for host "127.0.0.1", user "postgres", database "postgres", no encryption\0\0'
        const msg = Buffer.alloc(5 + Buffer.byteLength(fields))
        msg.write('E', 0)
        msg.writeUInt32BE(4 + Buffer.byteLength(fields), 1)
        msg.write(fields, 5, 'binary')
        inbound.end(msg)
      })
    })
    try {
      const plainPw = shared().password
      const first = await openClient(resolveConnection({db: `host=127.0.0.1 port=${port} user=postgres dbname=postgres password='${plainPw}' sslmode=prefer`, env: {}}))
      await first.end()
      phase = 'hostssl'
      const again = await openClient(resolveConnection({db: `host=127.0.0.1 port=${port} user=postgres dbname=postgres password='${server.info.password}' sslmode=prefer`, env: {}}))
      const tls = await again.query(`SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`)
      await again.end()
      expect(tls.rows[0].ssl).toBe(true)
    } finally {
      await close()
    }
  })
})
