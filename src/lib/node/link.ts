// node link: the reverse direction of an initialized pair, for bidirectional replication. On the
// target (which replicates from the source), a publication of the same tables and a logical slot;
// on the source, a subscription to it with copy_data = false and origin = none, so each side
// applies only the other's own changes and nothing loops. Needs PostgreSQL 16+ on both sides
// (origin = none), matching schemas and the forward direction caught up.

import pg from 'pg'
import {openClient} from '../connection/connect.js'
import type {ConnParams} from '../connection/resolve.js'
import {SchemaMismatchError, StateError, TimeoutError} from '../errors.js'
import {compareNodes} from '../schema/index.js'
import {createSubscription, dropSubscriptionKeepSlot} from '../snapshot/apply.js'
import {createPublication} from '../snapshot/source.js'
import {dropSlotAndPublication} from '../snapshot/cleanup.js'
import {waitForCatchUp} from './catch-up.js'
import {requireNode} from './registry.js'
import {schemaFindings} from './schema-sync.js'
import {DEFAULT_MAX_LAG_BYTES, initNames} from './state.js'

export interface LinkResult {
  nodeId: string
  peerId: string
  publication: string
  slot: string
  subscription: string
  tables: number
}

const serverVersion = async (c: pg.Client) => (await c.query<{n: number}>(`SELECT current_setting('server_version_num')::int AS n`)).rows[0]!.n

export async function linkNodes(o: {
  target: ConnParams
  source: ConnParams
  nodeId: string
  peerId: string
  maxLagBytes?: number
  /** How long to wait for the forward direction to catch up before refusing (default 60 s). */
  catchupTimeoutMs?: number
  signal?: AbortSignal
}): Promise<LinkResult> {
  const t = await openClient(o.target, {applicationName: 'steep-repl node link'})
  t.on('error', () => {})
  const s = await openClient(o.source, {applicationName: 'steep-repl node link'})
  s.on('error', () => {})
  const forward = initNames(o.nodeId, o.peerId)
  const reverse = initNames(o.peerId, o.nodeId)
  let pubCreated = false
  let slotCreated = false
  try {
    const node = await requireNode(t, o.nodeId)
    if (node.initState !== 'synchronized' || node.initSourceNode !== o.peerId) {
      throw new StateError(`node ${o.nodeId} is ${node.initState}${node.initSourceNode ? ` from ${node.initSourceNode}` : ''}; link needs it synchronized from ${o.peerId}`, {hint: `steep-repl node init ${o.nodeId} --from ${o.peerId} first.`})
    }
    for (const [c, who] of [[t, o.nodeId], [s, o.peerId]] as const) {
      if ((await serverVersion(c)) < 160000) throw new StateError(`node ${who} runs PostgreSQL older than 16: without origin = none a bidirectional link would loop changes`, {hint: 'Upgrade both nodes to PostgreSQL 16 or later.'})
    }
    const fwdPub = (await s.query<{schemaname: string; tablename: string}>(`SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1, 2`, [forward.publication])).rows
    if (!fwdPub.length) throw new StateError(`publication ${forward.publication} is missing on ${o.peerId}`)
    const tables = fwdPub.map((r) => ({schema: r.schemaname, name: r.tablename}))
    const report = await compareNodes(s, t, {labelA: o.peerId, labelB: o.nodeId})
    // What schema compare reports as blocking for the replicated tables refuses the link.
    const findings = schemaFindings(report, tables)
    if (findings.blocking.length) {
      throw new SchemaMismatchError(`the nodes' schemas differ (${findings.blocking.length}): ${findings.blocking.slice(0, 10).join('; ')}; a link would break replication`, {
        hint: 'steep-repl schema compare --node-a SOURCE --node-b TARGET shows them.',
      })
    }
    if (!(await s.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [forward.slot])).rows.length) throw new StateError(`slot ${forward.slot} is missing on ${o.peerId}`)
    // The forward direction first applies what the peer has committed (a moment's lag on a busy
    // peer is waited out, not refused): changes made on the node before the reverse slot exists
    // are not sent back.
    const timeoutMs = o.catchupTimeoutMs ?? 60_000
    await waitForCatchUp(t, s, forward.slot, forward.subscription, o.maxLagBytes ?? DEFAULT_MAX_LAG_BYTES, timeoutMs, o.signal).catch((err) => {
      if (err instanceof TimeoutError) throw new TimeoutError(`${o.nodeId} has not caught up with ${o.peerId} within ${Math.round(timeoutMs / 1000)}s: ${err.message}`, {hint: 'Link when replication has caught up (steep-repl node status shows the lag).'})
      throw err
    })
    for (const [q, name] of [
      [`SELECT 1 FROM pg_publication WHERE pubname = $1`, reverse.publication],
      [`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, reverse.slot],
    ] as const) {
      if ((await t.query(q, [name])).rows.length) throw new StateError(`${name} already exists on ${o.nodeId}: the nodes are already linked`)
    }
    // The reverse publication and its slot on the target, then the subscription on the source.
    await createPublication(t, reverse.publication, tables)
    pubCreated = true
    await t.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [reverse.slot])
    slotCreated = true
    await createSubscription(s, {name: reverse.subscription, source: o.target, publication: reverse.publication, slot: reverse.slot})
    return {nodeId: o.nodeId, peerId: o.peerId, publication: reverse.publication, slot: reverse.slot, subscription: reverse.subscription, tables: tables.length}
  } catch (err) {
    await dropSubscriptionKeepSlot(s, reverse.subscription).catch(() => {})
    if (pubCreated || slotCreated) await dropSlotAndPublication(t, slotCreated ? reverse.slot : null, pubCreated ? reverse.publication : null).catch(() => {})
    throw err
  } finally {
    await s.end().catch(() => {})
    await t.end().catch(() => {})
  }
}
