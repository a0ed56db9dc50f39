// Reads the user's objects from the system catalogs into plain values (the CatalogModel), which
// ddl.ts turns into DDL without further I/O. Every query runs on the caller's client, so inside the
// caller's transaction (and snapshot). The caller (extract.ts) has set search_path to '' so that
// format_type, pg_get_expr and the pg_get_*def functions schema-qualify every name.
//
// Version differences are keyed on server_version_num here, once each: not-null constraints in
// pg_constraint (18), domain not-null constraints in pg_constraint (17), attstattarget NULL default
// (17), virtual generated columns (18).

import type pg from 'pg'

export type Queryable = Pick<pg.ClientBase, 'query'>

export interface SchemaFilter {
  /** Only these schemas (exact names); empty or absent = every user schema. */
  schemas?: string[]
  /** Never these schemas (exact names). */
  excludeSchemas?: string[]
}

/** Schemas that are never user objects. steep_repl is the tool's own schema (install creates it). */
export const SYSTEM_SCHEMAS = ['pg_catalog', 'information_schema', 'steep_repl']

/** A CTE `ns(oid, nspname)` of the selected user schemas; binds $1 (include) and $2 (exclude). */
export const NS_CTE = `ns AS (
  SELECT n.oid, n.nspname FROM pg_catalog.pg_namespace n
   WHERE n.nspname <> ALL ('{pg_catalog,information_schema,steep_repl}'::text[])
     AND n.nspname !~ '^pg_(toast|temp_)'
     AND (pg_catalog.cardinality($1::text[]) = 0 OR n.nspname = ANY ($1::text[]))
     AND n.nspname <> ALL ($2::text[])
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
                     AND e.objid = n.oid AND e.deptype = 'e'))`

export function filterParams(f: SchemaFilter): [string[], string[]] {
  return [f.schemas ?? [], f.excludeSchemas ?? []]
}

/** `NOT EXISTS` an extension membership for `alias.oid` in catalog `cat`. */
export function notExtensionMember(cat: string, alias: string): string {
  return `NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend xd WHERE xd.classid = '${cat}'::pg_catalog.regclass AND xd.objid = ${alias}.oid AND xd.deptype = 'e')`
}

/** One aclexplode() entry, in array order: grantee (null = PUBLIC), privilege, grant option. */
export interface AclEntry {
  g: string | null
  p: string
  o: boolean
}

/** null: the object has default privileges (nothing to grant or revoke). */
export type Acl = AclEntry[] | null

/** A SQL expression giving the ACL of `expr` (an aclitem[]) as JSON, or NULL when it is the default. */
export function aclJson(expr: string): string {
  return `CASE WHEN ${expr} IS NULL THEN NULL ELSE (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object(
            'g', CASE WHEN x.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(x.grantee) END, 'p', x.privilege_type, 'o', x.is_grantable) ORDER BY x.n), '[]')
          FROM pg_catalog.aclexplode(${expr}) WITH ORDINALITY AS x(grantor, grantee, privilege_type, is_grantable, n)) END`
}

export interface CatSchema {
  oid: string
  name: string
  owner: string
  comment: string | null
  acl: Acl
}

export interface CatExtension {
  oid: string
  name: string
  schema: string
  version: string
  comment: string | null
}

export interface CatDomainConstraint {
  oid: string
  name: string
  /** pg_get_constraintdef */
  def: string
  type: 'c' | 'n'
  validated: boolean
  comment: string | null
}

export interface CatCompositeAttribute {
  name: string
  type: string
  collation: string | null
}

export interface CatType {
  oid: string
  arrayOid: string | null
  schema: string
  name: string
  /** e enum, c composite, r range, d domain */
  kind: 'e' | 'c' | 'r' | 'd'
  owner: string
  comment: string | null
  acl: Acl
  enumLabels: string[]
  attributes: CatCompositeAttribute[]
  /** composite: the pg_class oid of the type's relation */
  relOid: string | null
  // domain
  baseType: string | null
  notNull: boolean
  default: string | null
  collation: string | null
  constraints: CatDomainConstraint[]
  // range
  subtype: string | null
  subtypeOpclass: string | null
  rangeCollation: string | null
  canonical: string | null
  subtypeDiff: string | null
  multirangeName: string | null
  multirangeOid: string | null
}

export interface CatFunction {
  oid: string
  schema: string
  name: string
  kind: 'f' | 'p' | 'a' | 'w'
  identityArgs: string
  /** pg_get_functiondef; null for aggregates and window functions (not supported) */
  def: string | null
  owner: string
  comment: string | null
  acl: Acl
}

export interface CatSequenceOptions {
  dataType: string
  start: string
  increment: string
  min: string
  max: string
  cache: string
  cycle: boolean
}

