// apply's autovacuum guard against a real server: while a table is held, a SHARE UPDATE EXCLUSIVE
// NOWAIT (what autovacuum's skip-if-locked amounts to) fails and COPY into the table still runs;
// after release the table's own lock-taking work (ANALYZE, CREATE INDEX) proceeds; a table someone
// else has locked is left out without waiting or failing; end() frees the connection.

import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import type pg from 'pg'
import {openClient} from '../../src/lib/connection/connect.js'
import {resolveConnection} from '../../src/lib/connection/resolve.js'
import {AutovacuumGuard} from '../../src/lib/snapshot/autovacuum-guard.js'
import {dropDatabase, freshDatabase, sql} from '../helpers/pg.js'

describe('autovacuum guard', () => {
  let db: string
  const clients: pg.Client[] = []
  const client = async () => {
    const c = await openClient(resolveConnection({db}))
    clients.push(c)
    return c
  }
  /** Whether another session could take what autovacuum takes, without waiting. */
  const vacuumCouldTake = async (c: pg.Client, table: string) => {
    await c.query('BEGIN')
    try {
      await c.query(`LOCK TABLE ONLY ${table} IN SHARE UPDATE EXCLUSIVE MODE NOWAIT`)
      return true
    } catch (err) {
      expect((err as {code?: string}).code).toBe('55P03')
      return false
    } finally {
      await c.query('ROLLBACK')
    }
  }

  beforeAll(async () => {
    db = await freshDatabase('avguard')
    await sql(db, `CREATE TABLE a (id int); CREATE TABLE "B b" (id int); CREATE TABLE c (id int)`)
  })
  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => {})
    await dropDatabase(db)
  })

  it('holds tables against autovacuum but not against loading, and lets each go on release', async () => {
    const [guardConn, loader, other] = [await client(), await client(), await client()]
    const guard = new AutovacuumGuard(guardConn)
    // Someone (autovacuum, say) has c already: the guard leaves it to them rather than wait.
    await other.query('BEGIN')
    await other.query(`LOCK TABLE ONLY c IN SHARE UPDATE EXCLUSIVE MODE`)
    await guard.start(['a', 'B b', 'c'].map((name) => ({key: name, table: {schema: 'public', name}})))
    await other.query('ROLLBACK')
    expect(await vacuumCouldTake(other, 'a')).toBe(false)
    expect(await vacuumCouldTake(other, '"B b"')).toBe(false)
    expect(await vacuumCouldTake(other, 'c')).toBe(true)
    // Loading runs alongside.
    await loader.query('BEGIN')
    await loader.query(`INSERT INTO a SELECT generate_series(1, 1000)`)
    await loader.query('COMMIT')

    await guard.release('a')
    expect(await vacuumCouldTake(other, 'a')).toBe(true)
    // The others are locked again in the background (autovacuum may slip in meanwhile, by design).
    await guard.idle()
    expect(await vacuumCouldTake(other, '"B b"')).toBe(false)
    // The released table's own work needs the lock the guard held.
    await loader.query(`SET lock_timeout = '2s'`)
    await loader.query(`ANALYZE a`)
    await loader.query(`CREATE INDEX ON a (id)`)

    await guard.end()
    expect(await vacuumCouldTake(other, '"B b"')).toBe(true)
    // No transaction left open on the guard's connection.
    expect((await guardConn.query(`SELECT count(*)::int AS n FROM pg_locks WHERE pid = pg_backend_pid() AND relation IS NOT NULL AND relation <> 'pg_locks'::regclass`)).rows).toEqual([{n: 0}])
  })

  it('after a failure it still ends its transaction: the connection is usable', async () => {
    const c = await client()
    const guard = new AutovacuumGuard(c)
    await expect(guard.start([{key: 'x', table: {schema: 'public', name: 'no such table'}}])).rejects.toMatchObject({code: '42P01'})
    await guard.end()
    expect((await c.query(`SELECT 1 AS ok`)).rows).toEqual([{ok: 1}])
  })
})
