// What a snapshot copies, read from the catalogs inside the exported snapshot: the tables that hold
// rows (ordinary tables and leaf partitions, unlogged included, extension members and steep_repl's
// own excluded), the columns COPY moves (generated columns are recomputed by the target), a
// single-column integer primary key to split on, sizes for scheduling, the top-level tables a
// publication lists, and the sequences with their state.

import pg from 'pg'
import {UsageError} from '../errors.js'
import {listSequences, parseQualifiedName} from '../schema/index.js'
import {SYSTEM_SCHEMAS} from '../schema/catalog.js'
import type {TableFacts} from './plan.js'

export {parseQualifiedName}

export interface DataTable extends TableFacts {
  columns: string[]
  /** schema.name of the top of its partition tree (itself when not a partition). */
  root: {schema: string; name: string}
  partition: boolean
  unlogged: boolean
  /** Whole-table checks need a PK or replica identity to replicate UPDATE/DELETE. */
  hasReplicaIdentity: boolean
}

export interface Selection {
  schemas?: string[]
  tables?: string[]
  excludeTables?: string[]
}

// The schema capability's list: the system schemas and steep_repl's own.
const EXCLUDED_SCHEMAS = SYSTEM_SCHEMAS

/** A table's key in maps and sets (binaryCopyTables' set among them): schema and name, unambiguous. */
export const tableKey = (t: {schema: string; name: string}): string => `${t.schema}\u0000${t.name}`

/** Applies --schema / --table / --exclude-table; a partitioned table selects its partitions. */
export function selectTables(all: DataTable[], sel: Selection): DataTable[] {
  const schemas = sel.schemas?.length ? new Set(sel.schemas) : undefined
  const tables = sel.tables?.length ? new Set(sel.tables.map((t) => tableKey(parseQualifiedName(t)))) : undefined
  const excluded = new Set((sel.excludeTables ?? []).map((t) => tableKey(parseQualifiedName(t))))
  if (tables) {
    const known = new Set(all.flatMap((t) => [tableKey(t), tableKey(t.root)]))
    const missing = [...tables].filter((k) => !known.has(k))
    if (missing.length) {
      throw new UsageError(`no such table: ${missing.map((k) => k.replace('\u0000', '.')).join(', ')}`, {
        hint: 'Names are schema.table; quote mixed-case names: --table \'public."MyTable"\'',
      })
    }
  }
  return all.filter((t) => {
    if (schemas && !schemas.has(t.schema)) return false
    if (tables && !tables.has(tableKey(t)) && !tables.has(tableKey(t.root))) return false
    return !excluded.has(tableKey(t)) && !excluded.has(tableKey(t.root))
  })
}

export async function listDataTables(client: pg.ClientBase): Promise<DataTable[]> {
  const {rows} = await client.query(
    `SELECT n.nspname AS schema, c.relname AS name, c.relispartition AS partition, c.relpersistence = 'u' AS unlogged,
            pg_relation_size(c.oid)::float8 AS bytes,
            (pg_relation_size(c.oid) / current_setting('block_size')::int)::float8 AS pages,
            greatest(c.reltuples, 0)::float8 AS rows,
            rn.nspname AS root_schema, rc.relname AS root_name,
            ARRAY(SELECT a.attname::text FROM pg_attribute a
                   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
                   ORDER BY a.attnum) AS columns,
            (SELECT a.attname::text FROM pg_index i
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
              WHERE i.indrelid = c.oid AND i.indisprimary AND i.indnkeyatts = 1
                AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)) AS int_key,
            (c.relreplident = 'f' OR (c.relreplident IN ('d', 'i') AND EXISTS (
               SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND (i.indisprimary OR i.indisreplident)))) AS has_replica_identity
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_class rc ON rc.oid = coalesce(pg_partition_root(c.oid), c.oid)
       JOIN pg_namespace rn ON rn.oid = rc.relnamespace
      WHERE c.relkind = 'r' AND c.relpersistence <> 't'
        AND n.nspname <> ALL ($1) AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
      ORDER BY 1, 2`,
    [EXCLUDED_SCHEMAS],
  )
  return rows.map((r) => ({
    schema: r.schema,
    name: r.name,
    bytes: r.bytes,
    pages: r.pages,
    rows: r.rows,
    columns: r.columns,
    partition: r.partition,
    unlogged: r.unlogged,
    root: {schema: r.root_schema, name: r.root_name},
    hasReplicaIdentity: r.has_replica_identity,
    ...(r.int_key ? {intKey: {column: r.int_key, min: '0', max: '0'}} : {}),
  }))
}

