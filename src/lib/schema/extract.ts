// DDL extraction on a client that is already inside a transaction (for example one that ran
// `SET TRANSACTION SNAPSHOT`): everything is read in that transaction, with search_path set to ''
// for the duration (restored afterwards) so that every name the server prints is schema-qualified.
// The caller's transaction stays usable: the work runs under a savepoint.

import {StateError} from '../errors.js'
import {filterParams, NS_CTE, type Queryable, readCatalog, type SchemaFilter} from './catalog.js'
import {type BuildOptions, buildDdl, type DdlStatement, type SchemaDdl, type Section} from './ddl.js'
import {qname} from './names.js'

export interface ExtractOptions extends SchemaFilter, BuildOptions {
  /**
   * Take ACCESS SHARE locks on the selected tables and views first (as pg_dump
   * does), so that no DDL can change them until the caller's transaction ends. Default false.
   */
  lockTables?: boolean
}

const SAVEPOINT = 'steep_repl_schema_extract'

/** 'I' idle, 'T' in a transaction, 'E' in a failed transaction; undefined when the client cannot say. */
export function transactionStatus(client: Queryable): string | undefined {
  const c = client as {getTransactionStatus?: () => string | null}
  return typeof c.getTransactionStatus === 'function' ? (c.getTransactionStatus() ?? undefined) : undefined
}

async function inSavepoint<T>(client: Queryable, fn: () => Promise<T>): Promise<T> {
  const status = transactionStatus(client)
  if (status === 'I') throw new StateError('DDL extraction needs a client inside a transaction (BEGIN ISOLATION LEVEL REPEATABLE READ first)')
  if (status === 'E') throw new StateError('the client is in a failed transaction: roll it back first')
  try {
    await client.query(`SAVEPOINT ${SAVEPOINT}`)
  } catch (err) {
    if ((err as {code?: string}).code === '25P01') {
      throw new StateError('DDL extraction needs a client inside a transaction (BEGIN ISOLATION LEVEL REPEATABLE READ first)')
    }
    throw err
  }
  try {
    const result = await fn()
    await client.query(`RELEASE SAVEPOINT ${SAVEPOINT}`)
    return result
  } catch (err) {
    await client.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`).catch(() => {})
    await client.query(`RELEASE SAVEPOINT ${SAVEPOINT}`).catch(() => {})
    throw err
  }
}

/** Runs fn with search_path = '' in the caller's transaction, then puts the old value back. */
export async function withEmptySearchPath<T>(client: Queryable, fn: () => Promise<T>): Promise<T> {
  return inSavepoint(client, async () => {
    const {rows} = await client.query<{sp: string}>(`SELECT pg_catalog.current_setting('search_path') AS sp`)
    await client.query(`SELECT pg_catalog.set_config('search_path', '', true)`)
    const result = await fn()
    await client.query(`SELECT pg_catalog.set_config('search_path', $1, true)`, [rows[0]!.sp])
    return result
  })
}

/**
 * Extracts the DDL of the selected user objects. The client must be inside a transaction; use
 * REPEATABLE READ (or an imported snapshot) so that every catalog query sees the same state.
 */
export async function extractSchemaDdl(client: Queryable, opts: ExtractOptions = {}): Promise<SchemaDdl> {
  return withEmptySearchPath(client, async () => {
    if (opts.lockTables) await lockRelations(client, opts)
    const cat = await readCatalog(client, opts)
    return buildDdl(cat, opts)
  })
}

/** ACCESS SHARE locks on the tables and views of `filter` (pg_dump's first step), in one statement per 500. */
export async function lockRelations(client: Queryable, filter: SchemaFilter): Promise<void> {
  const {rows} = await client.query<{schema: string; name: string}>(
    `WITH ${NS_CTE} SELECT ns.nspname AS schema, c.relname AS name FROM pg_catalog.pg_class c JOIN ns ON ns.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v') ORDER BY 1, 2`,
    filterParams(filter),
  )
  for (let i = 0; i < rows.length; i += 500) {
    const list = rows.slice(i, i + 500).map((r) => qname(r.schema, r.name))
    if (list.length) await client.query(`LOCK TABLE ${list.join(', ')} IN ACCESS SHARE MODE`)
  }
}

/** Runs statements one by one (each may hold several commands) after the session settings. */
export async function applyStatements(client: Queryable, ddl: Pick<SchemaDdl, 'settings'>, statements: DdlStatement[]): Promise<void> {
  await client.query(ddl.settings.join('\n'))
  for (const st of statements) {
    try {
      await client.query(st.sql)
    } catch (err) {
      const e = err as Error
      e.message = `${st.kind} ${st.schema ?? ''}${st.schema ? '.' : ''}${st.name}: ${e.message}`
      throw e
    }
  }
}

/** Applies the given sections (default both) in order. */
export async function applyDdl(client: Queryable, ddl: SchemaDdl, sections: Section[] = ['pre-data', 'post-data']): Promise<void> {
  for (const s of sections) await applyStatements(client, ddl, s === 'pre-data' ? ddl.preData : ddl.postData)
}
