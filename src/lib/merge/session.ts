// A merge's connection to one node: identical session settings on both nodes (every setting that
// changes the text output of a value the row hash reads), a count of the bytes the CLI received,
// and the server facts the merge checks (encoding, version).

import type pg from 'pg'
import {openClient} from '../connection/connect.js'
import {type ConnParams, describeConnection} from '../connection/resolve.js'

/**
 * Settings applied on both nodes before anything is hashed or copied. TimeZone and DateStyle fix
 * timestamptz/date output, IntervalStyle intervals, extra_float_digits exact floats, bytea_output
 * bytea, lc_monetary money; search_path is emptied so that nothing resolves to a user object; work_mem lets the block
 * aggregation stay in memory.
 */
export const SESSION_SETTINGS: Array<[string, string]> = [
  ['TimeZone', 'UTC'],
  ['DateStyle', 'ISO, YMD'],
  ['IntervalStyle', 'postgres'],
  ['extra_float_digits', '3'],
  ['bytea_output', 'hex'],
  ['lc_monetary', 'C'],
  ['xmloption', 'content'],
  ['search_path', 'pg_catalog'],
  ['statement_timeout', '0'],
  ['work_mem', '64MB'],
  ['lock_timeout', '30s'],
  ['idle_in_transaction_session_timeout', '0'],
]

export type NodeLabel = 'A' | 'B'

export interface NodeSession {
  label: NodeLabel
  conn: ConnParams
  client: pg.Client
  /** Bytes received from the server since the session opened. */
  bytesReceived(): number
  serverVersionNum: number
  encoding: string
  /** Server start time and database: equal on both sides only when both point at one database. */
  identity: string
  /** The role's own search_path, restored while writing so user triggers resolve names as usual. */
  userSearchPath: string
  describe: string
  close(): Promise<void>
}

export async function openNodeSession(label: NodeLabel, conn: ConnParams): Promise<NodeSession> {
  const client = await openClient(conn, {applicationName: 'steep-repl merge'})
  client.on('error', () => {})
  let received = 0
  // node-postgres keeps its socket on client.connection.stream (a TLS socket under TLS).
  const stream = (client as unknown as {connection?: {stream?: NodeJS.EventEmitter}}).connection?.stream
  stream?.on('data', (b: Buffer) => {
    received += b.length
  })
  try {
    const sp = await client.query<{sp: string}>(`SELECT current_setting('search_path') AS sp`)
    // One round trip for all of them, in order.
    await client.query('SELECT set_config(n, v, false) FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS s(n, v, o) ORDER BY o', [SESSION_SETTINGS.map(([n]) => n), SESSION_SETTINGS.map(([, v]) => v)])
    const {rows} = await client.query<{v: string; enc: string; id: string}>(`SELECT current_setting('server_version_num') AS v, pg_encoding_to_char(encoding) AS enc,
              pg_postmaster_start_time()::text || ' ' || current_database() AS id FROM pg_database WHERE datname = current_database()`)
    return {
      label,
      conn,
      client,
      bytesReceived: () => received,
      serverVersionNum: Number(rows[0]!.v),
      encoding: rows[0]!.enc,
      userSearchPath: sp.rows[0]!.sp,
      identity: rows[0]!.id,
      describe: describeConnection(conn),
      close: async () => {
        await client.end().catch(() => {})
      },
    }
  } catch (err) {
    await client.end().catch(() => {})
    throw err
  }
}
