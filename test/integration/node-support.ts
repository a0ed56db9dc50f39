// What the node test files share: extra servers tuned for quick subscription workers, cleanup of
// subscriptions and slots, and explicit polling waits (a condition, a deadline, a message) instead
// of fixed sleeps, so the tests hold under load on a 2-core machine.

import {adminClient, sql} from '../helpers/pg.js'
import {type ServerHandle, startTestServer as start} from '../helpers/servers.js'
import {ensureRegistry, registerNode} from '../../src/lib/node/registry.js'

export type Server = ServerHandle

/**
 * Extra servers for the targets. wal_retrieve_retry_interval bounds how soon the launcher restarts
 * an apply worker (after ALTER SUBSCRIPTION … REFRESH) and starts table sync workers: 5 s by
 * default, which made catch-ups slow on PostgreSQL 15.
 */
export async function startNodeServers(n: number): Promise<Server[]> {
  const out: Server[] = []
  // One at a time: initdb is CPU-bound and the machine has 2 cores.
  for (let i = 0; i < n; i++) out.push(await start({settings: {wal_retrieve_retry_interval: '200ms', max_sync_workers_per_subscription: 4}}))
  return out
}

export async function stopServers(servers: Server[]): Promise<void> {
  await Promise.all(servers.map((s) => s.stop().catch(() => {})))
}

const sameDb = `subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`

export async function dropSubs(url: string): Promise<void> {
  for (const s of await sql(url, `SELECT subname FROM pg_subscription WHERE ${sameDb}`).catch(() => [])) {
    await sql(url, `ALTER SUBSCRIPTION "${s.subname}" DISABLE`)
    await sql(url, `ALTER SUBSCRIPTION "${s.subname}" SET (slot_name = NONE)`)
    await sql(url, `DROP SUBSCRIPTION "${s.subname}"`)
  }
}

/** Drops every slot of the database, waiting for walsenders of dropped subscriptions to go away. */
export async function dropSlots(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    await sql(url, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database() AND NOT active`).catch(() => {})
    if (!(await sql(url, `SELECT 1 FROM pg_replication_slots WHERE database = current_database()`).catch(() => [])).length) return
    await new Promise((res) => setTimeout(res, 100))
  }
}

/** Polls until check() returns true; fails with what and the last value seen when the deadline passes. */
export async function waitFor(what: string, check: () => Promise<boolean | {ok: boolean; seen: unknown}>, timeoutMs = 60_000, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let seen: unknown
  for (;;) {
    const r = await check().catch((err) => ({ok: false, seen: (err as Error).message}))
    if (r === true || (typeof r === 'object' && r.ok)) return
    if (typeof r === 'object') seen = r.seen
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${what}${seen === undefined ? '' : `; last seen: ${JSON.stringify(seen)}`}`)
    await new Promise((res) => setTimeout(res, everyMs))
  }
}

// Not the slot's confirmed_flush_lsn: a subscriber confirms the sender's WAL end as soon as it
// has no commit pending, which can be before it applied a transaction it is still receiving.

/** Waits until query returns the same rows on both databases (e.g. a checksum). */
export async function waitSame(a: string, b: string, query: (url: string) => Promise<unknown>, what = 'the same rows on both sides', timeoutMs = 60_000): Promise<void> {
  await waitFor(
    what,
    async () => {
      const [x, y] = await Promise.all([query(a), query(b)])
      return {ok: JSON.stringify(x) === JSON.stringify(y), seen: {a: x, b: y}}
    },
    timeoutMs,
    200,
  )
}

/** Installs the registry in url and registers node id there. */
export async function registerTarget(url: string, id: string, port = 5432): Promise<void> {
  const c = await adminClient(url)
  try {
    await ensureRegistry(c)
    await registerNode(c, {nodeId: id, host: 'localhost', port, priority: 50})
  } finally {
    await c.end()
  }
}
