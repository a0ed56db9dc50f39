// Opening node-postgres clients from resolved parameters, with libpq's sslmode semantics
// (prefer falls back to plaintext, allow falls forward to TLS, verify-* check the chain and the
// name) and failures turned into ConnectionError (exit 6) with a message that names the server but
// never the password.

import {readFileSync} from 'node:fs'
import type {ConnectionOptions} from 'node:tls'
import pg from 'pg'
import {ConnectionError, UsageError} from '../errors.js'
import {redact} from '../redact.js'
import {DirectReadSocket} from './direct-read-socket.js'
import {type ConnParams, describeConnection} from './resolve.js'

export type Client = pg.Client

export interface OpenOptions {
  /** application_name when the connection string sets none. */
  applicationName?: string
  /** Open a logical replication connection (walsender in database mode). */
  replication?: boolean
  /** Default connect timeout in seconds when the connection string sets none (libpq: infinite). */
  defaultConnectTimeoutSec?: number
  /**
   * A socket whose reads a COPY … TO STDOUT can take over (DirectReadSocket), for connections that
   * stream tables out; plaintext only (TLS reads through its own buffers).
   */
  directRead?: boolean
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
  if (o.directRead && !cfg.ssl) cfg.stream = () => new DirectReadSocket()
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
  return reportLossAsItsCause(client)
}

const NOT_QUERYABLE = /^Client has encountered a connection error and is not queryable$/

/**
 * When a connection dies between queries (its backend terminated, the socket reset), node-postgres
 * emits the reason as an 'error' event and fails every later query with "Client has encountered a
 * connection error and is not queryable", which names no cause. This keeps the first such reason and
 * fails later queries with it instead (same SQLSTATE, so retry classification is unchanged), through
 * every form of query: promise, callback and submittable (COPY streams). A server's FATAL message
 * (pg_terminate_backend, shutdown) is preferred to the socket's end that follows it. The listener also
 * keeps an idle client's lost connection from crashing the process when its owner attached none.
 */
export function reportLossAsItsCause(client: pg.Client): pg.Client {
  let lost: Error | undefined
  // A backend terminated in the middle of a query fails that query with the server's FATAL message;
  // the client's own 'error' then only says "Connection terminated unexpectedly". Keep the former.
  let fatal: Error | undefined
  ;(client as unknown as {connection: import('node:events').EventEmitter}).connection.on('errorMessage', (msg: Error & {severity?: string}) => {
    if (msg.severity === 'FATAL' || msg.severity === 'PANIC') fatal ??= msg
  })
  client.on('error', (err: Error) => {
    lost ??= fatal ?? err
  })
  const raw = client.query.bind(client) as (...a: unknown[]) => unknown
  const swap = (err: unknown) => (lost && err instanceof Error && NOT_QUERYABLE.test(err.message) ? lost : err)
  ;(client as unknown as {query: (...a: unknown[]) => unknown}).query = (...args: unknown[]) => {
    if (!lost) return raw(...args)
    const first = args[0] as {submit?: unknown; handleError?: (err: unknown, con: unknown) => void} | null
    if (first && typeof first === 'object' && typeof first.submit === 'function' && typeof first.handleError === 'function') {
      const handleError = first.handleError.bind(first)
      first.handleError = (err, con) => handleError(swap(err), con)
      return raw(...args)
    }
    const last = args.at(-1)
    if (typeof last === 'function') return raw(...args.slice(0, -1), (err: unknown, res: unknown) => (last as (e: unknown, r: unknown) => void)(swap(err), res))
    return (raw(...args) as Promise<unknown>).catch((err: unknown) => {
      throw swap(err)
    })
  }
  return client
}

/**
 * Servers that answered sslmode=prefer's TLS request with "no", by address, and when. libpq goes on
 * in plaintext on the same socket; node-postgres closes it, so each such connection costs a second
 * TCP connection and a second backend fork (~5-10 ms, and a command opens several). For a while the
 * answer is taken as still true and plaintext is tried first; a server that has turned TLS on since
 * is asked again after PREFER_PLAIN_MS (a worker runs for days).
 */
const refusedTls = new Map<string, number>()
const PREFER_PLAIN_MS = 60_000
const serverKey = (p: ConnParams) => `${p.hostaddr ?? p.host}:${p.port}`

/** Opens and returns a connected client; the caller ends it. */
export async function openClient(p: ConnParams, o: OpenOptions = {}): Promise<pg.Client> {
  const overSocket = p.host.startsWith('/')
  const knownPlain = p.sslmode === 'prefer' && Date.now() - (refusedTls.get(serverKey(p)) ?? -Infinity) < PREFER_PLAIN_MS
  const firstTls = !overSocket && p.sslmode !== 'disable' && p.sslmode !== 'allow' && !knownPlain
  try {
    try {
      return await attempt(p, firstTls, o)
    } catch (err) {
      const msg = (err as Error).message ?? ''
      // Refused in plaintext (hostssl only) by a server that refused TLS a moment ago: it has changed;
      // ask again in libpq's order.
      if (knownPlain && /no encryption/i.test(msg)) {
        refusedTls.delete(serverKey(p))
        return await openClient(p, o)
      }
      if (p.sslmode === 'prefer' && firstTls && /does not support SSL/i.test(msg)) {
        refusedTls.set(serverKey(p), Date.now())
        return await attempt(p, false, o)
      }
      if (p.sslmode === 'allow' && !overSocket && /no encryption|SSL/i.test(msg)) return await attempt(p, true, o)
      throw err
    }
  } catch (err) {
    // Already a ConnectionError when the retry in libpq's order above failed.
    if (err instanceof UsageError || err instanceof ConnectionError) throw err
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
