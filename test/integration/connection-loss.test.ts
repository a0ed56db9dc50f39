// A connection whose backend dies reports why on every later use (src/lib/connection/connect.ts,
// reportLossAsItsCause), not node-postgres' causeless "not queryable": the server's FATAL message and
// its SQLSTATE, through promise, callback and COPY-stream queries, whether the backend died idle or
// in the middle of a query.

import {pipeline} from 'node:stream/promises'
import {Writable} from 'node:stream'
import type pg from 'pg'
import {afterAll, describe, expect, it} from 'vitest'
import {openClient} from '../../src/lib/connection/connect.js'
import {resolveConnection} from '../../src/lib/connection/resolve.js'
import {isConnectionFailure} from '../../src/lib/errors.js'
import {CopyOutStream} from '../../src/lib/snapshot/copy-out.js'
import {adminClient, shared} from '../helpers/pg.js'

const TERMINATED = /terminating connection due to administrator command/

type PgError = Error & {code?: string}
/** The error a query fails with (the test fails if it succeeds). */
const failure = (q: Promise<unknown>): Promise<PgError> =>
  q.then(
    () => {
      throw new Error('the query succeeded')
    },
    (e: unknown) => e as PgError,
  )

/** Resolves when the client's socket has ended (events.once would reject on the 'error' before it). */
const ended = (c: pg.Client) => new Promise<void>((resolve) => c.once('end', () => resolve()))

describe('a lost connection reports its cause', () => {
  const admins: pg.Client[] = []
  afterAll(async () => {
    await Promise.all(admins.map((a) => a.end()))
  })

  async function terminate(c: pg.Client): Promise<void> {
    const pid = (await c.query<{pid: number}>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid
    const admin = await adminClient()
    admins.push(admin)
    return void admin.query('SELECT pg_terminate_backend($1)', [pid])
  }

  it('after its backend was terminated while idle: the server reason and code, for every kind of query', async () => {
    const c = await openClient(resolveConnection({db: shared().url, env: {}}))
    const died = ended(c)
    await terminate(c)
    await died
    const viaPromise = await failure(c.query('SELECT 1'))
    expect(viaPromise.message).toMatch(TERMINATED)
    expect(viaPromise.code).toBe('57P01')
    expect(isConnectionFailure(viaPromise)).toBe(true)
    const viaCallback = await new Promise<Error>((resolve) => c.query('SELECT 1', (err: Error) => resolve(err)))
    expect(viaCallback.message).toMatch(TERMINATED)
    const copy = c.query(new CopyOutStream('COPY (SELECT 1) TO STDOUT'))
    const sink = new Writable({write: (_c, _e, cb) => cb()})
    await expect(pipeline(copy, sink)).rejects.toThrow(TERMINATED)
  })

  it('after its backend was terminated during a query: that query and the later ones name the reason', async () => {
    const c = await openClient(resolveConnection({db: shared().url, env: {}}))
    const running = failure(c.query('SELECT pg_sleep(30)'))
    await new Promise((r) => setTimeout(r, 200))
    const admin = await adminClient()
    admins.push(admin)
    await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'`)
    expect((await running).message).toMatch(TERMINATED)
    if (!(c as unknown as {_ended?: boolean})._ended) await ended(c)
    const later = await failure(c.query('SELECT 1'))
    expect(later.message).toMatch(TERMINATED)
    expect(later.code).toBe('57P01')
  })

  it('leaves a healthy connection alone', async () => {
    const c = await openClient(resolveConnection({db: shared().url, env: {}}))
    try {
      expect((await c.query<{n: number}>('SELECT 1 AS n')).rows[0]!.n).toBe(1)
      await expect(c.query('SELECT 1/0')).rejects.toThrow(/division by zero/)
      expect((await c.query<{n: number}>('SELECT 2 AS n')).rows[0]!.n).toBe(2)
    } finally {
      await c.end()
    }
  })
})
