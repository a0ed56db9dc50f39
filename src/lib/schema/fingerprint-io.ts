// Fingerprints read from a live database, and their capture into steep_repl.schema_fingerprints.

import {NotInstalledError} from '../errors.js'
import {filterParams, NS_CTE, notExtensionMember, type Queryable, type SchemaFilter} from './catalog.js'
import {type ColumnDefinition, fingerprintInput, quotedPair, sha256Hex, type TableFingerprint, type TableKind} from './fingerprint.js'
import type {QualifiedName} from './names.js'
import {withCatalogRead} from './read-tx.js'

export interface FingerprintOptions extends SchemaFilter {
  /** Only these tables (those that do not exist are simply absent from the result). */
  tables?: QualifiedName[]
}

export interface TableFingerprintWithInput extends TableFingerprint {
  input: string
}

/** Fingerprints of the user's tables (ordinary, partitioned, partitions), sorted by schema.table. */
export async function computeFingerprints(client: Queryable, opts: FingerprintOptions = {}): Promise<TableFingerprintWithInput[]> {
  const [inc, exc] = filterParams(opts)
  const tables = opts.tables ?? null
  const rows = await withCatalogRead(client, async () =>
    (
      await client.query(
        `WITH ${NS_CTE}
         SELECT ns.nspname AS schema, c.relname AS table, c.relkind, c.relispartition,
                a.attname AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable,
                cn.nspname AS coll_schema, co.collname AS coll_name, pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS def,
                a.attidentity, a.attgenerated
           FROM pg_catalog.pg_class c JOIN ns ON ns.oid = c.relnamespace
           LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
           LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
           LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
           LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
          WHERE c.relkind IN ('r', 'p') AND ${notExtensionMember('pg_catalog.pg_class', 'c')}
            AND ($3::text[] IS NULL OR (ns.nspname, c.relname) IN (SELECT * FROM ROWS FROM (pg_catalog.unnest($3::text[]), pg_catalog.unnest($4::text[]))))
          ORDER BY ns.nspname, c.relname, a.attnum`,
        [inc, exc, tables?.map((t) => t.schema) ?? null, tables?.map((t) => t.name) ?? null],
      )
    ).rows,
  )
  const out: TableFingerprintWithInput[] = []
  let cur: {schema: string; table: string; kind: TableKind; columns: ColumnDefinition[]} | undefined
  const flush = () => {
    if (!cur) return
    const input = fingerprintInput(cur.columns)
    out.push({...cur, fingerprint: sha256Hex(input), columnCount: cur.columns.length, input})
  }
  for (const r of rows) {
    if (!cur || cur.schema !== r.schema || cur.table !== r.table) {
      flush()
      cur = {schema: r.schema, table: r.table, kind: r.relkind === 'p' ? 'partitioned' : r.relispartition ? 'partition' : 'ordinary', columns: []}
    }
    if (r.name === null) continue
    cur.columns.push({
      name: r.name,
      type: r.type,
      nullable: r.nullable,
      collation: r.coll_name === null ? null : quotedPair(r.coll_schema, r.coll_name),
      default: r.attgenerated ? null : r.def,
      position: cur.columns.length + 1,
      identity: r.attidentity === 'a' ? 'always' : r.attidentity === 'd' ? 'by default' : null,
      generated: r.attgenerated === 's' ? 'stored' : r.attgenerated === 'v' ? 'virtual' : null,
    })
  }
  flush()
  // Sort by the displayed key in code (collation-independent, the same on every server).
  return out.sort((a, b) => cmpKey(a, b))
}

export function cmpKey(a: {schema: string; table: string}, b: {schema: string; table: string}): number {
  const x = `${a.schema}.${a.table}`
  const y = `${b.schema}.${b.table}`
  return x < y ? -1 : x > y ? 1 : 0
}

