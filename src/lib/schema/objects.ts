// Catalog helpers for snapshot and node init: the user tables with their kind, primary key and
// replica identity, and the sequences with their current state (last_value, is_called). They run
// on whatever transaction the client is in (typically one that imported an exported snapshot).

import {filterParams, NS_CTE, notExtensionMember, type Queryable, type SchemaFilter} from './catalog.js'
import {qname} from './names.js'

export type UserTableKind = 'ordinary' | 'partitioned' | 'partition'

export interface UserTable {
  oid: number
  schema: string
  name: string
  kind: UserTableKind
  /** partitions: the direct parent */
  parent: {schema: string; name: string} | null
  unlogged: boolean
  /** primary key columns in key order, null when there is none */
  primaryKey: string[] | null
  replicaIdentity: 'default' | 'nothing' | 'full' | 'index'
  /** columns of the replica identity index when replicaIdentity = 'index' */
  replicaIdentityColumns: string[] | null
  /** live columns in order */
  columns: string[]
  /** the columns COPY can write (generated columns excluded) */
  copyColumns: string[]
  /** pg_class.reltuples (-1 = never analyzed) and the table's size in bytes (0 for partitioned) */
  estimatedRows: number
  sizeBytes: number
}

/** User tables (ordinary, partitioned, partitions) in the selected schemas, sorted by schema, name. */
export async function listUserTables(client: Queryable, filter: SchemaFilter = {}): Promise<UserTable[]> {
  const {rows} = await client.query(
    `WITH ${NS_CTE}
     SELECT c.oid::int8 AS oid, ns.nspname AS schema, c.relname AS name, c.relkind, c.relispartition, c.relpersistence = 'u' AS unlogged,
            pn.nspname AS parent_schema, pc.relname AS parent_name, c.relreplident,
            (SELECT ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(i.indkey) WITH ORDINALITY k(attnum, n)
                            JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum WHERE k.n <= i.indnkeyatts ORDER BY k.n)
               FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS pk,
            (SELECT ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(i.indkey) WITH ORDINALITY k(attnum, n)
                            JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum WHERE k.n <= i.indnkeyatts ORDER BY k.n)
               FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisreplident) AS ri_cols,
            ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS cols,
            ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum) AS copy_cols,
            c.reltuples::float8 AS reltuples, CASE WHEN c.relkind = 'r' THEN pg_catalog.pg_table_size(c.oid) ELSE 0 END::int8 AS size
       FROM pg_catalog.pg_class c JOIN ns ON ns.oid = c.relnamespace
       LEFT JOIN pg_catalog.pg_inherits h ON c.relispartition AND h.inhrelid = c.oid
       LEFT JOIN pg_catalog.pg_class pc ON pc.oid = h.inhparent
       LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
      WHERE c.relkind IN ('r', 'p') AND ${notExtensionMember('pg_catalog.pg_class', 'c')}`,
    filterParams(filter),
  )
  const ri: Record<string, UserTable['replicaIdentity']> = {d: 'default', n: 'nothing', f: 'full', i: 'index'}
  return rows
    .map((r) => ({
      oid: Number(r.oid),
      schema: r.schema,
      name: r.name,
      kind: (r.relkind === 'p' ? 'partitioned' : r.relispartition ? 'partition' : 'ordinary') as UserTableKind,
      parent: r.parent_name ? {schema: r.parent_schema, name: r.parent_name} : null,
      unlogged: r.unlogged,
      primaryKey: r.pk,
      replicaIdentity: ri[r.relreplident]!,
      replicaIdentityColumns: r.relreplident === 'i' ? r.ri_cols : null,
      columns: r.cols,
      copyColumns: r.copy_cols,
      estimatedRows: Number(r.reltuples),
      sizeBytes: Number(r.size),
    }))
    .sort((a, b) => (a.schema === b.schema ? cmp(a.name, b.name) : cmp(a.schema, b.schema)))
}

const cmp = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0)

/** The primary key columns of a table in key order; null when it has none or does not exist. */
export async function primaryKeyColumns(client: Queryable, schema: string, table: string): Promise<string[] | null> {
  const {rows} = await client.query<{pk: string[]}>(
    `SELECT ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(i.indkey) WITH ORDINALITY k(attnum, n)
                   JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum WHERE k.n <= i.indnkeyatts ORDER BY k.n) AS pk
       FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND i.indisprimary`,
    [schema, table],
  )
  return rows[0]?.pk ?? null
}

export interface SequenceState {
  schema: string
  name: string
  dataType: string
  /** as text: bigint does not fit a JS number */
  lastValue: string
  isCalled: boolean
  /** identity sequences belong to an identity column, others may be OWNED BY a column */
  identity: boolean
  ownedBy: {schema: string; table: string; column: string} | null
}

/** The user's sequences (identity ones included) with last_value and is_called read from each sequence. */
export async function listSequences(client: Queryable, filter: SchemaFilter = {}): Promise<SequenceState[]> {
  const {rows} = await client.query(
    `WITH ${NS_CTE}
     SELECT ns.nspname AS schema, c.relname AS name, pg_catalog.format_type(s.seqtypid, NULL) AS data_type,
            d.deptype, tn.nspname AS t_schema, t.relname AS t_name, a.attname AS t_column
       FROM pg_catalog.pg_class c JOIN ns ON ns.oid = c.relnamespace
       JOIN pg_catalog.pg_sequence s ON s.seqrelid = c.oid
       LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
            AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype IN ('a', 'i')
       LEFT JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
       LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
       LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
      WHERE c.relkind = 'S' AND ${notExtensionMember('pg_catalog.pg_class', 'c')}`,
    filterParams(filter),
  )
  const seqs = rows.sort((a, b) => (a.schema === b.schema ? cmp(a.name, b.name) : cmp(a.schema, b.schema)))
  const state: Array<{last_value: string; is_called: boolean}> = []
  for (let i = 0; i < seqs.length; i += 200) {
    const chunk = seqs.slice(i, i + 200)
    const sql = chunk.map((s, j) => `SELECT ${i + j} AS n, last_value::text AS last_value, is_called FROM ${qname(s.schema, s.name)}`).join('\nUNION ALL\n')
    const res = await client.query<{n: number; last_value: string; is_called: boolean}>(sql)
    for (const r of res.rows) state[r.n] = r
  }
  return seqs.map((s, i) => ({
    schema: s.schema,
    name: s.name,
    dataType: s.data_type,
    lastValue: state[i]!.last_value,
    isCalled: state[i]!.is_called,
    identity: s.deptype === 'i',
    ownedBy: s.t_name ? {schema: s.t_schema, table: s.t_name, column: s.t_column} : null,
  }))
}

/** The query that restores a sequence's state on a target: `client.query(setSequenceQuery(s))`. */
export function setSequenceQuery(s: Pick<SequenceState, 'schema' | 'name' | 'lastValue' | 'isCalled'>): {text: string; values: unknown[]} {
  return {text: 'SELECT pg_catalog.setval($1::pg_catalog.regclass, $2::int8, $3)', values: [qname(s.schema, s.name), s.lastValue, s.isCalled]}
}
