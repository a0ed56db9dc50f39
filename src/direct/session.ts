// Connections of the job machinery: a client on the queue database with its session settings, the
// check that the jobs schema is there (and not newer than this CLI), and the resolution of server
// references found in job params (connection names, node ids) with the executor's own credentials.

import type pg from 'pg'
import {openClient} from '../lib/connection/connect.js'
import {type ConnParams, describeConnection, resolveConnection} from '../lib/connection/resolve.js'
import {ConfigError, NotInstalledError, PermissionError, SchemaMismatchError, StateError} from '../lib/errors.js'
import {latestVersion, readSchemaState} from '../lib/install/migrations.js'
import {parseConnRef} from './params.js'

/** The schema version that brought the jobs machinery (src/lib/sql/002_jobs.sql). */
export const JOBS_SCHEMA_VERSION = 2

/**
 * Opens a client on the queue database. Session settings: no statement timeout (waits and long
 * statements are the job's business), a bounded lock timeout for queue statements, and an
 * idle-in-transaction timeout so a stuck client cannot hold queue rows.
 */
export async function openQueueClient(db: ConnParams, applicationName = 'steep-repl'): Promise<pg.Client> {
  const client = await openClient(db, {applicationName})
  client.on('error', () => {})
  serializeQueries(client)
  await client.query(`SET statement_timeout = 0; SET lock_timeout = '30s'; SET idle_in_transaction_session_timeout = '5min'`)
  return client
}

/**
 * Makes a client run its text queries one after the other even when several users (lease renewal,
 * progress, the claim loop) call it at once — node-postgres 8 only tolerates overlapping calls
 * (deprecated), version 9 will refuse them. Streams and callback calls pass through untouched.
 */
export function serializeQueries(client: pg.Client): pg.Client {
  const raw = client.query.bind(client) as (...a: unknown[]) => unknown
  let chain: Promise<unknown> = Promise.resolve()
  ;(client as unknown as {query: (...a: unknown[]) => unknown}).query = (...args: unknown[]) => {
    const first = args[0] as {submit?: unknown} | string
    if (typeof args.at(-1) === 'function' || (typeof first === 'object' && first !== null && typeof first.submit === 'function')) return raw(...args)
    const p = chain.then(() => raw(...args) as Promise<unknown>)
    chain = p.catch(() => {})
    return p
  }
  return client
}

/** Fails with the right exit code when the jobs schema is missing, too old, newer, or unreadable. */
export async function requireJobsSchema(client: pg.Client, db: ConnParams): Promise<number> {
  let state
  try {
    state = await readSchemaState(client)
  } catch (err) {
    if ((err as {code?: string}).code === '42501') {
      throw new PermissionError(`role ${db.user} may not use the steep_repl schema on ${describeConnection(db)}`, {
        hint: `As its owner: GRANT USAGE ON SCHEMA steep_repl TO ${db.user}; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA steep_repl TO ${db.user}; GRANT USAGE ON ALL SEQUENCES IN SCHEMA steep_repl TO ${db.user}; GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA steep_repl TO ${db.user}; (or only what its commands need: docs/privileges.md)`,
      })
    }
    throw err
  }
  if (!state.installed) {
    throw new NotInstalledError(`the steep_repl schema is not installed on ${describeConnection(db)}`, {hint: `Run: steep-repl install -d <this connection>`})
  }
  if (state.version < JOBS_SCHEMA_VERSION) {
    throw new SchemaMismatchError(`the steep_repl schema on ${describeConnection(db)} is at version ${state.version}; jobs need version ${JOBS_SCHEMA_VERSION} or later`, {
      hint: 'Run: steep-repl install -d <this connection> (upgrades in place)',
    })
  }
  if (state.version > latestVersion()) {
    throw new SchemaMismatchError(`the steep_repl schema on ${describeConnection(db)} is at version ${state.version}, newer than this steep-repl knows (${latestVersion()})`, {
      hint: 'Upgrade steep-repl to a release that knows this schema version.',
    })
  }
  return state.version
}