export async function assertFingerprintTable(client: Queryable): Promise<void> {
  const {rows} = await client.query<{ok: boolean}>(`SELECT pg_catalog.to_regclass('steep_repl.schema_fingerprints') IS NOT NULL AS ok`)
  if (!rows[0]?.ok) {
    throw new NotInstalledError('steep_repl.schema_fingerprints does not exist in this database', {
      hint: 'Run `steep-repl install` on this database first (it creates the steep_repl schema).',
    })
  }
}

export interface CaptureResult {
  nodeId: string
  captured: number
  /** Rows of this node removed because their table no longer exists (within the captured scope). */
  removed: Array<{schema: string; table: string}>
  tables: TableFingerprint[]
}

/**
 * Stores the fingerprints of this database's tables under nodeId, in one transaction: upserts every
 * table in scope and deletes this node's rows for tables in scope that no longer exist.
 */
export async function captureFingerprints(client: Queryable, nodeId: string, opts: FingerprintOptions = {}): Promise<CaptureResult> {
  await assertFingerprintTable(client)
  await client.query('BEGIN')
  try {
    const fps = await computeFingerprints(client, opts)
    const payload = fps.map((f) => ({schema: f.schema, table: f.table, fingerprint: f.fingerprint, column_count: f.columnCount, columns: f.columns}))
    await client.query(
      `INSERT INTO steep_repl.schema_fingerprints AS f (node_id, table_schema, table_name, fingerprint, column_count, column_definitions, captured_at)
       SELECT $1, x.schema, x."table", x.fingerprint, x.column_count, x.columns, pg_catalog.now()
         FROM pg_catalog.jsonb_to_recordset($2::jsonb) AS x(schema text, "table" text, fingerprint text, column_count integer, columns jsonb)
       ON CONFLICT (node_id, table_schema, table_name) DO UPDATE
          SET fingerprint = EXCLUDED.fingerprint, column_count = EXCLUDED.column_count,
              column_definitions = EXCLUDED.column_definitions, captured_at = EXCLUDED.captured_at`,
      [nodeId, JSON.stringify(payload)],
    )
    const [inc, exc] = filterParams(opts)
    const tables = opts.tables ?? null
    const removed = await client.query<{schema: string; table: string}>(
      `DELETE FROM steep_repl.schema_fingerprints f
        WHERE f.node_id = $1
          AND (pg_catalog.cardinality($2::text[]) = 0 OR f.table_schema = ANY ($2::text[]))
          AND f.table_schema <> ALL ($3::text[])
          AND ($4::text[] IS NULL OR (f.table_schema, f.table_name) IN (SELECT * FROM ROWS FROM (pg_catalog.unnest($4::text[]), pg_catalog.unnest($5::text[]))))
          AND (f.table_schema, f.table_name) NOT IN (SELECT * FROM ROWS FROM (pg_catalog.unnest($6::text[]), pg_catalog.unnest($7::text[])))
        RETURNING f.table_schema AS schema, f.table_name AS "table"`,
      [nodeId, inc, exc, tables?.map((t) => t.schema) ?? null, tables?.map((t) => t.name) ?? null, fps.map((f) => f.schema), fps.map((f) => f.table)],
    )
    await client.query('COMMIT')
    return {
      nodeId,
      captured: fps.length,
      removed: removed.rows.sort(cmpKey),
      tables: fps.map(({input: _i, ...f}) => f),
    }
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  }
}

/** The fingerprints stored for a node, sorted by schema.table. */
export async function readCapturedFingerprints(client: Queryable, nodeId: string): Promise<Array<TableFingerprint & {capturedAt: Date}>> {
  await assertFingerprintTable(client)
  const {rows} = await client.query(
    `SELECT table_schema, table_name, fingerprint, column_count, column_definitions, captured_at
       FROM steep_repl.schema_fingerprints WHERE node_id = $1`,
    [nodeId],
  )
  return rows
    .map((r) => ({
      schema: r.table_schema as string,
      table: r.table_name as string,
      kind: null,
      fingerprint: r.fingerprint as string,
      columnCount: r.column_count as number,
      columns: (r.column_definitions ?? []) as ColumnDefinition[],
      capturedAt: r.captured_at as Date,
    }))
    .sort(cmpKey)
}
