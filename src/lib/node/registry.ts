// The node registry in steep_repl.nodes of one database, through the SQL API of migration 006
// (register_node, heartbeat, node_status), plus that database's own replication state
// (subscriptions, slots, lag) for `node status`.

import pg from 'pg'
import {StateError, UsageError} from '../errors.js'
import {install} from '../install/migrations.js'
import {type InitState, NODE_ID_RE, sanitizeName} from './state.js'

export interface NodeRow {
  nodeId: string
  name: string
  host: string
  port: number
  priority: number
  status: string
  initState: InitState
  initSourceNode: string | null
  lastSeen: string | null
  secondsSinceSeen: number | null
  isHealthy: boolean
}

export function checkNodeId(id: string, flag = 'node id'): string {
  if (!NODE_ID_RE.test(id)) throw new UsageError(`invalid ${flag} "${id}": use 1 to 63 letters, digits, '_', '.' or '-'`)
  return id
}

/** Installs (or upgrades) the steep_repl schema when needed: the registry lives there. */
export async function ensureRegistry(c: pg.Client): Promise<void> {
  await install(c)
}

interface StatusRow {
  node_id: string
  node_name: string
  host: string
  port: number
  priority: number
  status: string
  init_state: InitState
  init_source_node: string | null
  last_seen: Date | null
  seconds_since_seen: number | null
  is_healthy: boolean
}

const toNode = (r: StatusRow): NodeRow => ({
  nodeId: r.node_id,
  name: r.node_name,
  host: r.host,
  port: r.port,
  priority: r.priority,
  status: r.status,
  initState: r.init_state,
  initSourceNode: r.init_source_node,
  lastSeen: r.last_seen ? r.last_seen.toISOString() : null,
  secondsSinceSeen: r.seconds_since_seen === null ? null : Math.round(r.seconds_since_seen * 10) / 10,
  isHealthy: r.is_healthy,
})

export interface RegisterInput {
  nodeId: string
  name?: string
  host: string
  port: number
  priority: number
}

export async function registerNode(c: pg.Client, n: RegisterInput): Promise<NodeRow> {
  checkNodeId(n.nodeId)
  if (!n.host) throw new UsageError('--host must not be empty')
  if (!Number.isInteger(n.port) || n.port < 1 || n.port > 65535) throw new UsageError('--port must be between 1 and 65535')
  if (!Number.isInteger(n.priority) || n.priority < 1 || n.priority > 100) throw new UsageError('priority must be between 1 and 100')
  await c.query(`SELECT steep_repl.register_node($1, $2, $3, $4, $5)`, [n.nodeId, n.name ?? n.nodeId, n.host, n.port, n.priority])
  return (await getNode(c, n.nodeId))!
}

export async function listNodes(c: pg.Client, maxAgeSeconds = 30): Promise<NodeRow[]> {
  const r = await c.query<StatusRow>(`SELECT * FROM steep_repl.node_status(NULL, make_interval(secs => $1))`, [maxAgeSeconds])
  return r.rows.map(toNode)
}

export async function getNode(c: pg.Client, id: string, maxAgeSeconds = 30): Promise<NodeRow | undefined> {
  const r = await c.query<StatusRow>(`SELECT * FROM steep_repl.node_status($1, make_interval(secs => $2))`, [id, maxAgeSeconds])
  return r.rows[0] ? toNode(r.rows[0]) : undefined
}

export async function requireNode(c: pg.Client, id: string): Promise<NodeRow> {
  const n = await getNode(c, id)
  if (!n) throw new StateError(`node ${id} is not registered in this database`, {hint: `Register it first: steep-repl node register ${id} --host HOST --port PORT -d ...`})
  return n
}

export async function heartbeat(c: pg.Client, id: string): Promise<string> {
  try {
    const r = await c.query<{t: Date}>(`SELECT steep_repl.heartbeat($1) AS t`, [id])
    return r.rows[0]!.t.toISOString()
  } catch (err) {
    if ((err as {code?: string}).code === 'P0002') throw new StateError(`node ${id} is not registered in this database`, {hint: `steep-repl node register ${id} --host HOST`})
    throw err
  }
}

/**
 * Moves a node's init_state; the trigger refuses transitions the state machine does not allow and
 * this turns that into a StateError.
 */