export interface CatSequence extends CatSequenceOptions {
  oid: string
  schema: string
  name: string
  unlogged: boolean
  owner: string
  comment: string | null
  acl: Acl
  /** OWNED BY table column (auto dependency); absent for free-standing sequences */
  ownedBy: {tableOid: string; schema: string; table: string; column: string} | null
}

export interface CatColumn {
  num: number
  name: string
  type: string
  notNull: boolean
  /** the attrdef oid and expression (not for generated columns) */
  defaultOid: string | null
  default: string | null
  /** '' | 'a' (always) | 'd' (by default) */
  identity: '' | 'a' | 'd'
  identitySequence: (CatSequenceOptions & {oid: string; schema: string; name: string}) | null
  /** '' | 's' stored | 'v' virtual; the expression in `default` */
  generated: '' | 's' | 'v'
  /** qualified, quoted collation when it differs from the type's default */
  collation: string | null
  isLocal: boolean
  inhCount: number
  comment: string | null
  /** SET STATISTICS value when not the default */
  statistics: number | null
  /** SET STORAGE when it differs from the type's default: plain, external, extended, main */
  storage: string | null
  /** SET COMPRESSION method when set */
  compression: string | null
  /** attoptions (n_distinct=…) */
  options: string[] | null
  /** column privileges */
  acl: Acl
}

export interface CatConstraint {
  oid: string
  name: string
  /** c check, n not-null (18+), p, u, x, f */
  type: 'c' | 'n' | 'p' | 'u' | 'x' | 'f'
  def: string
  validated: boolean
  isLocal: boolean
  noInherit: boolean
  deferrable: boolean
  deferred: boolean
  /** for n: the column number */
  column: number | null
  /** for p/u/x: the index oid */
  indexOid: string | null
  /** for f: cloned from a parent FK on a partitioned table (not dumped) */
  hasParent: boolean
  comment: string | null
}

export interface CatIndex {
  oid: string
  schema: string
  name: string
  tableOid: string
  def: string
  /** index access method name */
  am: string
  valid: boolean
  clustered: boolean
  replident: boolean
  /** oid of the constraint this index implements (p/u/x), if any */
  constraintOid: string | null
  /** parent index when attached to a partitioned index */
  parentOid: string | null
  comment: string | null
  /** statistics targets on expression columns: [column number, value] */
  statistics: Array<[number, number]>
}

export interface CatTrigger {
  oid: string
  name: string
  tableOid: string
  def: string
  enabled: 'O' | 'D' | 'R' | 'A'
  comment: string | null
}

export interface CatRule {
  oid: string
  name: string
  tableOid: string
  def: string
  enabled: 'O' | 'D' | 'R' | 'A'
  comment: string | null
}

export interface CatPolicy {
  oid: string
  name: string
  tableOid: string
  permissive: boolean
  command: 'r' | 'a' | 'w' | 'd' | '*'
  roles: string[]
  using: string | null
  withCheck: string | null
  comment: string | null
}

export interface CatStatistics {
  oid: string
  schema: string
  name: string
  tableOid: string
  def: string
  target: number | null
  owner: string
  comment: string | null
}

export type RelKind = 'r' | 'p' | 'v' | 'm'

export interface CatRelation {
  oid: string
  schema: string
  name: string
  kind: RelKind
  rowTypeOid: string | null
  rowArrayOid: string | null
  /** the _RETURN rule of a view or materialized view */
  returnRuleOid: string | null
  unlogged: boolean
  owner: string
  comment: string | null
  acl: Acl
  reloptions: string[] | null
  toastOptions: string[] | null
  am: string | null
  /** partitioned tables: pg_get_partkeydef */
  partitionKey: string | null
  /** partitions: parent oid and FOR VALUES … */
  partitionOf: string | null
  partitionBound: string | null
  /** plain inheritance parents, in order */
  inherits: string[]
  replident: 'd' | 'n' | 'f' | 'i'
  rowSecurity: boolean
  forceRowSecurity: boolean
  /** views and matviews: pg_get_viewdef */
  viewDef: string | null
  populated: boolean
  columns: CatColumn[]
  constraints: CatConstraint[]
}

export interface CatDependency {
  /** referencing object: `catalog:oid` (catalog as regclass text, e.g. pg_class) */
  from: string
  fromSub: number
  to: string
  toSub: number
  type: 'n' | 'a'
}

export interface SkippedObject {
  kind: string
  schema: string | null
  name: string
  reason: string
}

export interface CatalogModel {
  serverVersionNum: number
  database: string
  schemas: CatSchema[]
  extensions: CatExtension[]
  /** `catalog:oid` of every extension member → extension oid */
  extensionMembers: Map<string, string>
  types: CatType[]
  functions: CatFunction[]
  sequences: CatSequence[]
  relations: CatRelation[]
  indexes: CatIndex[]
  triggers: CatTrigger[]
  rules: CatRule[]
  policies: CatPolicy[]
  statistics: CatStatistics[]
  dependencies: CatDependency[]
  skipped: SkippedObject[]
}

