// What a test file uses: the shared server, fresh databases on it, extra servers, and a superuser
// client. Every database a test creates has a random name, so files can run in parallel.

import {randomBytes} from 'node:crypto'
import pg from 'pg'
import {inject} from 'vitest'
import type {ServerInfo} from './servers.js'

export {startTestServer} from './servers.js'

export function shared(): ServerInfo {
  const info = inject('pg')
  if (!info) throw new Error('no test server: this file needs the integration setup')
  return info
}

/** URL of `db` on a server given by its base URL. */
export function withDatabase(url: string, db: string): string {
  const u = new URL(url)
  u.pathname = '/' + encodeURIComponent(db)
  return u.toString()
}

export async function adminClient(url = shared().url): Promise<pg.Client> {
  const c = new pg.Client({connectionString: url})
  await c.connect()
  c.on('error', () => {})
  return c
}

export async function sql<T extends pg.QueryResultRow = any>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const c = await adminClient(url)
  try {
    return (await c.query<T>(text, params)).rows
  } finally {
    await c.end()
  }
}

/** Creates a database with a random name and returns its URL. */
export async function freshDatabase(prefix = 't', serverUrl = shared().url): Promise<string> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`
  await sql(serverUrl, `CREATE DATABASE ${pg.escapeIdentifier(name)}`)
  return withDatabase(serverUrl, name)
}

export async function dropDatabase(url: string): Promise<void> {
  const name = decodeURIComponent(new URL(url).pathname.slice(1))
  await sql(withDatabase(url, 'postgres'), `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`)
}