export async function setInitState(c: pg.Client, id: string, to: InitState, extra: {sourceNode?: string | null; started?: boolean; completed?: boolean} = {}): Promise<void> {
  try {
    const r = await c.query(
      `UPDATE steep_repl.nodes SET init_state = $2,
         init_source_node = CASE WHEN $3::boolean THEN $4 ELSE init_source_node END,
         init_started_at = CASE WHEN $5::boolean THEN now() ELSE init_started_at END,
         init_completed_at = CASE WHEN $6::boolean THEN now() WHEN $5::boolean THEN NULL ELSE init_completed_at END
       WHERE node_id = $1`,
      [id, to, extra.sourceNode !== undefined, extra.sourceNode ?? null, Boolean(extra.started), Boolean(extra.completed)],
    )
    if (r.rowCount === 0) throw new StateError(`node ${id} is not registered in this database`)
  } catch (err) {
    if ((err as {code?: string}).code === '23514' && /invalid state transition/.test((err as Error).message)) {
      throw new StateError((err as Error).message, {hint: 'steep-repl node status shows the current state; a failed node can be initialized again.'})
    }
    throw err
  }
}

export interface ReplicationState {
  subscriptions: Array<{name: string; enabled: boolean; slot: string | null; publications: string[]; receivedLsn: string | null; latestEndLsn: string | null; lagSeconds: number | null}>
  slots: Array<{name: string; plugin: string | null; active: boolean; lagBytes: number | null; walStatus: string | null}>
}

/** The replication state of the connected database: its subscriptions and the slots of its server for it. */
export async function replicationState(c: pg.Client): Promise<ReplicationState> {
  const subs = await c.query(
    `SELECT s.subname, s.subenabled, s.subslotname, s.subpublications,
            st.received_lsn::text, st.latest_end_lsn::text,
            extract(epoch FROM clock_timestamp() - st.last_msg_receipt_time)::float8 AS lag_seconds
       FROM pg_subscription s
       LEFT JOIN pg_stat_subscription st ON st.subid = s.oid AND st.relid IS NULL
      WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      ORDER BY s.subname`,
  )
  const slots = await c.query(
    `SELECT slot_name, plugin, active, wal_status,
            CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), coalesce(confirmed_flush_lsn, restart_lsn))::float8 END AS lag_bytes
       FROM pg_replication_slots WHERE database = current_database() OR database IS NULL ORDER BY slot_name`,
  )
  return {
    subscriptions: subs.rows.map((r) => ({
      name: r.subname,
      enabled: r.subenabled,
      slot: r.subslotname,
      publications: r.subpublications,
      receivedLsn: r.received_lsn,
      latestEndLsn: r.latest_end_lsn,
      lagSeconds: r.lag_seconds === null ? null : Math.round(r.lag_seconds * 10) / 10,
    })),
    slots: slots.rows.map((r) => ({name: r.slot_name, plugin: r.plugin, active: r.active, lagBytes: r.lag_bytes === null ? null : Number(r.lag_bytes), walStatus: r.wal_status})),
  }
}

/**
 * Removes a node. Refused while it is the source of another node's init or of a subscription in
 * this database, unless force (which detaches those references; subscriptions stay: drop them
 * with DROP SUBSCRIPTION if they must go).
 */
export async function removeNode(c: pg.Client, id: string, force: boolean): Promise<{removed: boolean; detached: string[]; subscriptions: string[]}> {
  await requireNode(c, id)
  const dependents = (await c.query<{node_id: string}>(`SELECT node_id FROM steep_repl.nodes WHERE init_source_node = $1 AND node_id <> $1 ORDER BY node_id`, [id])).rows.map((r) => r.node_id)
  const subs = (
    await c.query<{subname: string}>(`SELECT subname FROM pg_subscription WHERE subname LIKE $1 ESCAPE '\\' AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY subname`, [
      `steep\\_sub\\_%\\_from\\_${sanitizeName(id).replace(/_/g, '\\_')}`,
    ])
  ).rows.map((r) => r.subname)
  if ((dependents.length || subs.length) && !force) {
    const what = [dependents.length ? `node(s) ${dependents.join(', ')} were initialized from it` : '', subs.length ? `subscription(s) ${subs.join(', ')} replicate from it` : '']
      .filter(Boolean)
      .join('; ')
    throw new StateError(`node ${id} is a replication source: ${what}`, {hint: 'Remove those first, or pass --force to remove the node anyway.'})
  }
  await c.query('BEGIN')
  try {
    await c.query(`UPDATE steep_repl.nodes SET init_source_node = NULL WHERE init_source_node = $1`, [id])
    const r = await c.query(`DELETE FROM steep_repl.nodes WHERE node_id = $1`, [id])
    await c.query('COMMIT')
    return {removed: (r.rowCount ?? 0) > 0, detached: dependents, subscriptions: subs}
  } catch (err) {
    await c.query('ROLLBACK').catch(() => {})
    throw err
  }
}
