// node cancel and node reinit. Cancel stops a running init (through its job when an executor still
// runs it) and in any case removes what the init created, from what init_progress recorded:
// subscription, slot, publication, created tables; the node ends failed with the reason.
// Reinit of tables re-copies them through native logical replication's own table sync: the
// tables leave the publication, the subscription forgets them, they are truncated with a
// replication origin set (so peers subscribed with origin = none do not replicate the truncate),
// then they are added back and REFRESH PUBLICATION WITH (copy_data = true) copies them and
// catches them up to the stream exactly.

import {hostname} from 'node:os'
import pg from 'pg'
import {openClient} from '../connection/connect.js'
import type {ConnParams} from '../connection/resolve.js'
import {redact} from '../redact.js'
import {CancelledError, StateError, SteepError, TimeoutError, UsageError} from '../errors.js'
import {getJob, requestCancel} from '../../direct/queue.js'
import {qualified} from '../snapshot/copy.js'
import {parseQualifiedName} from '../snapshot/catalog.js'
import {dropSlotAndPublication} from '../snapshot/cleanup.js'
import {dropSubscriptionKeepSlot} from '../snapshot/apply.js'
import {flushWal, walEndSql} from './catch-up.js'
import {cleanupInit, writeProgress} from './init.js'
import {readProgress} from './progress.js'
import {requireNode, setInitState} from './registry.js'
import type {Reporter} from '../snapshot/generate.js'
import {initNames, RUNNING_STATES} from './state.js'

const REINIT_ORIGIN = 'steep_reinit'

