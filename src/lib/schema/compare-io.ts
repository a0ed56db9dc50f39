// Gathers what compare needs from two live nodes (in parallel) and builds the report.

import {StateError} from '../errors.js'
import {filterParams, NS_CTE, notExtensionMember, type Queryable, type SchemaFilter} from './catalog.js'
import {buildReport, compareTable, type CompareReport, compareFingerprintSets, type ReadinessOptions, readinessIssues, type ReplicationFacts, type TableComparison} from './compare.js'
import {computeFingerprints} from './fingerprint-io.js'
import {tableKey} from './fingerprint.js'
import type {QualifiedName} from './names.js'

/** Replica identity, sequences and publication membership of the selected user tables. */
export async function gatherReplicationFacts(client: Queryable, filter: SchemaFilter = {}): Promise<ReplicationFacts> {
  const p = filterParams(filter)
  const tables = await client.query(
    `WITH ${NS_CTE}
     SELECT ns.nspname AS schema, c.relname AS table, c.relkind, c.relispartition, c.relreplident, c.relpersistence = 'u' AS unlogged,
            EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_pk,
            EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisreplident AND i.indisvalid) AS ri_ok,
            ARRAY(SELECT DISTINCT pt.pubname::text FROM pg_catalog.pg_publication_tables pt
                    JOIN pg_catalog.pg_namespace pn ON pn.nspname = pt.schemaname
                    JOIN pg_catalog.pg_class pc ON pc.relnamespace = pn.oid AND pc.relname = pt.tablename
                   WHERE pc.oid = c.oid
                      OR pc.oid IN (SELECT a.relid FROM pg_catalog.pg_partition_ancestors(c.oid) a)
                      OR c.oid IN (SELECT a.relid FROM pg_catalog.pg_partition_ancestors(pc.oid) a)
                   ORDER BY 1) AS pubs
       FROM pg_catalog.pg_class c JOIN ns ON ns.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND ${notExtensionMember('pg_catalog.pg_class', 'c')}`,
    p,
  )
  const seqs = await client.query(
    `WITH ${NS_CTE}
     SELECT ns.nspname AS schema, c.relname AS name,
            (SELECT pg_catalog.quote_ident(tn.nspname) || '.' || pg_catalog.quote_ident(t.relname) || '.' || pg_catalog.quote_ident(a.attname)
               FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
               JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
               JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
              WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
                AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype IN ('a', 'i') LIMIT 1) AS owned_by
       FROM pg_catalog.pg_class c JOIN ns ON ns.oid = c.relnamespace
      WHERE c.relkind = 'S' AND ${notExtensionMember('pg_catalog.pg_class', 'c')}`,
    p,
  )
  const pubs = await client.query(`SELECT pubname AS name, puballtables, pubupdate, pubdelete FROM pg_catalog.pg_publication ORDER BY 1`)
  return {
    tables: tables.rows.map((r) => ({
      schema: r.schema,
      table: r.table,
      kind: r.relkind === 'p' ? 'partitioned' : r.relispartition ? 'partition' : 'ordinary',
      hasPrimaryKey: r.has_pk,
      replicaIdentity: r.relreplident,
      replicaIdentityIndexOk: r.ri_ok,
      unlogged: r.unlogged,
      publications: r.pubs,
    })),
    sequences: seqs.rows.map((r) => ({schema: r.schema, name: r.name, ownedBy: r.owned_by})),
    publications: pubs.rows.map((r) => ({name: r.name, allTables: r.puballtables, update: r.pubupdate, delete: r.pubdelete})),
  }
}

export interface CompareOptions extends SchemaFilter, ReadinessOptions {
  /** Labels for the two nodes in the report (connection descriptions, never passwords). */
  labelA?: string
  labelB?: string
}

export async function compareNodes(a: Queryable, b: Queryable, opts: CompareOptions = {}): Promise<CompareReport> {
  const side = async (c: Queryable) => {
    const fps = await computeFingerprints(c, opts)
    const facts = await gatherReplicationFacts(c, opts)
    return {fps, facts}
  }
  const [ra, rb] = await Promise.all([side(a), side(b)])
  const strip = (f: (typeof ra)['fps']) => f.map(({input: _i, ...t}) => t)
  const tables = compareFingerprintSets(strip(ra.fps), strip(rb.fps))
  return buildReport(opts.labelA ?? 'A', opts.labelB ?? 'B', tables, readinessIssues(ra.facts, rb.facts, opts))
}

/** One table's column differences between the nodes; error when the table exists on neither. */
export async function diffTable(a: Queryable, b: Queryable, table: QualifiedName): Promise<TableComparison> {
  const [fa, fb] = await Promise.all([computeFingerprints(a, {tables: [table]}), computeFingerprints(b, {tables: [table]})])
  const ta = fa[0]
  const tb = fb[0]
  const key = tableKey(table.schema, table.name)
  if (!ta && !tb) {
    throw new StateError(`table ${key} not found on either node`, {hint: 'Give it as schema.table; quote names with capitals or dots, e.g. \'"My Schema"."My Table"\'.'})
  }
  return compareTable(key, ta, tb)
}
