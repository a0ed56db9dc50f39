// Runs catalog reads with search_path = '' (so the server schema-qualifies every name it prints),
// whether or not the caller's client is already inside a transaction: inside one, under a savepoint
// in that transaction; outside, in a READ ONLY REPEATABLE READ transaction of its own.

import type {Queryable} from './catalog.js'
import {transactionStatus, withEmptySearchPath} from './extract.js'

export async function inTransaction(client: Queryable): Promise<boolean> {
  // node-postgres knows from ReadyForQuery; only other clients need the (server-logged) probe.
  const status = transactionStatus(client)
  if (status !== undefined) return status !== 'I'
  try {
    await client.query('SAVEPOINT steep_repl_probe')
  } catch (err) {
    if ((err as {code?: string}).code === '25P01') return false
    throw err
  }
  await client.query('RELEASE SAVEPOINT steep_repl_probe')
  return true
}

export async function withCatalogRead<T>(client: Queryable, fn: () => Promise<T>): Promise<T> {
  if (await inTransaction(client)) return withEmptySearchPath(client, fn)
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
  try {
    const result = await withEmptySearchPath(client, fn)
    await client.query('COMMIT')
    return result
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  }
}