export interface ConnResolverOptions {
  /** The queue database: node ids are looked up there, and its dbname is the default for nodes. */
  db: ConnParams
  /** --config of the executor (a worker's or the command's). */
  configPath?: string
  /** Already-resolved servers by reference (direct runs only; never stored). */
  local?: ReadonlyMap<string, ConnParams>
  env?: NodeJS.ProcessEnv
}

/**
 * Resolves a server reference from job params on the executor's side:
 *   `name`      — the config file's connection of that name (password from password_env, ~/.pgpass);
 *   `node:<id>` — host and port from steep_repl.nodes; user, password, dbname from the executor's
 *                 PG* environment and ~/.pgpass, dbname defaulting to the queue database's;
 *   otherwise   — a connection string (its password, if any is needed, from ~/.pgpass or PGPASSWORD).
 */
export function makeConnResolver(o: ConnResolverOptions): (ref: string) => Promise<ConnParams> {
  const env = o.env ?? process.env
  return async (ref: string) => {
    const known = o.local?.get(ref)
    if (known) return known
    const r = parseConnRef(ref)
    if (r.kind === 'conninfo') return resolveConnection({db: r.conninfo, flag: 'job params', env})
    if (r.kind === 'name') {
      const {loadConfig, namedConnectionInfo} = await import('../lib/connection/config-file.js')
      const config = loadConfig(o.configPath, env)
      if (!config.config.connections[r.name]) {
        throw new ConfigError(`job params name connection "${r.name}", which is not in ${config.path}${config.exists ? '' : ' (not found)'} on this executor`, {
          hint: 'Define it under connections: in the config file of the worker (or of the command for --direct runs).',
        })
      }
      return resolveConnection({db: r.name, flag: 'job params', config, named: namedConnectionInfo, env})
    }
    const client = await openClient(o.db, {applicationName: 'steep-repl'})
    client.on('error', () => {})
    try {
      const {rows} = await client.query<{host: string; port: number}>(`SELECT host, port FROM steep_repl.nodes WHERE node_id = $1`, [r.nodeId])
      if (!rows[0]) throw new StateError(`job params name node ${r.nodeId}, which is not registered in steep_repl.nodes on ${describeConnection(o.db)}`)
      const base = resolveConnection({db: undefined, env: {...env, PGHOST: rows[0].host, PGPORT: String(rows[0].port), PGDATABASE: env.PGDATABASE ?? o.db.dbname, PGUSER: env.PGUSER ?? o.db.user}})
      return {...base, source: `node ${r.nodeId}`}
    } finally {
      await client.end().catch(() => {})
    }
  }
}

type Queryable = Pick<pg.Client, 'query'>

/**
 * A few queue connections shared round-robin (pg.Client queues the queries of its users); a
 * connection that fails is replaced on next use.
 */
export class ClientSet {
  private readonly slots: Array<{client?: pg.Client; opening?: Promise<pg.Client>}>
  private i = 0
  private closed = false

  constructor(
    private readonly db: ConnParams,
    size: number,
    private readonly applicationName: string,
  ) {
    this.slots = Array.from({length: Math.max(1, size)}, () => ({}))
  }

  private async get(slot: {client?: pg.Client; opening?: Promise<pg.Client>}): Promise<pg.Client> {
    if (this.closed) throw new Error('connections closed')
    if (slot.client) return slot.client
    slot.opening ??= openQueueClient(this.db, this.applicationName).then(
      (c) => {
        c.on('error', () => {
          if (slot.client === c) slot.client = undefined
        })
        c.on('end', () => {
          if (slot.client === c) slot.client = undefined
        })
        slot.client = c
        slot.opening = undefined
        return c
      },
      (err) => {
        slot.opening = undefined
        throw err
      },
    )
    return slot.opening
  }

  /** A Queryable bound to the next connection. */
  next(): Queryable {
    const slot = this.slots[this.i++ % this.slots.length]!
    return {query: (async (...args: unknown[]) => (await this.get(slot)).query(...(args as [string]))) as Queryable['query']}
  }

  async end(): Promise<void> {
    this.closed = true
    await Promise.all(this.slots.map(async (s) => {
      const c = s.client ?? (await s.opening?.catch(() => undefined))
      await c?.end().catch(() => {})
    }))
  }
}