const s = (v: unknown): string => String(v)
const sn = (v: unknown): string | null => (v === null || v === undefined ? null : String(v))

/** Reads everything; the caller has set search_path = '' and is inside a transaction. */
export async function readCatalog(client: Queryable, filter: SchemaFilter = {}): Promise<CatalogModel> {
  const p = filterParams(filter)
  const head = await client.query<{v: string; db: string}>(`SELECT pg_catalog.current_setting('server_version_num') AS v, pg_catalog.current_database() AS db`)
  const v = Number(head.rows[0]!.v)
  const q = async <T extends pg.QueryResultRow>(sql: string, params: unknown[] = p): Promise<T[]> => (await client.query<T>(sql, params)).rows

  const schemas = (
    await q(`WITH ${NS_CTE}
      SELECT ns.oid, ns.nspname AS name, pg_catalog.pg_get_userbyid(n.nspowner) AS owner, ${aclJson('n.nspacl')} AS acl,
             pg_catalog.obj_description(ns.oid, 'pg_namespace') AS comment
        FROM ns JOIN pg_catalog.pg_namespace n ON n.oid = ns.oid ORDER BY ns.nspname`)
  ).map((r) => ({oid: s(r.oid), name: r.name, owner: r.owner, comment: r.comment, acl: r.acl}))

  // Extensions created by the user (plpgsql comes with the template database and is left alone).
  const extensions = (
    await q(`WITH ${NS_CTE}
      SELECT x.oid, x.extname AS name, ns.nspname AS schema, x.extversion AS version,
             pg_catalog.obj_description(x.oid, 'pg_extension') AS comment
        FROM pg_catalog.pg_extension x JOIN ns ON ns.oid = x.extnamespace
       WHERE x.oid >= 16384 ORDER BY x.extname`)
  ).map((r) => ({oid: s(r.oid), name: r.name, schema: r.schema, version: r.version, comment: r.comment}))

  const extensionMembers = new Map<string, string>()
  for (const r of await q(
    `SELECT e.classid::pg_catalog.regclass::text AS cat, e.objid, e.refobjid FROM pg_catalog.pg_depend e
      WHERE e.deptype = 'e' AND e.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass`,
    [],
  ))
    extensionMembers.set(`${r.cat}:${s(r.objid)}`, s(r.refobjid))

  const typeRows = await q(`WITH ${NS_CTE}
    SELECT t.oid, t.typarray, ns.nspname AS schema, t.typname AS name, t.typtype AS kind, t.typrelid,
           pg_catalog.pg_get_userbyid(t.typowner) AS owner, pg_catalog.obj_description(t.oid, 'pg_type') AS comment, ${aclJson('t.typacl')} AS acl,
           CASE WHEN t.typtype = 'e' THEN ARRAY(SELECT enumlabel::text FROM pg_catalog.pg_enum WHERE enumtypid = t.oid ORDER BY enumsortorder) END AS labels,
           CASE WHEN t.typtype = 'd' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod) END AS base_type,
           t.typnotnull, pg_catalog.pg_get_expr(t.typdefaultbin, 0) AS typdefault,
           CASE WHEN t.typtype = 'd' AND t.typcollation <> 0 AND t.typcollation IS DISTINCT FROM bt.typcollation
                THEN pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname) END AS collation,
           CASE WHEN t.typtype = 'r' THEN pg_catalog.format_type(r.rngsubtype, NULL) END AS subtype,
           CASE WHEN t.typtype = 'r' AND NOT opc.opcdefault THEN pg_catalog.quote_ident(opcn.nspname) || '.' || pg_catalog.quote_ident(opc.opcname) END AS opclass,
           CASE WHEN t.typtype = 'r' AND r.rngcollation <> 0 AND r.rngcollation IS DISTINCT FROM st.typcollation
                THEN pg_catalog.quote_ident(rcn.nspname) || '.' || pg_catalog.quote_ident(rco.collname) END AS rng_collation,
           CASE WHEN r.rngcanonical <> 0 THEN r.rngcanonical::pg_catalog.regproc::text END AS canonical,
           CASE WHEN r.rngsubdiff <> 0 THEN r.rngsubdiff::pg_catalog.regproc::text END AS subdiff,
           CASE WHEN t.typtype = 'r' THEN mt.typname END AS multirange_name, r.rngmultitypid AS multirange_oid
      FROM pg_catalog.pg_type t JOIN ns ON ns.oid = t.typnamespace
      LEFT JOIN pg_catalog.pg_type bt ON bt.oid = t.typbasetype
      LEFT JOIN pg_catalog.pg_collation co ON co.oid = t.typcollation
      LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
      LEFT JOIN pg_catalog.pg_range r ON r.rngtypid = t.oid
      LEFT JOIN pg_catalog.pg_type st ON st.oid = r.rngsubtype
      LEFT JOIN pg_catalog.pg_opclass opc ON opc.oid = r.rngsubopc
      LEFT JOIN pg_catalog.pg_namespace opcn ON opcn.oid = opc.opcnamespace
      LEFT JOIN pg_catalog.pg_collation rco ON rco.oid = r.rngcollation
      LEFT JOIN pg_catalog.pg_namespace rcn ON rcn.oid = rco.collnamespace
      LEFT JOIN pg_catalog.pg_type mt ON mt.oid = r.rngmultitypid
     WHERE t.typtype IN ('e', 'r', 'd', 'c')
       AND (t.typtype <> 'c' OR (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c')
       AND ${notExtensionMember('pg_catalog.pg_type', 't')}
     ORDER BY ns.nspname, t.typname`)
  const typeOids = typeRows.map((r) => s(r.oid))
  const compositeRelOids = typeRows.filter((r) => r.kind === 'c').map((r) => s(r.typrelid))
  const attrs = new Map<string, CatCompositeAttribute[]>()
  if (compositeRelOids.length) {
    for (const r of await q(
      `SELECT a.attrelid, a.attname AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
              CASE WHEN a.attcollation <> 0 AND a.attcollation IS DISTINCT FROM t.typcollation
                   THEN pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname) END AS collation
         FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
         LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
         LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
        WHERE a.attrelid = ANY ($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum`,
      [compositeRelOids],
    )) {
      const k = s(r.attrelid)
      if (!attrs.has(k)) attrs.set(k, [])
      attrs.get(k)!.push({name: r.name, type: r.type, collation: r.collation})
    }
  }
  const domainCons = new Map<string, CatDomainConstraint[]>()
  if (typeOids.length) {
    for (const r of await q(
      `SELECT c.oid, c.contypid, c.conname AS name, pg_catalog.pg_get_constraintdef(c.oid) AS def, c.contype, c.convalidated,
              pg_catalog.obj_description(c.oid, 'pg_constraint') AS comment
         FROM pg_catalog.pg_constraint c WHERE c.contypid = ANY ($1::oid[]) ORDER BY c.contypid, c.conname`,
      [typeOids],
    )) {
      const k = s(r.contypid)
      if (!domainCons.has(k)) domainCons.set(k, [])
      domainCons.get(k)!.push({oid: s(r.oid), name: r.name, def: r.def, type: r.contype, validated: r.convalidated, comment: r.comment})
    }
  }
  const types: CatType[] = typeRows.map((r) => ({
    oid: s(r.oid),
    arrayOid: r.typarray && s(r.typarray) !== '0' ? s(r.typarray) : null,
    schema: r.schema,
    name: r.name,
    kind: r.kind,
    owner: r.owner,
    comment: r.comment,
    acl: r.acl,
    enumLabels: r.labels ?? [],
    attributes: attrs.get(s(r.typrelid)) ?? [],
    relOid: r.kind === 'c' ? s(r.typrelid) : null,
    baseType: r.base_type,
    // From 17 a domain's NOT NULL is a constraint row as well; render it once.
    notNull: r.typnotnull && !(domainCons.get(s(r.oid)) ?? []).some((c) => c.type === 'n'),
    default: r.typdefault,
    collation: r.collation,
    constraints: domainCons.get(s(r.oid)) ?? [],
    subtype: r.subtype,
    subtypeOpclass: r.opclass,
    rangeCollation: r.rng_collation,
    canonical: r.canonical,
    subtypeDiff: r.subdiff,
    multirangeName: r.multirange_name,
    multirangeOid: r.multirange_oid && s(r.multirange_oid) !== '0' ? s(r.multirange_oid) : null,
  }))

  const functions: CatFunction[] = (
    await q(`WITH ${NS_CTE}
      SELECT p.oid, ns.nspname AS schema, p.proname AS name, p.prokind AS kind,
             pg_catalog.pg_get_function_identity_arguments(p.oid) AS args,
             CASE WHEN p.prokind IN ('f', 'p') THEN pg_catalog.pg_get_functiondef(p.oid) END AS def,
             pg_catalog.pg_get_userbyid(p.proowner) AS owner, pg_catalog.obj_description(p.oid, 'pg_proc') AS comment, ${aclJson('p.proacl')} AS acl
        FROM pg_catalog.pg_proc p JOIN ns ON ns.oid = p.pronamespace
       WHERE ${notExtensionMember('pg_catalog.pg_proc', 'p')}
         -- range and multirange constructors come with their type
         AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend i WHERE i.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                         AND i.objid = p.oid AND i.deptype = 'i')
       ORDER BY ns.nspname, p.proname, args`)
  ).map((r) => ({oid: s(r.oid), schema: r.schema, name: r.name, kind: r.kind, identityArgs: r.args, def: r.def, owner: r.owner, comment: r.comment, acl: r.acl}))

  const seqRows = await q(`WITH ${NS_CTE}
    SELECT c.oid, ns.nspname AS schema, c.relname AS name, c.relpersistence = 'u' AS unlogged,
           pg_catalog.format_type(sq.seqtypid, NULL) AS data_type, sq.seqstart::text AS start, sq.seqincrement::text AS increment,
           sq.seqmin::text AS min, sq.seqmax::text AS max, sq.seqcache::text AS cache, sq.seqcycle AS cycle,
           pg_catalog.pg_get_userbyid(c.relowner) AS owner, pg_catalog.obj_description(c.oid, 'pg_class') AS comment, ${aclJson('c.relacl')} AS acl,
           dep.deptype, dep.refobjid AS table_oid, tn.nspname AS table_schema, tc.relname AS table_name, ta.attname AS column_name,
           ta.attnum AS column_num
      FROM pg_catalog.pg_class c JOIN ns ON ns.oid = c.relnamespace
      JOIN pg_catalog.pg_sequence sq ON sq.seqrelid = c.oid
      LEFT JOIN pg_catalog.pg_depend dep ON dep.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND dep.objid = c.oid
           AND dep.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND dep.deptype IN ('a', 'i')
      LEFT JOIN pg_catalog.pg_class tc ON tc.oid = dep.refobjid
      LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace
      LEFT JOIN pg_catalog.pg_attribute ta ON ta.attrelid = dep.refobjid AND ta.attnum = dep.refobjsubid
     WHERE c.relkind = 'S' AND ${notExtensionMember('pg_catalog.pg_class', 'c')}
     ORDER BY ns.nspname, c.relname`)
  const seqOpts = (r: any): CatSequenceOptions => ({
    dataType: r.data_type,
    start: r.start,
    increment: r.increment,
    min: r.min,
    max: r.max,
    cache: r.cache,
    cycle: r.cycle,
  })
  const sequences: CatSequence[] = []
  const identitySeqs = new Map<string, CatColumn['identitySequence']>()
  for (const r of seqRows) {
    if (r.deptype === 'i') {
      identitySeqs.set(`${s(r.table_oid)}:${r.column_num}`, {oid: s(r.oid), schema: r.schema, name: r.name, ...seqOpts(r)})
      continue
    }
    sequences.push({
      oid: s(r.oid),
      schema: r.schema,
      name: r.name,
      unlogged: r.unlogged,
      owner: r.owner,
      comment: r.comment,
      acl: r.acl,
      ...seqOpts(r),
      ownedBy: r.deptype === 'a' ? {tableOid: s(r.table_oid), schema: r.table_schema, table: r.table_name, column: r.column_name} : null,
    })
  }

  const relRows = await q(`WITH ${NS_CTE}
    SELECT c.oid, ns.nspname AS schema, c.relname AS name, c.relkind AS kind, c.reltype, rt.typarray,
           c.relpersistence = 'u' AS unlogged, pg_catalog.pg_get_userbyid(c.relowner) AS owner, ${aclJson('c.relacl')} AS acl,
           pg_catalog.obj_description(c.oid, 'pg_class') AS comment, c.reloptions,
           (SELECT t.reloptions FROM pg_catalog.pg_class t WHERE t.oid = c.reltoastrelid) AS toast_options,
           CASE WHEN am.amname IS DISTINCT FROM 'heap' THEN am.amname END AS am,
           CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END AS partkey,
           CASE WHEN c.relispartition THEN (SELECT i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid) END AS partition_of,
           CASE WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END AS bound,
           CASE WHEN NOT c.relispartition THEN ARRAY(SELECT i.inhparent::text FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid ORDER BY i.inhseqno) END AS inherits,
           c.relreplident AS replident, c.relrowsecurity, c.relforcerowsecurity,
           CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid) END AS viewdef,
           CASE WHEN c.relkind IN ('v', 'm') THEN (SELECT r.oid FROM pg_catalog.pg_rewrite r WHERE r.ev_class = c.oid AND r.rulename = '_RETURN') END AS return_rule,
           c.relispopulated AS populated
      FROM pg_catalog.pg_class c JOIN ns ON ns.oid = c.relnamespace
      LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
      LEFT JOIN pg_catalog.pg_type rt ON rt.oid = c.reltype
     WHERE c.relkind IN ('r', 'p', 'v', 'm') AND ${notExtensionMember('pg_catalog.pg_class', 'c')}
     ORDER BY ns.nspname, c.relname`)
  const relOids = relRows.map((r) => s(r.oid))

  // attstattarget: -1 meant "default" up to 16, NULL from 17.
  const statSet = 'COALESCE(a.attstattarget, -1) >= 0'
  const cols = new Map<string, CatColumn[]>()
  for (const r of await q(
    `SELECT a.attrelid, a.attnum, a.attname AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull,
            d.oid AS def_oid, pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS def, a.attidentity, a.attgenerated AS generated,
            CASE WHEN a.attcollation <> 0 AND a.attcollation IS DISTINCT FROM t.typcollation
                 THEN pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname) END AS collation,
            a.attislocal, a.attinhcount, pg_catalog.col_description(a.attrelid, a.attnum) AS comment,
            CASE WHEN ${statSet} THEN a.attstattarget END AS stat,
            CASE WHEN a.attstorage <> t.typstorage THEN a.attstorage END AS storage,
            NULLIF(a.attcompression, '') AS compression, a.attoptions, ${aclJson('a.attacl')} AS acl
       FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
       LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
       LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
       LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
      WHERE a.attrelid = ANY ($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attrelid, a.attnum`,
    [relOids],
  )) {
    const k = s(r.attrelid)
    if (!cols.has(k)) cols.set(k, [])
    const storage: Record<string, string> = {p: 'plain', e: 'external', x: 'extended', m: 'main'}
    const compression: Record<string, string> = {p: 'pglz', l: 'lz4'}
    cols.get(k)!.push({
      num: r.attnum,
      name: r.name,
      type: r.type,
      notNull: r.attnotnull,
      defaultOid: sn(r.def_oid),
      default: r.def,
      identity: r.attidentity,
      identitySequence: r.attidentity ? (identitySeqs.get(`${k}:${r.attnum}`) ?? null) : null,
      generated: r.generated,
      collation: r.collation,
      isLocal: r.attislocal,
      inhCount: r.attinhcount,
      comment: r.comment,
      statistics: r.stat === null || r.stat === undefined ? null : Number(r.stat),
      storage: r.storage ? (storage[r.storage] ?? null) : null,
      compression: r.compression ? (compression[r.compression] ?? null) : null,
      options: r.attoptions,
      acl: r.acl,
    })
  }

  const cons = new Map<string, CatConstraint[]>()
  const conTypes = v >= 180000 ? `('c', 'n', 'p', 'u', 'x', 'f')` : `('c', 'p', 'u', 'x', 'f')`
  for (const r of await q(
    `SELECT c.oid, c.conrelid, c.conname AS name, c.contype, pg_catalog.pg_get_constraintdef(c.oid) AS def, c.convalidated,
            c.conislocal, c.connoinherit, c.condeferrable, c.condeferred, c.conkey[1] AS col, c.conindid, c.conparentid,
            pg_catalog.obj_description(c.oid, 'pg_constraint') AS comment
       FROM pg_catalog.pg_constraint c
      WHERE c.conrelid = ANY ($1::oid[]) AND c.contype IN ${conTypes}
      ORDER BY c.conrelid, c.conname`,
    [relOids],
  )) {
    const k = s(r.conrelid)
    if (!cons.has(k)) cons.set(k, [])
    cons.get(k)!.push({
      oid: s(r.oid),
      name: r.name,
      type: r.contype,
      def: r.def,
      validated: r.convalidated,
      isLocal: r.conislocal,
      noInherit: r.connoinherit,
      deferrable: r.condeferrable,
      deferred: r.condeferred,
      column: r.contype === 'n' ? Number(r.col) : null,
      indexOid: r.conindid && s(r.conindid) !== '0' ? s(r.conindid) : null,
      hasParent: Boolean(r.conparentid) && s(r.conparentid) !== '0',
      comment: r.comment,
    })
  }

  const relations: CatRelation[] = relRows.map((r) => ({
    oid: s(r.oid),
    schema: r.schema,
    name: r.name,
    kind: r.kind,
    rowTypeOid: r.reltype && s(r.reltype) !== '0' ? s(r.reltype) : null,
    rowArrayOid: r.typarray && s(r.typarray) !== '0' ? s(r.typarray) : null,
    returnRuleOid: sn(r.return_rule),
    unlogged: r.unlogged,
    owner: r.owner,
    comment: r.comment,
    acl: r.acl,
    reloptions: r.reloptions,
    toastOptions: r.toast_options,
    am: r.kind === 'r' || r.kind === 'm' ? r.am : null,
    partitionKey: r.partkey,
    partitionOf: sn(r.partition_of),
    partitionBound: r.bound,
    inherits: r.inherits ?? [],
    replident: r.replident,
    rowSecurity: r.relrowsecurity,
    forceRowSecurity: r.relforcerowsecurity,
    viewDef: r.viewdef,
    populated: r.populated,
    columns: cols.get(s(r.oid)) ?? [],
    constraints: cons.get(s(r.oid)) ?? [],
  }))

  const indexes: CatIndex[] = (
    await q(
      `SELECT i.indexrelid AS oid, n.nspname AS schema, ic.relname AS name, i.indrelid, pg_catalog.pg_get_indexdef(i.indexrelid) AS def,
              am.amname AS am, i.indisvalid, i.indisclustered, i.indisreplident,
              (SELECT c.oid FROM pg_catalog.pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x')) AS con,
              (SELECT h.inhparent FROM pg_catalog.pg_inherits h WHERE h.inhrelid = i.indexrelid) AS parent,
              pg_catalog.obj_description(i.indexrelid, 'pg_class') AS comment,
              ARRAY(SELECT a.attnum::text || ':' || a.attstattarget::text FROM pg_catalog.pg_attribute a
                     WHERE a.attrelid = i.indexrelid AND a.attnum > 0 AND ${statSet}) AS stats
         FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
         JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace
         JOIN pg_catalog.pg_am am ON am.oid = ic.relam
        WHERE i.indrelid = ANY ($1::oid[])
        ORDER BY n.nspname, ic.relname`,
      [relOids],
    )
  ).map((r) => ({
    oid: s(r.oid),
    schema: r.schema,
    name: r.name,
    tableOid: s(r.indrelid),
    def: r.def,
    am: r.am,
    valid: r.indisvalid,
    clustered: r.indisclustered,
    replident: r.indisreplident,
    constraintOid: sn(r.con),
    parentOid: sn(r.parent),
    comment: r.comment,
    statistics: (r.stats as string[]).map((x) => x.split(':').map(Number) as [number, number]),
  }))

  const triggers: CatTrigger[] = (
    await q(
      `SELECT t.oid, t.tgname AS name, t.tgrelid, pg_catalog.pg_get_triggerdef(t.oid) AS def, t.tgenabled AS enabled,
              pg_catalog.obj_description(t.oid, 'pg_trigger') AS comment
         FROM pg_catalog.pg_trigger t
        WHERE t.tgrelid = ANY ($1::oid[]) AND NOT t.tgisinternal AND t.tgparentid = 0
        ORDER BY t.tgrelid, t.tgname`,
      [relOids],
    )
  ).map((r) => ({oid: s(r.oid), name: r.name, tableOid: s(r.tgrelid), def: r.def, enabled: r.enabled, comment: r.comment}))

  const rules: CatRule[] = (
    await q(
      `SELECT r.oid, r.rulename AS name, r.ev_class, pg_catalog.pg_get_ruledef(r.oid) AS def, r.ev_enabled AS enabled,
              pg_catalog.obj_description(r.oid, 'pg_rewrite') AS comment
         FROM pg_catalog.pg_rewrite r WHERE r.ev_class = ANY ($1::oid[]) AND r.rulename <> '_RETURN'
        ORDER BY r.ev_class, r.rulename`,
      [relOids],
    )
  ).map((r) => ({oid: s(r.oid), name: r.name, tableOid: s(r.ev_class), def: r.def, enabled: r.enabled, comment: r.comment}))

  const policies: CatPolicy[] = (
    await q(
      `SELECT p.oid, p.polname AS name, p.polrelid, p.polpermissive, p.polcmd,
              ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r)) END
                      FROM pg_catalog.unnest(p.polroles) AS r ORDER BY 1) AS roles,
              pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS qual, pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) AS withcheck,
              pg_catalog.obj_description(p.oid, 'pg_policy') AS comment
         FROM pg_catalog.pg_policy p WHERE p.polrelid = ANY ($1::oid[]) ORDER BY p.polrelid, p.polname`,
      [relOids],
    )
  ).map((r) => ({
    oid: s(r.oid),
    name: r.name,
    tableOid: s(r.polrelid),
    permissive: r.polpermissive,
    command: r.polcmd,
    roles: r.roles,
    using: r.qual,
    withCheck: r.withcheck,
    comment: r.comment,
  }))

  const statistics: CatStatistics[] = (
    await q(`WITH ${NS_CTE}
      SELECT x.oid, ns.nspname AS schema, x.stxname AS name, x.stxrelid, pg_catalog.pg_get_statisticsobjdef(x.oid) AS def,
             ${v >= 170000 ? 'x.stxstattarget' : 'NULLIF(x.stxstattarget, -1)'} AS target,
             pg_catalog.pg_get_userbyid(x.stxowner) AS owner, pg_catalog.obj_description(x.oid, 'pg_statistic_ext') AS comment
        FROM pg_catalog.pg_statistic_ext x JOIN ns ON ns.oid = x.stxnamespace
       WHERE x.stxrelid = ANY ($3::oid[])
       ORDER BY ns.nspname, x.stxname`, [...p, relOids])
  ).map((r) => ({
    oid: s(r.oid),
    schema: r.schema,
    name: r.name,
    tableOid: s(r.stxrelid),
    def: r.def,
    target: r.target === null || r.target === undefined ? null : Number(r.target),
    owner: r.owner,
    comment: r.comment,
  }))

  // Dependencies among user objects (oids of objects created after initdb start at 16384).
  const dependencies: CatDependency[] = (
    await q(
      `SELECT d.classid::pg_catalog.regclass::text AS cat, d.objid, d.objsubid, d.refclassid::pg_catalog.regclass::text AS refcat,
              d.refobjid, d.refobjsubid, d.deptype
         FROM pg_catalog.pg_depend d WHERE d.deptype IN ('n', 'a') AND d.objid >= 16384 AND d.refobjid >= 16384`,
      [],
    )
  ).map((r) => ({from: `${r.cat}:${s(r.objid)}`, fromSub: r.objsubid, to: `${r.refcat}:${s(r.refobjid)}`, toSub: r.refobjsubid, type: r.deptype}))

  const skipped = await readUnsupported(client, p)
  for (const f of functions)
    if (f.kind === 'a' || f.kind === 'w')
      skipped.push({kind: f.kind === 'a' ? 'aggregate' : 'window function', schema: f.schema, name: `${f.name}(${f.identityArgs})`, reason: 'not supported by schema dump'})

  return {
    serverVersionNum: v,
    database: head.rows[0]!.db,
    schemas,
    extensions,
    extensionMembers,
    types,
    functions: functions.filter((f) => f.kind === 'f' || f.kind === 'p'),
    sequences,
    relations,
    indexes,
    triggers,
    rules,
    policies,
    statistics,
    dependencies,
    skipped,
  }
}

