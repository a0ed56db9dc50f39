// Opening node-postgres clients from resolved parameters, with libpq's sslmode semantics
// (prefer falls back to plaintext, allow falls forward to TLS, verify-* check the chain and the
// name) and failures turned into ConnectionError (exit 6) with a message that names the server but
// never the password.

import {readFileSync} from 'node:fs'
import type {ConnectionOptions} from 'node:tls'
import pg from 'pg'
import {ConnectionError, UsageError} from '../errors.js'
import {redact} from '../redact.js'
import {type ConnParams, describeConnection} from './resolve.js'

export type Client = pg.Client

export interface OpenOptions {
  /** application_name when the connection string sets none. */
  applicationName?: string
  /** Open a logical replication connection (walsender in database mode). */
  replication?: boolean
  /** Default connect timeout in seconds when the connection string sets none (libpq: infinite). */
  defaultConnectTimeoutSec?: number
}

export const DEFAULT_CONNECT_TIMEOUT_SEC = 10

function readFileParam(file: string, what: string): Buffer {
  try {
    return readFileSync(file)
  } catch (err) {
    throw new UsageError(`cannot read ${what} "${file}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
}

/** The `ssl` option node-postgres gets for one attempt; false means plaintext. */
export function tlsOptions(p: ConnParams, useTls: boolean): false | ConnectionOptions {
  if (!useTls) return false
  const opts: ConnectionOptions = {}
  if (p.sslcert) opts.cert = readFileParam(p.sslcert, 'sslcert')
  if (p.sslkey) opts.key = readFileParam(p.sslkey, 'sslkey')
  if (p.sslpassword) opts.passphrase = p.sslpassword
  let verify: 'none' | 'ca' | 'full' = 'none'
  if (p.sslmode === 'verify-full') verify = 'full'
  else if (p.sslmode === 'verify-ca') verify = 'ca'
  else if (p.sslmode === 'require' && p.sslrootcert) verify = 'ca' // libpq: require + root cert = verify-ca
  if (verify === 'none') {
    opts.rejectUnauthorized = false
    return opts
  }
  if (!p.sslrootcert) {
    throw new UsageError(`sslmode ${p.sslmode} needs a root certificate: set sslrootcert (or put it in ~/.postgresql/root.crt)`)
  }
  if (p.sslrootcert !== 'system') opts.ca = readFileParam(p.sslrootcert, 'sslrootcert')
  opts.rejectUnauthorized = true
  if (verify === 'ca') opts.checkServerIdentity = () => undefined
  else if (!p.host.startsWith('/')) opts.servername = p.host
  return opts
}

function clientConfig(p: ConnParams, useTls: boolean, o: OpenOptions): pg.ClientConfig & {replication?: string} {
  const timeout = p.connectTimeoutSec ?? o.defaultConnectTimeoutSec ?? DEFAULT_CONNECT_TIMEOUT_SEC
  const cfg: pg.ClientConfig & {replication?: string} = {
    host: p.hostaddr ?? p.host,
    port: p.port,
    database: p.dbname,
    user: p.user,
    password: p.password ?? '',
    ssl: p.host.startsWith('/') ? false : tlsOptions(p, useTls),
    connectionTimeoutMillis: timeout > 0 ? timeout * 1000 : 0,
    application_name: p.applicationName ?? o.applicationName ?? 'steep-repl',
    keepAlive: p.keepalives,
    keepAliveInitialDelayMillis: (p.keepalivesIdleSec ?? 0) * 1000,
  }
  if (p.options) cfg.options = p.options
  if (o.replication) cfg.replication = 'database'
  if (cfg.ssl && p.hostaddr && p.sslmode === 'verify-full') (cfg.ssl as ConnectionOptions).servername = p.host
  return cfg
}

async function attempt(p: ConnParams, useTls: boolean, o: OpenOptions): Promise<pg.Client> {
  const client = new pg.Client(clientConfig(p, useTls, o))
  try {
    await client.connect()
  } catch (err) {
    await client.end().catch(() => {})
    throw err
  }
  return client
}

/** Opens and returns a connected client; the caller ends it. */
export async function openClient(p: ConnParams, o: OpenOptions = {}): Promise<pg.Client> {
  const overSocket = p.host.startsWith('/')
  const firstTls = !overSocket && p.sslmode !== 'disable' && p.sslmode !== 'allow'
  try {
    try {
      return await attempt(p, firstTls, o)
    } catch (err) {
      const msg = (err as Error).message ?? ''
      if (p.sslmode === 'prefer' && firstTls && /does not support SSL/i.test(msg)) return await attempt(p, false, o)
      if (p.sslmode === 'allow' && !overSocket && /no encryption|SSL/i.test(msg)) return await attempt(p, true, o)
      throw err
    }
  } catch (err) {
    if (err instanceof UsageError) throw err
    throw toConnectionError(err, p)
  }
}

/** Wraps a failure to connect (any failure before the session is up: network, TLS, auth, database). */
export function toConnectionError(err: unknown, p: Pick<ConnParams, 'user' | 'host' | 'port' | 'dbname'>): ConnectionError {
  const reason = redact(((err as Error).message || String(err)).replace(/^Error: /, ''))
  let hint = 'Check that the server is running and accepts connections, and the host, port and credentials.'
  if ((err as {code?: string}).code === '28P01') hint = 'Check the password (in the connection string, PGPASSWORD or ~/.pgpass).'
  if ((err as {code?: string}).code === '3D000') hint = 'Check the database name (dbname, PGDATABASE).'
  if (/timeout/i.test(reason)) hint = 'The server did not answer in time; check the host and port, or raise connect_timeout.'
  if (/certificate|altnames|self.signed|TLS/i.test(reason)) hint = 'The server certificate did not verify: check sslrootcert (the CA) and that the host name matches the certificate, or use a weaker sslmode.'
  return new ConnectionError(`could not connect to ${describeConnection(p)}: ${reason}`, {cause: err, hint})
}

/** Runs fn with a fresh client and always closes it. */
export async function withClient<T>(p: ConnParams, fn: (c: pg.Client) => Promise<T>, o: OpenOptions = {}): Promise<T> {
  const client = await openClient(p, o)
  // A lost connection emits 'error' on the client; without a listener Node would crash the process.
  client.on('error', () => {})
  try {
    return await fn(client)
  } finally {
    await client.end().catch(() => {})
  }
}
