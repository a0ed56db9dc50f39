// Shared fixtures of the merge tests: two databases standing for node A and node B, upstream's
// simple-overlap data (steep-repl-upstream.md §8.3), and connection params for the library calls.

import {resolveConnection, type ConnParams} from '../../src/lib/connection/resolve.js'
import {adminClient, freshDatabase, sql} from '../helpers/pg.js'

export const params = (url: string): ConnParams => resolveConnection({db: url, env: {}})

/** Upstream fixture: A has 1,2,3; B has 2,3',4 → 1 match, 1 conflict, 1 A-only, 1 B-only. */
export const SIMPLE_SCHEMA = `CREATE TABLE public.users (id int PRIMARY KEY, name text NOT NULL, status text, updated_at timestamptz)`
export const SIMPLE_A = `INSERT INTO public.users VALUES (1, 'alice', 'v1', '2024-01-01 10:00Z'), (2, 'bob', 'v1', '2024-01-01 10:00Z'), (3, 'carol', 'v1', '2024-01-01 10:00Z')`
export const SIMPLE_B = `INSERT INTO public.users VALUES (2, 'bob', 'v1', '2024-01-01 10:00Z'), (3, 'carol', 'v2', '2024-01-02 10:00Z'), (4, 'dave', 'v1', '2024-01-01 10:00Z')`

export async function twoNodes(schema: string, dataA: string, dataB: string, prefix = 'merge'): Promise<{a: string; b: string}> {
  const [a, b] = await Promise.all([freshDatabase(`${prefix}_a`), freshDatabase(`${prefix}_b`)])
  await Promise.all([
    (async () => {
      await sql(a, schema)
      if (dataA) await sql(a, dataA)
    })(),
    (async () => {
      await sql(b, schema)
      if (dataB) await sql(b, dataB)
    })(),
  ])
  return {a, b}
}

export async function installSchema(url: string): Promise<void> {
  const {install} = await import('../../src/lib/install/migrations.js')
  const c = await adminClient(url)
  try {
    await install(c)
  } finally {
    await c.end()
  }
}

/** Every row of a table as text, ordered, for before/after comparisons. */
export async function dump(url: string, table: string, order = '1'): Promise<string[]> {
  const c = await adminClient(url)
  try {
    await c.query(`SET TimeZone = 'UTC'`)
    return (await c.query<{r: string}>(`SELECT t::text AS r FROM ${table} t ORDER BY ${order}`)).rows.map((r) => r.r)
  } finally {
    await c.end()
  }
}