/** A direct run on this host (lease owner direct:<host>:<pid>:…) whose process no longer exists. */
function deadDirectRun(owner: string | null): boolean {
  const m = owner?.match(/^direct:(.+):(\d+):[0-9a-f]+$/)
  if (!m || m[1] !== hostname()) return false
  try {
    process.kill(Number(m[2]), 0)
    return false
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

export interface CancelResult {
  nodeId: string
  jobCancelled: string | null
  subscriptionDropped: boolean
  slotDropped: boolean
  publicationDropped: boolean
  tablesDropped: number
  /** Views, sequences, functions, types and schemas the init created besides its tables, now gone (dropped, or gone with a table). */
  objectsDropped: number
  state: 'failed'
}

/** Stops a running init of nodeId and removes what it created. source: to drop the slot and publication. */
export async function cancelInit(target: ConnParams, source: ConnParams | null, nodeId: string, opts: {waitMs?: number; log?: (m: string) => void} = {}): Promise<CancelResult> {
  const log = opts.log ?? (() => {})
  const c = await openClient(target, {applicationName: 'steep-repl node cancel'})
  c.on('error', () => {})
  try {
    const node = await requireNode(c, nodeId)
    const p = await readProgress(c, nodeId)
    if (!RUNNING_STATES.includes(node.initState) && node.initState !== 'failed') {
      throw new StateError(`no initialization in progress for node ${nodeId} (state ${node.initState})`)
    }
    let jobCancelled: string | null = null
    if (p?.jobId) {
      const job = await getJob(c, p.jobId)
      if (job && (job.status === 'running' || job.status === 'pending')) {
        await requestCancel(c, p.jobId)
        jobCancelled = p.jobId
        // A live executor cleans up itself; wait for it to finish.
        const until = Date.now() + (opts.waitMs ?? 30_000)
        for (;;) {
          const j = await getJob(c, p.jobId)
          if (!j || !['running', 'pending'].includes(j.status)) break
          if (j.lease_expires_at && j.lease_expires_at.getTime() < Date.now()) break // its executor is gone
          if (deadDirectRun(j.lease_owner)) {
            log(`the process running job ${p.jobId} is gone; cleaning up in its place`)
            break
          }
          if (Date.now() > until) {
            log(`job ${p.jobId} did not stop within ${Math.round((opts.waitMs ?? 30_000) / 1000)}s; cleaning up anyway`)
            break
          }
          await new Promise((res) => setTimeout(res, 250))
        }
      }
    }
    if (node.initState === 'reinitializing') {
      // A reinit created nothing: its tables stay in the subscription (PostgreSQL's table sync
      // goes on copying them); replication is kept. Only the state says the reinit did not finish.
      const now = (await requireNode(c, nodeId)).initState
      if (now !== 'failed') {
        await setInitState(c, nodeId, 'failed')
        await writeProgress(c, nodeId, {phase: 'failed', error_message: 'reinit cancelled by node cancel'}).catch(() => {})
      }
      return {nodeId, jobCancelled, subscriptionDropped: false, slotDropped: false, publicationDropped: false, tablesDropped: 0, objectsDropped: 0, state: 'failed'}
    }
    // Whatever is still there (an executor that was killed cleaned nothing).
    const names = p?.sourceNode ? initNames(nodeId, p.sourceNode) : null
    const created = ((await c.query(`SELECT created_tables FROM steep_repl.init_progress WHERE node_id = $1`, [nodeId])).rows[0]?.created_tables ?? []) as Array<{schema: string; name: string; drop?: string}>
    let src: pg.Client | null = null
    if (source) {
      src = await openClient(source, {applicationName: 'steep-repl node cancel'})
      src.on('error', () => {})
    } else if (names) log('no --source given: the slot and publication on the source are left; drop them there or run node cancel again with --source')
    try {
      const r = await cleanupInit(c, src, {subscription: p?.subscription ?? names?.subscription ?? null, slot: p?.slot ?? names?.slot ?? null, publication: p?.publication ?? names?.publication ?? null, tables: created})
      await c.query(`DELETE FROM steep_repl.init_slots WHERE slot_name = $1`, [p?.slot ?? names?.slot ?? '']).catch(() => {})
      const now = (await requireNode(c, nodeId)).initState
      if (now !== 'failed') await setInitState(c, nodeId, 'failed')
      if (p) await writeProgress(c, nodeId, {phase: 'failed', error_message: p.error ?? 'cancelled by node cancel', created_tables: null})
      return {nodeId, jobCancelled, ...r, state: 'failed'}
    } finally {
      await src?.end().catch(() => {})
    }
  } finally {
    await c.end().catch(() => {})
  }
}

/**
 * Before attempt N > 1 of a node_init job: what an earlier attempt of the same job left when it was
 * lost (its executor killed or cut off, so it cleaned nothing) is removed as node cancel removes
 * it: the subscription, the slot and the publication on the source, the tables that attempt
 * created; the node goes to failed, from which the new attempt starts over. Only the job's own
 * leftovers: nothing happens when init_progress belongs to another job or the node is not in an
 * init state (a synchronized node stays as it is).
 */
export async function clearLostInitAttempt(
  target: ConnParams,
  source: ConnParams,
  nodeId: string,
  jobId: string,
  attempt: number,
  log: (m: string) => void = () => {},
): Promise<{cleared: boolean; slotDropped: boolean; publicationDropped: boolean; subscriptionDropped: boolean; tablesDropped: number}> {
  const none = {cleared: false, slotDropped: false, publicationDropped: false, subscriptionDropped: false, tablesDropped: 0}
  const c = await openClient(target, {applicationName: 'steep-repl node init'})
  c.on('error', () => {})
  try {
    const p = await readProgress(c, nodeId)
    if (!p || p.jobId !== jobId || !p.sourceNode) return none
    if (!['preparing', 'copying', 'catching_up', 'failed'].includes(p.state)) return none
    const names = initNames(nodeId, p.sourceNode)
    const created = ((await c.query(`SELECT created_tables FROM steep_repl.init_progress WHERE node_id = $1`, [nodeId])).rows[0]?.created_tables ?? []) as Array<{schema: string; name: string}>
    const src = await openClient(source, {applicationName: 'steep-repl node init'})
    src.on('error', () => {})
    try {
      const r = await cleanupInit(c, src, {subscription: p.subscription ?? names.subscription, slot: p.slot ?? names.slot, publication: p.publication ?? names.publication, tables: created})
      await c.query(`DELETE FROM steep_repl.init_slots WHERE slot_name = $1`, [p.slot ?? names.slot])
      if (p.state !== 'failed') await setInitState(c, nodeId, 'failed')
      const reason = `attempt ${attempt - 1} of job ${jobId} did not finish (phase ${p.phase}${p.error ? `: ${p.error}` : ''}); attempt ${attempt} starts over`
      await writeProgress(c, nodeId, {phase: 'failed', error_message: reason, created_tables: null})
      const what = [r.subscriptionDropped && `subscription ${p.subscription ?? names.subscription}`, r.slotDropped && `slot ${p.slot ?? names.slot}`, r.publicationDropped && `publication ${p.publication ?? names.publication}`, r.tablesDropped && `${r.tablesDropped} table(s) it created`].filter(Boolean)
      log(`${reason}: removed what it left${what.length ? `: ${what.join(', ')}` : ' (nothing was left)'}`)
      return {cleared: true, ...r}
    } finally {
      await src.end().catch(() => {})
    }
  } finally {
    await c.end().catch(() => {})
  }
}

export interface ReinitOptions {
  target: ConnParams
  source: ConnParams
  nodeId: string
  mode: {full: true} | {tables: string[]} | {schema: string}
  timeoutMs?: number
  signal?: AbortSignal
  log?: (m: string) => void
  /** Phases prepare, truncate, copy; one part per table (done when its table sync is ready). */
  reporter?: Reporter
  /** The job running this reinit (recorded in init_progress so node cancel can stop it). */
  jobId?: string
}

export interface ReinitResult {
  nodeId: string
  state: 'synchronized' | 'uninitialized'
  tables: string[]
  seconds: number
}

async function subscriptionOf(c: pg.Client, nodeId: string, sourceNode: string): Promise<{name: string; publication: string; slot: string}> {
  const p = await readProgress(c, nodeId)
  const names = initNames(nodeId, sourceNode)
  const name = p?.subscription ?? names.subscription
  const r = await c.query<{subpublications: string[]; subslotname: string}>(
    `SELECT subpublications, subslotname FROM pg_subscription WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [name],
  )
  if (!r.rows.length) throw new StateError(`node ${nodeId} has no subscription ${name} in this database`, {hint: 'Initialize it first: steep-repl node init.'})
  return {name, publication: r.rows[0]!.subpublications[0]!, slot: r.rows[0]!.subslotname}
}

/** TRUNCATE on a session with a replication origin, so origin = none subscribers ignore it. */
async function truncateWithOrigin(c: pg.Client, tables: Array<{schema: string; name: string}>): Promise<void> {
  if (!tables.length) return
  await c.query(`SELECT pg_replication_origin_create($1) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_origin WHERE roname = $1)`, [REINIT_ORIGIN])
  await c.query(`SELECT pg_replication_origin_session_setup($1)`, [REINIT_ORIGIN])
  try {
    await c.query(`TRUNCATE ${tables.map((t) => qualified(t)).join(', ')}`)
  } finally {
    await c.query(`SELECT pg_replication_origin_session_reset()`).catch(() => {})
  }
}

/**
 * Waits until the subscriber has confirmed (applied and flushed) the source's WAL up to lsn, read
 * from the slot's confirmed_flush_lsn. An idle subscriber confirms on its status interval
 * (wal_receiver_status_interval, 10 s by default), so this can take that long when nothing else moves.
 */
async function waitConfirmed(src: pg.Client, slot: string, lsn: string, signal: AbortSignal | undefined, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (signal?.aborted) throw new CancelledError('reinit cancelled')
    const r = await src.query<{ok: boolean | null; active: boolean}>(`SELECT confirmed_flush_lsn >= $2::pg_lsn AS ok, active FROM pg_replication_slots WHERE slot_name = $1`, [slot, lsn])
    if (!r.rows.length) throw new StateError(`replication slot ${slot} is gone from the source`)
    if (r.rows[0]!.ok) return
    if (Date.now() > deadline) {
      throw new TimeoutError(`the subscriber did not confirm the source's WAL up to ${lsn} through slot ${slot} in time${r.rows[0]!.active ? '' : ' (the slot is not in use: is the subscription enabled and its apply worker running?)'}`)
    }
    await new Promise((res) => setTimeout(res, 100))
  }
}

