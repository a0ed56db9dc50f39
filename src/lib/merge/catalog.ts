// Catalog facts a merge reads from a node: the tables' columns and primary keys, foreign keys
// between them, whether replication is configured, who is writing, and the merge tables of the
// steep_repl schema. Read with the merge session's settings (search_path = pg_catalog, so
// format_type qualifies every user type and the names are comparable between nodes).

import type pg from 'pg'
import type {FkEdge} from './fk-order.js'
import type {ColumnFacts, TableFacts} from './preflight.js'
import type {TableName} from './tables.js'

interface Row {
  schema: string
  name: string
  kind: 'r' | 'p'
  est: string
  columns: Array<{name: string; type: string; generated: boolean; builtin: boolean; oid: number; send: string}>
  key: string[] | null
}

/** Facts of each table (null when it does not exist or is not a table), in the given order. */
export async function loadTables(client: pg.Client, tables: TableName[]): Promise<Array<TableFacts | null>> {
  const {rows} = await client.query<Row>(
    `SELECT n.nspname::text AS schema, c.relname::text AS name, c.relkind::text AS kind, c.reltuples::int8::text AS est,
            (SELECT coalesce(jsonb_agg(jsonb_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod), 'generated', a.attgenerated <> '', 'builtin', a.atttypid < 16384 AND ty.typsend::oid <> 0,
                                               'oid', a.atttypid, 'send', ty.typsend::regproc::text) ORDER BY a.attnum), '[]')
               FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
            (SELECT array_agg(a.attname::text ORDER BY k.ord)
               FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE i.indrelid = c.oid AND i.indisprimary) AS key
       FROM unnest($1::text[], $2::text[]) AS w(schema, name)
       JOIN pg_namespace n ON n.nspname = w.schema
       JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = w.name AND c.relkind IN ('r', 'p')`,
    [tables.map((t) => t.schema), tables.map((t) => t.name)],
  )
  return tables.map((t) => {
    const r = rows.find((x) => x.schema === t.schema && x.name === t.name)
    if (!r) return null
    const columns: ColumnFacts[] = r.columns.map((c) => ({name: c.name, type: c.type, generated: c.generated, builtin: c.builtin, typeOid: c.oid, send: c.send}))
    return {schema: r.schema, name: r.name, kind: r.kind, columns, key: r.key ?? [], estRows: Number(r.est)}
  })
}

/** Estimated rows when the planner has none (never analysed): the heap size over 100 bytes a row. */
export async function estimateRows(client: pg.Client, t: TableName): Promise<number> {
  const {rows} = await client.query<{n: string}>(
    `SELECT (coalesce(sum(pg_relation_size(c.oid)), 0) / 100)::int8::text AS n
       FROM pg_class c WHERE c.oid = $1::regclass OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = $1::regclass)`,
    [`${quote(t.schema)}.${quote(t.name)}`],
  )
  return Number(rows[0]?.n ?? 0)
}

const quote = (s: string) => `"${s.replace(/"/g, '""')}"`