/** User objects of kinds schema dump does not produce, so that nothing is left out silently. */
async function readUnsupported(client: Queryable, p: [string[], string[]]): Promise<SkippedObject[]> {
  const {rows} = await client.query<SkippedObject>(
    `WITH ${NS_CTE}
     SELECT 'foreign table' AS kind, ns.nspname AS schema, c.relname AS name, 'not supported by schema dump' AS reason
       FROM pg_catalog.pg_class c JOIN ns ON ns.oid = c.relnamespace WHERE c.relkind = 'f' AND ${notExtensionMember('pg_catalog.pg_class', 'c')}
     UNION ALL
     SELECT 'collation', ns.nspname, c.collname, 'not supported by schema dump: create it on the target first'
       FROM pg_catalog.pg_collation c JOIN ns ON ns.oid = c.collnamespace WHERE ${notExtensionMember('pg_catalog.pg_collation', 'c')}
     UNION ALL
     SELECT 'operator', ns.nspname, o.oprname, 'not supported by schema dump'
       FROM pg_catalog.pg_operator o JOIN ns ON ns.oid = o.oprnamespace WHERE ${notExtensionMember('pg_catalog.pg_operator', 'o')}
     UNION ALL
     SELECT 'text search configuration', ns.nspname, c.cfgname, 'not supported by schema dump'
       FROM pg_catalog.pg_ts_config c JOIN ns ON ns.oid = c.cfgnamespace WHERE ${notExtensionMember('pg_catalog.pg_ts_config', 'c')}
     UNION ALL
     SELECT 'base type', ns.nspname, t.typname, 'not supported by schema dump (created by an extension or C code)'
       FROM pg_catalog.pg_type t JOIN ns ON ns.oid = t.typnamespace
      WHERE t.typtype IN ('b', 'p') AND t.typelem = 0 AND ${notExtensionMember('pg_catalog.pg_type', 't')}
     UNION ALL
     SELECT 'conversion', ns.nspname, c.conname, 'not supported by schema dump'
       FROM pg_catalog.pg_conversion c JOIN ns ON ns.oid = c.connamespace WHERE ${notExtensionMember('pg_catalog.pg_conversion', 'c')}
     UNION ALL
     SELECT 'event trigger', NULL, e.evtname, 'not supported by schema dump'
       FROM pg_catalog.pg_event_trigger e WHERE ${notExtensionMember('pg_catalog.pg_event_trigger', 'e')}
       AND pg_catalog.cardinality($1::text[]) = 0
     UNION ALL
     SELECT 'default privileges', n.nspname, pg_catalog.pg_get_userbyid(d.defaclrole) || ' ON ' ||
            CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS' WHEN 'T' THEN 'TYPES' WHEN 'n' THEN 'SCHEMAS' ELSE d.defaclobjtype::text END,
            'ALTER DEFAULT PRIVILEGES is not dumped'
       FROM pg_catalog.pg_default_acl d LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace
      WHERE d.defaclnamespace = 0 OR d.defaclnamespace IN (SELECT oid FROM ns)
     UNION ALL
     SELECT 'cast', NULL, pg_catalog.format_type(c.castsource, NULL) || ' AS ' || pg_catalog.format_type(c.casttarget, NULL), 'not supported by schema dump'
       FROM pg_catalog.pg_cast c WHERE c.oid >= 16384 AND ${notExtensionMember('pg_catalog.pg_cast', 'c')}
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend i WHERE i.classid = 'pg_catalog.pg_cast'::pg_catalog.regclass
                        AND i.objid = c.oid AND i.deptype = 'i')
       AND pg_catalog.cardinality($1::text[]) = 0
     ORDER BY 1, 2, 3`,
    p,
  )
  return rows
}