/** pg_stat_subscription_stats.sync_error_count (PostgreSQL 15+) of the subscription in this database. */
async function syncErrorCount(c: pg.Client, subscription: string): Promise<number> {
  const r = await c.query<{n: string}>(
    `SELECT coalesce(sum(st.sync_error_count), 0)::text AS n FROM pg_stat_subscription_stats st JOIN pg_subscription s ON s.oid = st.subid
      WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [subscription],
  )
  return Number(r.rows[0]!.n)
}

export async function reinitNode(o: ReinitOptions): Promise<ReinitResult> {
  const started = Date.now()
  const log = o.log ?? (() => {})
  const rep = o.reporter
  const c = await openClient(o.target, {applicationName: 'steep-repl node reinit'})
  c.on('error', () => {})
  const src = await openClient(o.source, {applicationName: 'steep-repl node reinit'})
  src.on('error', () => {})
  let touched = false
  let putBack: (() => Promise<void>) | null = null
  try {
    rep?.phase('prepare')
    const node = await requireNode(c, o.nodeId)
    if (!['synchronized', 'diverged', 'failed'].includes(node.initState)) throw new StateError(`node ${o.nodeId} is ${node.initState}; reinit needs a synchronized, diverged or failed node`)
    if (!node.initSourceNode) throw new StateError(`node ${o.nodeId} has no init source recorded`, {hint: 'Initialize it with steep-repl node init.'})
    const sub = await subscriptionOf(c, o.nodeId, node.initSourceNode)
    // The tables: as named, or all of the publication's tables in the schema, or all of them.
    const pubTables = (await src.query<{schemaname: string; tablename: string}>(`SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1, 2`, [sub.publication])).rows.map((r) => ({
      schema: r.schemaname,
      name: r.tablename,
    }))
    let tables: Array<{schema: string; name: string}>
    if ('full' in o.mode) tables = pubTables
    else if ('schema' in o.mode) {
      const schema = o.mode.schema
      tables = pubTables.filter((t) => t.schema === schema)
      if (!tables.length) throw new UsageError(`no published tables found in schema ${schema}`)
    } else {
      tables = o.mode.tables.map((t) => parseQualifiedName(t))
      const known = new Set(pubTables.map((t) => `${t.schema}.${t.name}`))
      const missing = tables.filter((t) => !known.has(`${t.schema}.${t.name}`))
      if (missing.length) throw new UsageError(`not replicated through ${sub.publication}: ${missing.map((t) => `${t.schema}.${t.name}`).join(', ')}`)
    }
    const names = tables.map((t) => `${t.schema}.${t.name}`)
    // TRUNCATE refuses a table another table references by a foreign key; find that out before
    // anything is touched, not after the tables left the publication.
    if (!('full' in o.mode)) {
      const refs = await c.query<{referencing: string; referenced: string}>(
        `SELECT DISTINCT format('%I.%I', rn.nspname, r.relname) AS referencing, format('%I.%I', dn.nspname, d.relname) AS referenced
           FROM pg_constraint f
           JOIN pg_class r ON r.oid = f.conrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace
           JOIN pg_class d ON d.oid = f.confrelid JOIN pg_namespace dn ON dn.oid = d.relnamespace
          WHERE f.contype = 'f' AND f.confrelid = ANY ($1::regclass[]) AND NOT f.conrelid = ANY ($1::regclass[]) ORDER BY 1, 2`,
        [tables.map((t) => qualified(t))],
      )
      if (refs.rows.length) {
        throw new UsageError(`cannot reinit ${[...new Set(refs.rows.map((r) => r.referenced))].join(', ')} alone: ${refs.rows.map((r) => `${r.referencing} references ${r.referenced}`).join('; ')}`, {
          hint: `Reinit them together: --tables ${[...names, ...new Set(refs.rows.map((r) => r.referencing))].join(',')}`,
        })
      }
    }

    if ('full' in o.mode) {
      // Full: replication goes away, the tables are emptied, the node starts over.
      await setInitState(c, o.nodeId, 'uninitialized')
      touched = true
      await dropSubscriptionKeepSlot(c, sub.name)
      await dropSlotAndPublication(src, sub.slot, sub.publication)
      rep?.phase('truncate', `${tables.length} tables`)
      await truncateWithOrigin(c, tables)
      await c.query(`DELETE FROM steep_repl.init_progress WHERE node_id = $1`, [o.nodeId])
      rep?.phase('done')
      log(`node ${o.nodeId} is uninitialized; start again with: steep-repl node init ${o.nodeId} --from ${node.initSourceNode} --schema-sync auto ...`)
      return {nodeId: o.nodeId, state: 'uninitialized', tables: names, seconds: (Date.now() - started) / 1000}
    }

    await setInitState(c, o.nodeId, 'reinitializing')
    touched = true
    await writeProgress(c, o.nodeId, {phase: 'copying', tables_total: tables.length, tables_completed: 0, overall_percent: 0, error_message: null, job_id: o.jobId ?? null}).catch(() => {})
    const sizes = new Map(
      (
        await src.query<{k: string; b: string}>(`SELECT x AS k, pg_relation_size(to_regclass(x))::text AS b FROM unnest($1::text[]) x`, [tables.map((t) => qualified(t))])
      ).rows.map((r) => [r.k, Number(r.b ?? 0)]),
    )
    const list = tables.map((t) => qualified(t)).join(', ')
    const subId = pg.escapeIdentifier(sub.name)
    const pubId = pg.escapeIdentifier(sub.publication)
    // 1. Out of the publication and the subscription: their changes stop flowing.
    await src.query(`ALTER PUBLICATION ${pubId} DROP TABLE ${list}`)
    putBack = async () => {
      // A failure before step 3: the tables go back into the publication (not re-copied; the node
      // is failed), so a second reinit finds them where it expects them.
      await src.query(`ALTER PUBLICATION ${pubId} ADD TABLE ${list}`)
      await c.query(`ALTER SUBSCRIPTION ${subId} REFRESH PUBLICATION WITH (copy_data = false)`)
    }
    await c.query(`ALTER SUBSCRIPTION ${subId} REFRESH PUBLICATION WITH (copy_data = false)`)
    // Changes committed before the DROP are still on their way, and the apply worker keeps applying
    // them: it caches a table's ready state and does not re-read it when the table leaves the
    // subscription. A row it applied after the truncate below would make table sync's COPY fail on
    // a duplicate key, again and again. So the truncate waits until the subscriber has confirmed
    // everything up to the DROP: up to the end of the WAL inserted so far (walEndSql), since an
    // asynchronously committed change, and the DROP's own commit, can lie past the written position.
    const dropLsn = (await src.query<{l: string}>(`SELECT ${walEndSql()}::text AS l`)).rows[0]!.l
    await flushWal(src)
    await waitConfirmed(src, sub.slot, dropLsn, o.signal, Math.min(o.timeoutMs ?? 10 * 60_000, 5 * 60_000))
    // 2. Emptied with an origin set.
    rep?.phase('truncate', `${tables.length} tables`)
    await truncateWithOrigin(c, tables)
    // 3. Back in: table sync copies each and catches it up to the stream.
    await src.query(`ALTER PUBLICATION ${pubId} ADD TABLE ${list}`)
    putBack = null
    const syncErrors = () => syncErrorCount(c, sub.name)
    const errorsBefore = await syncErrors()
    await c.query(`ALTER SUBSCRIPTION ${subId} REFRESH PUBLICATION WITH (copy_data = true)`)
    const total = [...sizes.values()].reduce((a, b) => a + b, 0)
    rep?.phase('copy', `${tables.length} tables through table synchronization`, {bytes: total, items: tables.length})
    for (const t of tables) rep?.part({id: qualified(t), label: `${t.schema}.${t.name}`, state: 'start', bytes: 0, rows: 0, estBytes: sizes.get(qualified(t)) ?? 0})
    const reported = new Set<string>()
    const deadline = Date.now() + (o.timeoutMs ?? 10 * 60_000)
    for (;;) {
      if (o.signal?.aborted) throw new CancelledError('reinit cancelled')
      const r = await c.query<{k: string}>(
        `SELECT x AS k FROM unnest($2::text[]) x JOIN pg_subscription_rel sr ON sr.srrelid = to_regclass(x) AND sr.srsubstate = 'r'
           JOIN pg_subscription s ON s.oid = sr.srsubid
          WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        [sub.name, tables.map((t) => qualified(t))],
      )
      for (const {k} of r.rows) {
        if (reported.has(k)) continue
        reported.add(k)
        const b = sizes.get(k) ?? 0
        rep?.part({id: k, label: k, state: 'done', bytes: b, rows: 0, estBytes: b})
      }
      const ready = r.rows.length
      await writeProgress(c, o.nodeId, {tables_completed: ready, overall_percent: (ready / tables.length) * 100}).catch(() => {})
      if (ready >= tables.length) break
      // A table sync that keeps failing (PostgreSQL retries it every wal_retrieve_retry_interval)
      // will not heal by waiting: say so instead of waiting out the deadline.
      const failures = (await syncErrors()) - errorsBefore
      if (failures >= 3) {
        throw new SteepError(`table synchronization failed ${failures} times for ${tables.length - ready} of ${tables.length} tables`, {
          hint: "The target server's log has PostgreSQL's reason (look for \"logical replication table synchronization worker\"). Fix it, then run node reinit again.",
        })
      }
      if (Date.now() > deadline) throw new TimeoutError(`${tables.length - ready} of ${tables.length} tables were not synchronized in time`)
      await new Promise((res) => setTimeout(res, 250))
    }
    await setInitState(c, o.nodeId, 'synchronized', {completed: true})
    await writeProgress(c, o.nodeId, {phase: 'complete', overall_percent: 100, tables_completed: tables.length}).catch(() => {})
    rep?.phase('done')
    return {nodeId: o.nodeId, state: 'synchronized', tables: names, seconds: Math.round((Date.now() - started) / 100) / 10}
  } catch (err) {
    if (putBack) await putBack().catch((e: Error) => log(`could not put the tables back into the publication: ${redact(e.message)}`))
    if (touched) {
      await setInitState(c, o.nodeId, 'failed').catch(() => {})
      const reason = o.signal?.aborted ? `cancelled: ${(err as Error).message}` : (err as Error).message
      await writeProgress(c, o.nodeId, {phase: 'failed', error_message: redact(reason)}).catch(() => {})
    }
    throw err
  } finally {
    await src.end().catch(() => {})
    await c.end().catch(() => {})
  }
}
