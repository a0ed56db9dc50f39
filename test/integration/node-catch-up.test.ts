// node init's catch-up (waitForCatchUp) against a source that commits asynchronously: a transaction
// committed with synchronous_commit = off is visible on the source before its commit record is
// flushed, and a walsender sends only flushed WAL. The source here has wal_writer_delay = 10s, so
// such a commit stays unflushed (and unsent) until something flushes it: catch-up must not report the
// subscription caught up because the slot confirmed the flushed WAL. (It did: the
// flush position was the target, and test/faults/phase-kills' catch-up case failed when the CLI
// polled inside the WAL writer's delay.) Also: the end of the WAL at a page boundary.

import type pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {adminClient, dropDatabase, freshDatabase, sql, withDatabase} from '../helpers/pg.js'
import {type ServerHandle, startTestServer} from '../helpers/servers.js'
import {resolveConnection} from '../../src/lib/connection/resolve.js'
import {waitForCatchUp, walEndSql} from '../../src/lib/node/catch-up.js'
import {createSubscription} from '../../src/lib/snapshot/apply.js'
import {dropSubs, waitFor} from './node-support.js'

const SLOT = 'catchup_async_slot'
const SUB = 'catchup_async_sub'
const PUB = 'catchup_async_pub'

describe('catch-up', {timeout: 120_000}, () => {
  let server: ServerHandle
  let src: string
  let dst: string
  let source: pg.Client
  let target: pg.Client

  beforeAll(async () => {
    // Asynchronous commits (the test servers' default), flushed by the WAL writer only every 10 s.
    server = await startTestServer({settings: {wal_writer_delay: '10s', synchronous_commit: 'off'}})
    await sql(server.url(), `CREATE DATABASE src`)
    src = withDatabase(server.url(), 'src')
    // The table and publication before the slot; creating a logical slot flushes the WAL.
    await sql(src, `CREATE TABLE t (id int PRIMARY KEY); CREATE PUBLICATION ${PUB} FOR TABLE t; CREATE TABLE flushes (at timestamptz DEFAULT now())`)
    await sql(src, `SELECT pg_create_logical_replication_slot('${SLOT}', 'pgoutput')`)
    dst = await freshDatabase('catchup_dst')
    await sql(dst, `CREATE TABLE t (id int PRIMARY KEY)`)
    source = await adminClient(src)
    target = await adminClient(dst)
    await createSubscription(target, {name: SUB, source: resolveConnection({db: src}), publication: PUB, slot: SLOT})
  })

  afterAll(async () => {
    await dropSubs(dst).catch(() => {})
    await target?.end().catch(() => {})
    await source?.end().catch(() => {})
    await dropDatabase(dst).catch(() => {})
    await server?.stop()
  })

  /**
   * Flushes the source's WAL now: a commit with synchronous_commit = on of a transaction that wrote
   * WAL (one without a record before its commit's is not flushed), to a table not published.
   */
  const flushSource = () => sql(src, `BEGIN; SET LOCAL synchronous_commit = on; INSERT INTO flushes DEFAULT VALUES; COMMIT`)
  /**
   * Catch-up with the source's WAL flushed every 200 ms meanwhile, as its WAL writer would with the
   * default wal_writer_delay (the server also writes WAL of its own: a running_xacts record every 15 s).
   */
  const catchUpFlushing = async (): Promise<number> => {
    let on = true
    const flusher = (async () => {
      while (on) {
        await flushSource()
        await new Promise((r) => setTimeout(r, 200))
      }
    })()
    try {
      return await waitForCatchUp(target, source, SLOT, SUB, 1 << 20, 60_000, undefined)
    } finally {
      on = false
      await flusher
    }
  }

  /**
   * Runs fn while a transaction on the source stays open after writing WAL (to a table not
   * published): its last partial page is flushed by nothing on this server for 10 s (the WAL
   * writer) or 15 s (running_xacts).
   */
  const withOpenTransaction = async (fn: () => Promise<void>): Promise<void> => {
    const open = await adminClient(src)
    try {
      await open.query(`BEGIN; INSERT INTO flushes DEFAULT VALUES`)
      await fn()
    } finally {
      await open.query('ROLLBACK').catch(() => {})
      await open.end()
    }
  }

  it('waits for a transaction committed asynchronously, and applied, even when the slot has confirmed the flushed WAL', async () => {
    await catchUpFlushing()

    await sql(src, `INSERT INTO t SELECT generate_series(1, 100)`)
    // What the test arranges: committed and visible on the source, not flushed, so not sent.
    const [w] = await sql<{unflushed: boolean; n: number}>(src, `SELECT pg_current_wal_flush_lsn() < pg_current_wal_insert_lsn() AS unflushed, (SELECT count(*)::int FROM t) AS n`)
    expect(w).toEqual({unflushed: true, n: 100})

    // Catch-up may take its time (it has the WAL flushed: flushWal), but when it returns the rows are
    // there. Measured against the flush position it returned at its first poll with none of them.
    await waitForCatchUp(target, source, SLOT, SUB, 1 << 20, 60_000, undefined)
    expect((await sql(dst, `SELECT count(*)::int AS n FROM t`))[0].n).toBe(100)
  })

  it('does not wait for a transaction that is still open: the WAL it wrote is flushed, not waited for', async () => {
    await catchUpFlushing()
    await withOpenTransaction(async () => {
      const [w] = await sql<{unflushed: boolean}>(src, `SELECT pg_current_wal_flush_lsn() < pg_current_wal_insert_lsn() AS unflushed`)
      expect(w!.unflushed).toBe(true)
      // Its own timeout well under both: catch-up has the WAL flushed (flushWal) instead of waiting.
      await waitForCatchUp(target, source, SLOT, SUB, 1 << 20, 5_000, undefined)
      await sql(src, `INSERT INTO t VALUES (1000)`)
      await waitForCatchUp(target, source, SLOT, SUB, 1 << 20, 5_000, undefined)
      expect((await sql(dst, `SELECT count(*)::int AS n FROM t WHERE id = 1000`))[0].n).toBe(1)
    })
  })

  it('has the WAL flushed without waiting for synchronous standbys: a named standby that never connects does not hold it', async () => {
    await catchUpFlushing()
    // A commit that waits for synchronous standbys would wait here forever.
    await sql(server.url(), `ALTER SYSTEM SET synchronous_standby_names = 'steep_ghost_standby'`)
    await sql(server.url(), `SELECT pg_reload_conf()`)
    try {
      await waitFor('the setting to take effect', async () => (await sql<{s: string}>(src, `SELECT current_setting('synchronous_standby_names') AS s`))[0]!.s === 'steep_ghost_standby')
      // WAL that only a flush makes visible to the walsender.
      await withOpenTransaction(async () => {
        await sql(src, `INSERT INTO t VALUES (2000)`)
        await waitForCatchUp(target, source, SLOT, SUB, 1 << 20, 5_000, undefined)
        expect((await sql(dst, `SELECT count(*)::int AS n FROM t WHERE id = 2000`))[0].n).toBe(1)
      })
    } finally {
      await sql(server.url(), `ALTER SYSTEM RESET synchronous_standby_names`)
      await sql(server.url(), `SELECT pg_reload_conf()`)
    }
  })

  it('the end of the WAL is where a slot confirms it, also when the last record ended at a page boundary or a segment switch', async () => {
    const end = async (lsn: string) => (await sql<{e: string}>(src, `SELECT ${walEndSql(`'${lsn}'`)}::text AS e`))[0]!.e
    // 8 kB pages and 16 MB segments (initdb's defaults; the test server's).
    expect((await sql(src, `SELECT current_setting('wal_block_size') AS b, current_setting('wal_segment_size') AS s`))[0]).toEqual({b: '8192', s: '16MB'})
    expect(await end('0/34A4018')).toBe('0/34A4000') // after a page's short header (24 bytes)
    expect(await end('0/3000028')).toBe('0/3000000') // after a segment's first page's long header (40 bytes)
    expect(await end('1/28')).toBe('1/0')
    expect(await end('0/3002018')).toBe('0/3002000')
    for (const lsn of ['0/34A4000', '0/34A4020', '0/34A5E90', '0/3000000', '0/3000030', '0/3001FF8']) expect(await end(lsn)).toBe(lsn)

    // The real thing: a slot read to the end through SQL confirms the end of the last record, which
    // pg_current_wal_insert_lsn() reports past the next page's header. Retried if the server writes
    // a record of its own in between.
    await sql(src, `SELECT pg_create_logical_replication_slot('catchup_bnd', 'pgoutput')`)
    try {
      const atBoundary = async (makeBoundary: string) => {
        for (let i = 0; i < 20; i++) {
          await source.query(makeBoundary)
          await source.query(`SELECT count(*) FROM pg_logical_slot_get_binary_changes('catchup_bnd', NULL, NULL, 'proto_version', '1', 'publication_names', '${PUB}')`)
          const [r] = (
            await source.query(
              `SELECT confirmed_flush_lsn::text AS confirmed, ${walEndSql()}::text AS wal_end, pg_current_wal_insert_lsn()::text AS insert,
                      ((pg_current_wal_insert_lsn() - '0/0'::pg_lsn) % 8192)::int AS off
                 FROM pg_replication_slots WHERE slot_name = 'catchup_bnd'`,
            )
          ).rows
          if (r.off === 24 || r.off === 40) return r
        }
        throw new Error('no quiet moment at a boundary in 20 tries')
      }
      // A segment switch: the next record goes after the next segment's long page header.
      const seg = await atBoundary(`SELECT pg_switch_wal()`)
      expect(seg.wal_end).toBe(seg.confirmed)
      expect(seg.insert).not.toBe(seg.confirmed)
      // A record that ends exactly at a page's end (a logical message sized to fill the page, flushed: 17+).
      if (server.info.major >= 17) {
        const page = await atBoundary(
          `SELECT pg_logical_emit_message(false, 'p', repeat('x', CASE WHEN r >= 400 THEN r - 55 ELSE 300 END), true)
             FROM (SELECT 8192 - ((pg_current_wal_insert_lsn() - '0/0'::pg_lsn) % 8192)::int AS r) x`,
        )
        expect(page.wal_end).toBe(page.confirmed)
        expect(page.insert).not.toBe(page.confirmed)
      }
    } finally {
      await sql(src, `SELECT pg_drop_replication_slot('catchup_bnd')`)
    }
  })
})