/**
 * The tables whose rows can move in COPY's binary format without changing meaning on another
 * database: every copied column's type, seen through its domains, is
 * - a built-in base, range or multirange type (OID below FirstNormalObjectId, so the same OID on
 *   every server: arrays of them name their element by OID in the binary format), with send and
 *   receive functions, and not an OID alias (regclass, regtype, … and their arrays: binary carries
 *   the source's OID, text carries the name the target resolves again); or
 * - an enum (sent as its label) at the top level: an array of an enum names the enum's OID, which
 *   differs on the target, so array_recv would refuse it.
 * Composite and user-defined base or range types move as text. The binary format skips the text
 * output and input functions, which for numeric, timestamp and the like are most of the server's
 * COPY cost (measured on PostgreSQL 15: about half the CPU of COPY TO and FROM for a table of
 * numeric, text and timestamptz columns), and it is exact by construction (floats, money).
 */
export async function binaryCopyTables(client: pg.ClientBase, tables: Array<{schema: string; name: string}>): Promise<Set<string>> {
  if (!tables.length) return new Set()
  const r = await client.query<{s: string; n: string}>(
    `WITH RECURSIVE dom(oid, base) AS (
         SELECT oid, typbasetype FROM pg_type WHERE typtype = 'd'
       UNION ALL
         SELECT dom.oid, t.typbasetype FROM dom JOIN pg_type t ON t.oid = dom.base AND t.typtype = 'd'),
       sel AS (SELECT * FROM unnest($1::text[], $2::text[]) AS x(s, n)),
       cols AS (
         SELECT sel.s, sel.n,
                coalesce((SELECT d.base FROM dom d JOIN pg_type b ON b.oid = d.base WHERE d.oid = a.atttypid AND b.typtype <> 'd'), a.atttypid) AS typ
           FROM sel
           JOIN pg_namespace ns ON ns.nspname = sel.s
           JOIN pg_class c ON c.relnamespace = ns.oid AND c.relname = sel.n
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '')
     SELECT cols.s, cols.n FROM cols JOIN pg_type ty ON ty.oid = cols.typ
      GROUP BY cols.s, cols.n
     HAVING bool_and(ty.typsend <> 0 AND ty.typreceive <> 0
                     AND (ty.typtype = 'e' OR (ty.oid < 16384 AND ty.typtype IN ('b', 'r', 'm') AND ty.typname !~ '^_?reg')))`,
    [tables.map((t) => t.schema), tables.map((t) => t.name)],
  )
  return new Set(r.rows.map((x) => tableKey({schema: x.s, name: x.n})))
}

/** Fills the integer key bounds (inside the snapshot) for the tables that will be split. */
export async function readKeyBounds(client: pg.ClientBase, t: DataTable): Promise<void> {
  if (!t.intKey) return
  const col = pg.escapeIdentifier(t.intKey.column)
  const r = await client.query(
    `SELECT min(${col})::text AS min, max(${col})::text AS max FROM ONLY ${pg.escapeIdentifier(t.schema)}.${pg.escapeIdentifier(t.name)}`,
  )
  if (r.rows[0].min === null) delete t.intKey // empty table: nothing to split on
  else t.intKey = {column: t.intKey.column, min: r.rows[0].min, max: r.rows[0].max}
}

/** Sequences of the selected schemas with last_value and is_called (the schema capability reads them). */
export async function readSequences(client: pg.ClientBase, schemas?: string[]): Promise<Array<{schema: string; name: string; lastValue: string; isCalled: boolean}>> {
  const seqs = await listSequences(client, {schemas: schemas?.length ? schemas : undefined})
  return seqs.map((q) => ({schema: q.schema, name: q.name, lastValue: q.lastValue, isCalled: q.isCalled}))
}

/** The tables a publication lists: the roots of the selected tables, each once. */
export function publicationTables(tables: DataTable[]): Array<{schema: string; name: string}> {
  const seen = new Map<string, {schema: string; name: string}>()
  for (const t of tables) seen.set(tableKey(t.root), t.root)
  return [...seen.values()]
}
