// The consistent read side of a snapshot: a replication connection creates a logical slot that
// exports a snapshot, and every worker connection imports that snapshot, so schema, rows and
// sequences are all read as of the slot's consistent LSN. The publication is created before the
// slot: pgoutput resolves publications with the catalog as of each change, so one created after the
// slot would be missing for the first changes.

import pg from 'pg'
import {openClient} from '../connection/connect.js'
import type {ConnParams} from '../connection/resolve.js'
import {UsageError} from '../errors.js'

export const SLOT_NAME_RE = /^[a-z0-9_]{1,63}$/

export function checkSlotName(name: string): string {
  if (!SLOT_NAME_RE.test(name)) {
    throw new UsageError(`invalid slot name "${name}": use 1 to 63 lower-case letters, digits and underscores`)
  }
  return name
}

export interface ExportedSlot {
  /** The replication connection: it must stay open (and idle) until every worker imported the snapshot. */
  conn: pg.Client
  slotName: string
  lsn: string
  snapshotName: string
  temporary: boolean
  /** The server's system identifier (IDENTIFY_SYSTEM: needs no privilege beyond REPLICATION). */
  systemId: string
}

/** A replication connection (replication=database) for exportSlotOn. */
export async function openReplicationConnection(params: ConnParams): Promise<pg.Client> {
  const conn = await openClient(params, {replication: true, applicationName: 'steep-repl snapshot'})
  conn.on('error', () => {})
  return conn
}

/**
 * CREATE_REPLICATION_SLOT … LOGICAL pgoutput (SNAPSHOT 'export') on an open replication connection
 * (the caller closes it, also on failure). temporary: the slot disappears with the connection.
 */
export async function exportSlotOn(conn: pg.Client, slotName: string, temporary: boolean): Promise<ExportedSlot> {
  checkSlotName(slotName)
  const ident = await conn.query('IDENTIFY_SYSTEM')
  const systemId = String((ident.rows[0] as {systemid: string}).systemid)
  // Slot names are validated above: the replication protocol's commands take no parameters.
  const res = await conn.query(`CREATE_REPLICATION_SLOT ${slotName}${temporary ? ' TEMPORARY' : ''} LOGICAL pgoutput (SNAPSHOT 'export')`)
  const row = res.rows[0] as {slot_name: string; consistent_point: string; snapshot_name: string}
  return {conn, slotName: row.slot_name, lsn: row.consistent_point, snapshotName: row.snapshot_name, temporary, systemId}
}

/** openReplicationConnection and exportSlotOn; the connection is closed if the slot is not made. */
export async function createExportedSlot(params: ConnParams, slotName: string, temporary: boolean): Promise<ExportedSlot> {
  checkSlotName(slotName)
  const conn = await openReplicationConnection(params)
  try {
    return await exportSlotOn(conn, slotName, temporary)
  } catch (err) {
    await conn.end().catch(() => {})
    throw err
  }
}

const SNAPSHOT_NAME_RE = /^[0-9A-F]+-[0-9A-F]+(-[0-9A-F]+)?$/i

/** Starts a read-only repeatable-read transaction on client that sees exactly the exported snapshot. */
export async function importSnapshot(client: pg.Client, snapshotName: string): Promise<void> {
  if (!SNAPSHOT_NAME_RE.test(snapshotName)) throw new Error(`unexpected snapshot name ${snapshotName}`)
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
  // SET TRANSACTION SNAPSHOT takes no parameters; the name is validated above.
  await client.query(`SET TRANSACTION SNAPSHOT '${snapshotName}'`)
}

/**
 * A connection with prepareSession's settings and its background errors ignored (the next query
 * reports them). Closed again when the settings fail: the caller owns only a client it got.
 */
export async function openSession(params: ConnParams, applicationName: string): Promise<pg.Client> {
  const c = await openClient(params, {applicationName, directRead: true})
  c.on('error', () => {})
  try {
    await prepareSession(c)
  } catch (err) {
    await c.end().catch(() => {})
    throw err
  }
  return c
}

/** Session settings for every snapshot connection: no statement timeout, UTC, ISO dates, exact floats. */
export async function prepareSession(client: pg.Client): Promise<void> {
  await client.query(`SET statement_timeout = 0; SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0;
    SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 3;
    SET bytea_output = 'hex'; SET client_encoding = 'UTF8'`)
}


/** CREATE PUBLICATION for exactly these tables (partitions published through their root). */
export async function createPublication(
  client: pg.Client,
  name: string,
  tables: Array<{schema: string; name: string}>,
): Promise<void> {
  const list = tables.map((t) => `${pg.escapeIdentifier(t.schema)}.${pg.escapeIdentifier(t.name)}`).join(', ')
  // An empty selection makes an empty publication, never FOR ALL TABLES.
  const target = tables.length ? `FOR TABLE ${list}` : ''
  await client.query(`CREATE PUBLICATION ${pg.escapeIdentifier(name)} ${target} WITH (publish_via_partition_root = true)`)
}