/** Foreign keys between the given tables (parent = referenced table). */
export async function loadForeignKeys(client: pg.Client, tables: TableName[]): Promise<FkEdge[]> {
  const {rows} = await client.query<{parent: string; child: string}>(
    `SELECT pn.nspname || '.' || p.relname AS parent, cn.nspname || '.' || ch.relname AS child
       FROM pg_constraint k
       JOIN pg_class ch ON ch.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = ch.relnamespace
       JOIN pg_class p ON p.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
      WHERE k.contype = 'f' AND k.conparentid = 0
        AND (cn.nspname, ch.relname) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
    [tables.map((t) => t.schema), tables.map((t) => t.name)],
  )
  return rows
}

export interface ReplicationFacts {
  /** Subscriptions in this database. */
  subscriptions: number
  /** Tables (of those given, "schema.table") in some publication. */
  published: string[]
}

export async function loadReplication(client: pg.Client, tables: TableName[]): Promise<ReplicationFacts> {
  const subs = await client.query<{n: number}>(
    `SELECT count(*)::int AS n FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
  )
  const pub = await client.query<{t: string}>(
    `SELECT DISTINCT schemaname || '.' || tablename AS t FROM pg_publication_tables
      WHERE (schemaname, tablename) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
    [tables.map((t) => t.schema), tables.map((t) => t.name)],
  )
  return {subscriptions: subs.rows[0]?.n ?? 0, published: pub.rows.map((r) => r.t).sort()}
}

/** A subscription on one node that receives the other node's changes of some merged tables. */
export interface EchoLink {
  subscription: string
  /** pg_subscription.suborigin ('any' before PostgreSQL 16, where it does not exist). */
  origin: string
  /** The merged tables ("schema.table") its publications carry. */
  tables: string[]
}

/**
 * Subscriptions of `subscriber` that stream from `publisher`: their slot is a logical slot of the
 * publisher's database (a slot name is unique per server, so this does not depend on how the
 * subscription's conninfo names the host), with the merged tables their publications carry there.
 * Rows merged into the publisher travel to the subscriber unless the subscription has origin = none.
 */
export async function loadEchoLinks(subscriber: pg.Client, publisher: pg.Client, tables: TableName[]): Promise<EchoLink[]> {
  const v = (await subscriber.query<{n: number}>(`SELECT current_setting('server_version_num')::int AS n`)).rows[0]!.n
  const subs = await subscriber.query<{name: string; slot: string; pubs: string[]; origin: string}>(
    `SELECT subname AS name, subslotname AS slot, subpublications AS pubs, ${v >= 160000 ? 'suborigin' : "'any'"} AS origin
       FROM pg_subscription
      WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND subenabled AND subslotname IS NOT NULL`,
  )
  if (!subs.rows.length) return []
  const slots = await publisher.query<{slot: string}>(
    `SELECT slot_name AS slot FROM pg_replication_slots WHERE slot_type = 'logical' AND database = current_database() AND slot_name = ANY($1::text[])`,
    [subs.rows.map((r) => r.slot)],
  )
  const live = new Set(slots.rows.map((r) => r.slot))
  const links: EchoLink[] = []
  for (const sub of subs.rows.filter((r) => live.has(r.slot))) {
    const carried = await publisher.query<{t: string}>(
      `SELECT DISTINCT schemaname || '.' || tablename AS t FROM pg_publication_tables
        WHERE pubname = ANY($1::text[]) AND (schemaname, tablename) IN (SELECT * FROM unnest($2::text[], $3::text[]))`,
      [sub.pubs, tables.map((t) => t.schema), tables.map((t) => t.name)],
    )
    if (carried.rows.length) links.push({subscription: sub.name, origin: sub.origin, tables: carried.rows.map((r) => r.t).sort()})
  }
  return links
}

export interface WriterFacts {
  /** Other sessions holding a write lock on one of the tables. */
  writers: number
  /** Other sessions idle in a transaction (they may hold uncommitted writes). */
  idleInTransaction: number
}

export async function loadWriters(client: pg.Client, tables: TableName[]): Promise<WriterFacts> {
  const {rows} = await client.query<{writers: number; idle: number}>(
    `SELECT (SELECT count(DISTINCT l.pid)::int FROM pg_locks l
              WHERE l.locktype = 'relation' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                AND l.pid <> pg_backend_pid() AND l.mode IN ('RowExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')
                AND l.relation IN (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                    WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest($1::text[], $2::text[])))) AS writers,
            (SELECT count(*)::int FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
                AND state IN ('idle in transaction', 'idle in transaction (aborted)')) AS idle`,
    [tables.map((t) => t.schema), tables.map((t) => t.name)],
  )
  return {writers: rows[0]?.writers ?? 0, idleInTransaction: rows[0]?.idle ?? 0}
}

/** Whether node A has the merge tables (migration 007) of the steep_repl schema. */
export async function hasMergeSchema(client: pg.Client): Promise<boolean> {
  const {rows} = await client.query<{ok: boolean}>(
    `SELECT to_regclass('steep_repl.merges') IS NOT NULL AND to_regclass('steep_repl.merge_audit_log') IS NOT NULL AS ok`,
  )
  return rows[0]?.ok ?? false
}

/** Whether node A's steep_repl schema has migration 009 (the merge audits sequence advances). */
export async function hasSequenceAudit(client: pg.Client): Promise<boolean> {
  const t = await client.query<{ok: boolean}>(`SELECT to_regclass('steep_repl.schema_version') IS NOT NULL AS ok`)
  if (!t.rows[0]?.ok) return false
  const {rows} = await client.query<{ok: boolean}>(`SELECT EXISTS (SELECT 1 FROM steep_repl.schema_version WHERE version = 9) AS ok`)
  return rows[0]?.ok ?? false
}
