// Turns a CatalogModel into runnable DDL: one statement per object (with its comments and owner),
// dependency-ordered from pg_depend, split into pre-data (what must exist before rows are loaded)
// and post-data (indexes, constraints, foreign keys, triggers, rules, policies, statistics). Pure: no
// I/O, so it is unit-tested with plain catalog values.
//
// Post-data statements carry a wave: 1 = index builds (one statement per index, independent of each
// other: run them in parallel), 2 = constraints attached to those indexes with ADD CONSTRAINT … USING
// INDEX, replica identity and CLUSTER ON, 3 = partition indexes attached to their parents, 4 = foreign
// keys, triggers, rules, policies, extended statistics, NOT VALID checks, matview refreshes. Within a
// wave a statement may still depend on another (sub-partition index attach chains): run a statement
// once everything in its dependsOn is done; the list order is always a valid sequential order.

import type {Acl, CatalogModel, CatColumn, CatConstraint, CatIndex, CatRelation, CatSequenceOptions, SkippedObject} from './catalog.js'
import {lit, qi, qname} from './names.js'
import {topoSort} from './order.js'

export type Section = 'pre-data' | 'post-data'

export type StatementKind =
  | 'schema'
  | 'extension'
  | 'type'
  | 'domain'
  | 'function'
  | 'procedure'
  | 'sequence'
  | 'table'
  | 'view'
  | 'materialized view'
  | 'sequence owned by'
  | 'attach partition'
  | 'index'
  | 'constraint'
  | 'check constraint'
  | 'domain constraint'
  | 'foreign key'
  | 'attach index'
  | 'replica identity'
  | 'cluster'
  | 'trigger'
  | 'rule'
  | 'policy'
  | 'statistics'
  | 'refresh materialized view'

export interface DdlStatement {
  /** Stable within one extraction (built from catalog oids); not comparable across databases. */
  id: string
  kind: StatementKind
  section: Section
  /** 0 in pre-data; 1-4 in post-data (see the file comment). */
  wave: number
  schema: string | null
  name: string
  /** The table (or view) the statement belongs to, for per-table scheduling. */
  table: {schema: string; name: string} | null
  /** One or more complete SQL commands, each ending with a semicolon. */
  sql: string
  dependsOn: string[]
  /** Removes what `sql` creates, for restores that replace existing objects (snapshot apply --clean). */
  drop?: string
}

export interface SchemaDdl {
  serverVersionNum: number
  database: string
  /** Session settings to run on the target before the statements (what the rendered SQL starts with). */
  settings: string[]
  preData: DdlStatement[]
  postData: DdlStatement[]
  /** User objects of kinds that are not dumped, listed so nothing is left out silently. */
  skipped: SkippedObject[]
  /** Statement ids placed despite a dependency cycle. */
  cycleBreaks: string[]
  /** Each section rendered as a standalone script (session settings first), as renderDdl prints it. */
  sql: {preData: string; postData: string}
}

export interface BuildOptions {
  /** Emit ALTER … OWNER TO (default true). */
  owners?: boolean
  /** Emit GRANT/REVOKE reproducing each object's ACL (default true). */
  privileges?: boolean
}

const role = (r: string | null) => (r === null ? 'PUBLIC' : qi(r))

/**
 * GRANT/REVOKE commands that rebuild an ACL exactly, in its order: REVOKE ALL from PUBLIC and from
 * the owner, then one GRANT per run of entries with the same grantee and grant option. A null ACL
 * (the default privileges) needs nothing. `objectType` is TABLE, SEQUENCE, FUNCTION, SCHEMA, TYPE…
 * Column ACLs (column set) are only granted: a column has no privileges by default. The grantor is
 * not reproduced (grants are made by whoever runs the DDL, recorded as the owner for superusers).
 */
export function renderAcl(objectType: string, target: string, owner: string, acl: Acl, column?: string): string {
  if (acl === null) return ''
  const lines: string[] = []
  if (column === undefined) lines.push(`REVOKE ALL ON ${objectType} ${target} FROM PUBLIC;`, `REVOKE ALL ON ${objectType} ${target} FROM ${qi(owner)};`)
  let i = 0
  while (i < acl.length) {
    const {g, o} = acl[i]!
    const privs: string[] = []
    while (i < acl.length && acl[i]!.g === g && acl[i]!.o === o) privs.push(acl[i++]!.p)
    const what = column === undefined ? privs.join(', ') : privs.map((p) => `${p} (${qi(column)})`).join(', ')
    lines.push(`GRANT ${what} ON ${objectType} ${target} TO ${role(g)}${o ? ' WITH GRANT OPTION' : ''};`)
  }
  return lines.length ? '\n' + lines.join('\n') : ''
}

export const SESSION_SETTINGS = [
  'SET statement_timeout = 0;',
  'SET lock_timeout = 0;',
  'SET idle_in_transaction_session_timeout = 0;',
  "SET client_encoding = 'UTF8';",
  'SET standard_conforming_strings = on;',
  "SELECT pg_catalog.set_config('search_path', '', false);",
  'SET check_function_bodies = false;',
  'SET xmloption = content;',
  'SET client_min_messages = warning;',
  'SET row_security = off;',
]

// Sort ranks: pg_dump-like reading order among statements whose dependencies are all placed.
const RANK: Record<StatementKind, number> = {
  schema: 10,
  extension: 20,
  type: 30,
  domain: 31,
  function: 40,
  procedure: 41,
  sequence: 50,
  table: 60,
  'sequence owned by': 61,
  view: 70,
  'materialized view': 71,
  'attach partition': 80,
  index: 100,
  constraint: 110,
  'replica identity': 111,
  cluster: 112,
  'attach index': 120,
  'check constraint': 130,
  'domain constraint': 131,
  'foreign key': 140,
  trigger: 150,
  rule: 160,
  policy: 170,
  statistics: 180,
  'refresh materialized view': 190,
}

interface Draft extends DdlStatement {
  sortKey: string
}

/** Renders reloptions (`k=v`) as `k='v'`, quoting values as literals. */
export function renderOptions(opts: string[], prefix = ''): string[] {
  return opts.map((o) => {
    const i = o.indexOf('=')
    return i < 0 ? prefix + o : `${prefix}${o.slice(0, i)}=${lit(o.slice(i + 1))}`
  })
}

export function renderSequenceOptions(o: CatSequenceOptions, indent = '    '): string {
  return [
    `AS ${o.dataType}`,
    `START WITH ${o.start}`,
    `INCREMENT BY ${o.increment}`,
    `MINVALUE ${o.min}`,
    `MAXVALUE ${o.max}`,
    `CACHE ${o.cache}`,
    ...(o.cycle ? ['CYCLE'] : []),
  ].join('\n' + indent)
}

const comment = (target: string, text: string | null): string => (text === null ? '' : `\nCOMMENT ON ${target} IS ${lit(text)};`)

/** The column definition inside CREATE TABLE. notNullCon: the 18+ not-null constraint, if any. */
export function renderColumn(c: CatColumn, notNullCon: CatConstraint | undefined, serverVersionNum: number): string {
  let sql = `${qi(c.name)} ${c.type}`
  if (c.collation) sql += ` COLLATE ${c.collation}`
  if (c.generated && c.default !== null) sql += ` GENERATED ALWAYS AS (${c.default}) ${c.generated === 'v' ? 'VIRTUAL' : 'STORED'}`
  else if (c.default !== null) sql += ` DEFAULT ${c.default}`
  if (c.identity) {
    sql += ` GENERATED ${c.identity === 'a' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY`
    const s = c.identitySequence
    if (s) sql += ` (\n        SEQUENCE NAME ${qname(s.schema, s.name)}\n        ${renderSequenceOptions(s, '        ').replace(/^AS \S.*\n\s*/, '')}\n    )`
  }
  if (serverVersionNum >= 180000 && notNullCon) {
    sql += ` CONSTRAINT ${qi(notNullCon.name)} NOT NULL`
    if (notNullCon.noInherit) sql += ' NO INHERIT'
  } else if (c.notNull) sql += ' NOT NULL'
  return sql
}

export function buildDdl(cat: CatalogModel, opts: BuildOptions = {}): SchemaDdl {
  const owners = opts.owners !== false
  const acl = (objectType: string, target: string, ownerRole: string, a: Acl, column?: string) => (opts.privileges === false ? '' : renderAcl(objectType, target, ownerRole, a, column))
  const v = cat.serverVersionNum
  const drafts: Draft[] = []
  /** `catalog:oid` → statement id, for pg_depend edges. */
  const objects = new Map<string, string>()
  const reg = (key: string | null, id: string) => {
    if (key && !objects.has(key)) objects.set(key, id)
  }
  const add = (d: Omit<Draft, 'sortKey'>, sub = ''): Draft => {
    const draft: Draft = {...d, sortKey: [String(RANK[d.kind]).padStart(3, '0'), d.schema ?? '', d.table?.name ?? '', d.name, sub].join('\u0000')}
    drafts.push(draft)
    return draft
  }
  const owner = (target: string, role: string) => (owners ? `\n${target} OWNER TO ${qi(role)};` : '')
  const skipped: SkippedObject[] = [...cat.skipped]

  for (const s of cat.schemas) {
    const id = `schema:${s.oid}`
    reg(`pg_namespace:${s.oid}`, id)
    add({
      id,
      kind: 'schema',
      section: 'pre-data',
      wave: 0,
      schema: null,
      name: s.name,
      table: null,
      sql: `CREATE SCHEMA IF NOT EXISTS ${qi(s.name)};` + owner(`ALTER SCHEMA ${qi(s.name)}`, s.owner) + comment(`SCHEMA ${qi(s.name)}`, s.comment) + acl('SCHEMA', qi(s.name), s.owner, s.acl),
      dependsOn: [],
    })
  }
  const schemaId = new Map(cat.schemas.map((s) => [s.name, `schema:${s.oid}`]))
  const inSchema = (schema: string) => (schemaId.has(schema) ? [schemaId.get(schema)!] : [])

  for (const x of cat.extensions) {
    const id = `extension:${x.oid}`
    reg(`pg_extension:${x.oid}`, id)
    add({
      id,
      kind: 'extension',
      section: 'pre-data',
      wave: 0,
      schema: x.schema,
      name: x.name,
      table: null,
      sql: `CREATE EXTENSION IF NOT EXISTS ${qi(x.name)} WITH SCHEMA ${qi(x.schema)};` + comment(`EXTENSION ${qi(x.name)}`, x.comment),
      dependsOn: inSchema(x.schema),
    })
  }

  for (const t of cat.types) {
    const id = `type:${t.oid}`
    reg(`pg_type:${t.oid}`, id)
    reg(t.arrayOid && `pg_type:${t.arrayOid}`, id)
    reg(t.multirangeOid && `pg_type:${t.multirangeOid}`, id)
    reg(t.relOid && `pg_class:${t.relOid}`, id)
    const name = qname(t.schema, t.name)
    let sql: string
    if (t.kind === 'e') sql = `CREATE TYPE ${name} AS ENUM (${t.enumLabels.length ? '\n    ' + t.enumLabels.map(lit).join(',\n    ') + '\n' : ''});`
    else if (t.kind === 'c')
      sql = `CREATE TYPE ${name} AS (${t.attributes.length ? '\n    ' + t.attributes.map((a) => `${qi(a.name)} ${a.type}${a.collation ? ` COLLATE ${a.collation}` : ''}`).join(',\n    ') + '\n' : ''});`
    else if (t.kind === 'r') {
      const parts = [`subtype = ${t.subtype}`]
      if (t.multirangeName) parts.push(`multirange_type_name = ${qname(t.schema, t.multirangeName)}`)
      if (t.subtypeOpclass) parts.push(`subtype_opclass = ${t.subtypeOpclass}`)
      if (t.rangeCollation) parts.push(`collation = ${t.rangeCollation}`)
      if (t.canonical) parts.push(`canonical = ${t.canonical}`)
      if (t.subtypeDiff) parts.push(`subtype_diff = ${t.subtypeDiff}`)
      sql = `CREATE TYPE ${name} AS RANGE (\n    ${parts.join(',\n    ')}\n);`
    } else {
      sql = `CREATE DOMAIN ${name} AS ${t.baseType}`
      if (t.collation) sql += ` COLLATE ${t.collation}`
      if (t.default !== null) sql += ` DEFAULT ${t.default}`
      if (t.notNull) sql += ' NOT NULL'
      for (const c of t.constraints) {
        reg(`pg_constraint:${c.oid}`, id)
        if (!c.validated) continue
        sql += `\n    CONSTRAINT ${qi(c.name)} ${c.def}`
      }
      sql += ';'
    }
    const what = t.kind === 'd' ? 'DOMAIN' : 'TYPE'
    sql += owner(`ALTER ${what} ${name}`, t.owner) + comment(`${what} ${name}`, t.comment) + acl(what, name, t.owner, t.acl)
    for (const c of t.constraints) if (c.validated) sql += comment(`CONSTRAINT ${qi(c.name)} ON DOMAIN ${name}`, c.comment)
    add({id, kind: t.kind === 'd' ? 'domain' : 'type', section: 'pre-data', wave: 0, schema: t.schema, name: t.name, table: null, sql, dependsOn: inSchema(t.schema), drop: `DROP ${what} IF EXISTS ${name};`})
    for (const c of t.constraints.filter((c) => !c.validated)) {
      const cid = `domain-constraint:${c.oid}`
      objects.set(`pg_constraint:${c.oid}`, cid)
      add({
        id: cid,
        kind: 'domain constraint',
        section: 'post-data',
        wave: 4,
        schema: t.schema,
        name: c.name,
        table: null,
        sql: `ALTER DOMAIN ${name} ADD CONSTRAINT ${qi(c.name)} ${c.def};` + comment(`CONSTRAINT ${qi(c.name)} ON DOMAIN ${name}`, c.comment),
        dependsOn: [id],
      })
    }
  }

  for (const f of cat.functions) {
    const id = `function:${f.oid}`
    reg(`pg_proc:${f.oid}`, id)
    const what = f.kind === 'p' ? 'PROCEDURE' : 'FUNCTION'
    const sig = `${qname(f.schema, f.name)}(${f.identityArgs})`
    add(
      {
        id,
        kind: f.kind === 'p' ? 'procedure' : 'function',
        section: 'pre-data',
        wave: 0,
        schema: f.schema,
        name: `${f.name}(${f.identityArgs})`,
        table: null,
        sql: f.def!.trimEnd().replace(/;?$/, ';') + owner(`ALTER ${what} ${sig}`, f.owner) + comment(`${what} ${sig}`, f.comment) + acl(what, sig, f.owner, f.acl),
        dependsOn: inSchema(f.schema),
        drop: `DROP ${what} IF EXISTS ${sig};`,
      },
      f.identityArgs,
    )
  }

  const relById = new Map(cat.relations.map((r) => [r.oid, r]))
  const relName = (oid: string) => {
    const r = relById.get(oid)
    return r ? qname(r.schema, r.name) : null
  }

  for (const s of cat.sequences) {
    const id = `sequence:${s.oid}`
    reg(`pg_class:${s.oid}`, id)
    const name = qname(s.schema, s.name)
    add({
      id,
      kind: 'sequence',
      section: 'pre-data',
      wave: 0,
      schema: s.schema,
      name: s.name,
      table: null,
      sql: `CREATE ${s.unlogged ? 'UNLOGGED ' : ''}SEQUENCE ${name}\n    ${renderSequenceOptions(s)};` + owner(`ALTER SEQUENCE ${name}`, s.owner) + comment(`SEQUENCE ${name}`, s.comment) + acl('SEQUENCE', name, s.owner, s.acl),
      dependsOn: inSchema(s.schema),
      drop: `DROP SEQUENCE IF EXISTS ${name};`,
    })
    if (s.ownedBy) {
      add({
        id: `owned:${s.oid}`,
        kind: 'sequence owned by',
        section: 'pre-data',
        wave: 0,
        schema: s.schema,
        name: s.name,
        table: {schema: s.ownedBy.schema, name: s.ownedBy.table},
        sql: `ALTER SEQUENCE ${name} OWNED BY ${qname(s.ownedBy.schema, s.ownedBy.table)}.${qi(s.ownedBy.column)};`,
        dependsOn: [id, `table:${s.ownedBy.tableOid}`],
      })
    }
  }

  const indexById = new Map(cat.indexes.map((i) => [i.oid, i]))

  for (const r of cat.relations) {
    const name = qname(r.schema, r.name)
    const tableRef = {schema: r.schema, name: r.name}
    const isView = r.kind === 'v' || r.kind === 'm'
    const id = isView ? `view:${r.oid}` : `table:${r.oid}`
    reg(`pg_class:${r.oid}`, id)
    reg(r.rowTypeOid && `pg_type:${r.rowTypeOid}`, id)
    reg(r.rowArrayOid && `pg_type:${r.rowArrayOid}`, id)
    reg(r.returnRuleOid && `pg_rewrite:${r.returnRuleOid}`, id)
    const deps = [...inSchema(r.schema)]
    let sql: string
    const withOpts = [...renderOptions(r.reloptions ?? []), ...renderOptions(r.toastOptions ?? [], 'toast.')]
    const colComments = r.columns.map((c) => comment(`COLUMN ${name}.${qi(c.name)}`, c.comment)).join('')
    const colAcls = r.columns.map((c) => acl('TABLE', name, r.owner, c.acl, c.name)).join('')

    if (isView) {
      const def = (r.viewDef ?? '').trim().replace(/;$/, '')
      if (r.kind === 'v') {
        sql = `CREATE VIEW ${name}${withOpts.length ? ` WITH (${withOpts.join(', ')})` : ''} AS\n${def};`
      } else {
        sql = `CREATE MATERIALIZED VIEW ${name}${r.am ? ` USING ${qi(r.am)}` : ''}${withOpts.length ? ` WITH (${withOpts.join(', ')})` : ''} AS\n${def}\n  WITH NO DATA;`
      }
      sql += owner(`ALTER ${r.kind === 'v' ? 'VIEW' : 'MATERIALIZED VIEW'} ${name}`, r.owner)
      sql += comment(`${r.kind === 'v' ? 'VIEW' : 'MATERIALIZED VIEW'} ${name}`, r.comment) + colComments + acl('TABLE', name, r.owner, r.acl) + colAcls
      const drop = `DROP ${r.kind === 'v' ? 'VIEW' : 'MATERIALIZED VIEW'} IF EXISTS ${name};`
      add({id, kind: r.kind === 'v' ? 'view' : 'materialized view', section: 'pre-data', wave: 0, schema: r.schema, name: r.name, table: tableRef, sql, dependsOn: deps, drop})
      if (r.kind === 'm' && r.populated) {
        add({
          id: `refresh:${r.oid}`,
          kind: 'refresh materialized view',
          section: 'post-data',
          wave: 4,
          schema: r.schema,
          name: r.name,
          table: tableRef,
          sql: `REFRESH MATERIALIZED VIEW ${name};`,
          dependsOn: [id],
        })
      }
      continue
    }

    const isPartition = r.partitionOf !== null
    const notNullCons = new Map<number, CatConstraint>()
    for (const c of r.constraints) if (c.type === 'n' && c.column !== null) notNullCons.set(c.column, c)
    const lines: string[] = []
    const after: string[] = []
    for (const c of r.columns) {
      reg(c.defaultOid && `pg_attrdef:${c.defaultOid}`, id)
      const nn = notNullCons.get(c.num)
      if (isPartition || c.isLocal) {
        // From 17 a partition shares its parent's identity (no sequence of its own): ATTACH gives it.
        const col = isPartition && c.identity && !c.identitySequence ? {...c, identity: '' as const} : c
        lines.push(renderColumn(col, nn && (nn.isLocal || isPartition) ? nn : undefined, v))
      } else {
        // Inherited column (plain inheritance): only what differs from the parent can be set here.
        if (c.default !== null && !c.generated) after.push(`ALTER TABLE ONLY ${name} ALTER COLUMN ${qi(c.name)} SET DEFAULT ${c.default};`)
        if (v >= 180000) {
          if (nn && nn.isLocal) after.push(`ALTER TABLE ONLY ${name} ADD CONSTRAINT ${qi(nn.name)} NOT NULL ${qi(c.name)}${nn.noInherit ? ' NO INHERIT' : ''};`)
        } else if (c.notNull) after.push(`ALTER TABLE ONLY ${name} ALTER COLUMN ${qi(c.name)} SET NOT NULL;`)
      }
      if (c.statistics !== null) after.push(`ALTER TABLE ONLY ${name} ALTER COLUMN ${qi(c.name)} SET STATISTICS ${c.statistics};`)
      if (c.storage) after.push(`ALTER TABLE ONLY ${name} ALTER COLUMN ${qi(c.name)} SET STORAGE ${c.storage.toUpperCase()};`)
      if (c.compression) after.push(`ALTER TABLE ONLY ${name} ALTER COLUMN ${qi(c.name)} SET COMPRESSION ${c.compression};`)
      if (c.options?.length) after.push(`ALTER TABLE ONLY ${name} ALTER COLUMN ${qi(c.name)} SET (${renderOptions(c.options).join(', ')});`)
    }
    for (const c of r.constraints) {
      if (c.type === 'n') {
        reg(`pg_constraint:${c.oid}`, id)
        continue
      }
      if (c.type !== 'c') continue
      if (c.validated && (c.isLocal || isPartition)) {
        reg(`pg_constraint:${c.oid}`, id)
        lines.push(`CONSTRAINT ${qi(c.name)} ${c.def}`)
      } else if (!c.validated && c.isLocal) {
        const cid = `check:${c.oid}`
        objects.set(`pg_constraint:${c.oid}`, cid)
        add({
          id: cid,
          kind: 'check constraint',
          section: 'post-data',
          wave: 4,
          schema: r.schema,
          name: c.name,
          table: tableRef,
          sql: `ALTER TABLE ${name} ADD CONSTRAINT ${qi(c.name)} ${c.def};` + comment(`CONSTRAINT ${qi(c.name)} ON ${name}`, c.comment),
          dependsOn: [id],
        })
      }
    }
    sql = `CREATE ${r.unlogged ? 'UNLOGGED ' : ''}TABLE ${name} (${lines.length ? '\n    ' + lines.join(',\n    ') + '\n' : ''})`
    if (!isPartition && r.inherits.length) {
      sql += `\nINHERITS (${r.inherits.map((p) => relName(p) ?? p).join(', ')})`
      for (const p of r.inherits) deps.push(`table:${p}`)
    }
    if (r.partitionKey) sql += `\nPARTITION BY ${r.partitionKey}`
    if (r.am) sql += `\nUSING ${qi(r.am)}`
    if (withOpts.length) sql += `\nWITH (${withOpts.join(', ')})`
    sql += ';'
    if (after.length) sql += '\n' + after.join('\n')
    if (r.replident === 'f') sql += `\nALTER TABLE ONLY ${name} REPLICA IDENTITY FULL;`
    else if (r.replident === 'n') sql += `\nALTER TABLE ONLY ${name} REPLICA IDENTITY NOTHING;`
    if (r.rowSecurity) sql += `\nALTER TABLE ${name} ENABLE ROW LEVEL SECURITY;`
    if (r.forceRowSecurity) sql += `\nALTER TABLE ${name} FORCE ROW LEVEL SECURITY;`
    sql += owner(`ALTER TABLE ${name}`, r.owner) + comment(`TABLE ${name}`, r.comment) + colComments + acl('TABLE', name, r.owner, r.acl) + colAcls
    for (const c of r.constraints) if (c.type === 'c' && c.validated && (c.isLocal || isPartition)) sql += comment(`CONSTRAINT ${qi(c.name)} ON ${name}`, c.comment)
    add({id, kind: 'table', section: 'pre-data', wave: 0, schema: r.schema, name: r.name, table: tableRef, sql, dependsOn: deps, drop: `DROP TABLE IF EXISTS ${name};`})

    if (isPartition) {
      add({
        id: `attach:${r.oid}`,
        kind: 'attach partition',
        section: 'pre-data',
        wave: 0,
        schema: r.schema,
        name: r.name,
        table: tableRef,
        sql: `ALTER TABLE ONLY ${relName(r.partitionOf!) ?? r.partitionOf} ATTACH PARTITION ${name} ${r.partitionBound};`,
        dependsOn: [id, `table:${r.partitionOf}`],
      })
    }

    // Constraints that live beside indexes, and foreign keys.
    for (const c of r.constraints) {
      if (c.type === 'f') {
        if (c.hasParent) continue // cloned from the partitioned parent's foreign key
        const cid = `fk:${c.oid}`
        objects.set(`pg_constraint:${c.oid}`, cid)
        add({
          id: cid,
          kind: 'foreign key',
          section: 'post-data',
          wave: 4,
          schema: r.schema,
          name: c.name,
          table: tableRef,
          sql: `ALTER TABLE ${r.kind === 'p' ? '' : 'ONLY '}${name} ADD CONSTRAINT ${qi(c.name)} ${c.def};` + comment(`CONSTRAINT ${qi(c.name)} ON ${name}`, c.comment),
          dependsOn: [id],
        })
      }
    }
  }

  // Indexes and the constraints they implement.
  const conById = new Map<string, {c: CatConstraint; r: CatRelation}>()
  for (const r of cat.relations) for (const c of r.constraints) conById.set(c.oid, {c, r})
  const indexStmt = new Map<string, string>()
  const attachedIndex = (i: CatIndex) => indexStmt.get(i.oid)
  for (const i of cat.indexes) {
    const r = relById.get(i.tableOid)
    if (!r) continue
    const tname = qname(r.schema, r.name)
    const tableRef = {schema: r.schema, name: r.name}
    const tdep = r.kind === 'v' || r.kind === 'm' ? `view:${r.oid}` : `table:${r.oid}`
    const iname = qname(i.schema, i.name)
    if (!i.valid && !r.partitionKey) {
      skipped.push({kind: 'index', schema: i.schema, name: i.name, reason: 'invalid index (a failed CREATE INDEX CONCURRENTLY?): not dumped'})
      continue
    }
    const stats = i.statistics.map(([col, val]) => `\nALTER INDEX ${iname} ALTER COLUMN ${col} SET STATISTICS ${val};`).join('')
    const con = i.constraintOid ? conById.get(i.constraintOid)?.c : undefined
    if (con) {
      const cid = `constraint:${con.oid}`
      const conComment = comment(`CONSTRAINT ${qi(con.name)} ON ${tname}`, con.comment)
      if ((con.type === 'p' || con.type === 'u') && r.kind === 'r' && i.am === 'btree') {
        const iid = `index:${i.oid}`
        add({id: iid, kind: 'index', section: 'post-data', wave: 1, schema: i.schema, name: i.name, table: tableRef, sql: i.def + ';' + stats + comment(`INDEX ${iname}`, i.comment), dependsOn: [tdep]})
        const kw = con.type === 'p' ? 'PRIMARY KEY' : 'UNIQUE'
        add({
          id: cid,
          kind: 'constraint',
          section: 'post-data',
          wave: 2,
          schema: r.schema,
          name: con.name,
          table: tableRef,
          sql: `ALTER TABLE ONLY ${tname} ADD CONSTRAINT ${qi(con.name)} ${kw} USING INDEX ${qi(i.name)}${con.deferrable ? ' DEFERRABLE' : ''}${con.deferred ? ' INITIALLY DEFERRED' : ''};` + conComment,
          dependsOn: [tdep, iid],
        })
      } else {
        add({
          id: cid,
          kind: 'constraint',
          section: 'post-data',
          wave: 1,
          schema: r.schema,
          name: con.name,
          table: tableRef,
          sql: `ALTER TABLE ONLY ${tname} ADD CONSTRAINT ${qi(con.name)} ${con.def};` + stats + conComment + comment(`INDEX ${iname}`, i.comment),
          dependsOn: [tdep],
        })
      }
      objects.set(`pg_constraint:${con.oid}`, cid)
      objects.set(`pg_class:${i.oid}`, cid)
      indexStmt.set(i.oid, cid)
    } else {
      const iid = `index:${i.oid}`
      reg(`pg_class:${i.oid}`, iid)
      indexStmt.set(i.oid, iid)
      add({id: iid, kind: 'index', section: 'post-data', wave: 1, schema: i.schema, name: i.name, table: tableRef, sql: i.def + ';' + stats + comment(`INDEX ${iname}`, i.comment), dependsOn: [tdep]})
    }
    if (i.clustered) {
      add({id: `cluster:${i.oid}`, kind: 'cluster', section: 'post-data', wave: 2, schema: r.schema, name: i.name, table: tableRef, sql: `ALTER TABLE ${tname} CLUSTER ON ${qi(i.name)};`, dependsOn: [indexStmt.get(i.oid)!]})
    }
    if (i.replident && r.replident === 'i') {
      add({
        id: `replident:${r.oid}`,
        kind: 'replica identity',
        section: 'post-data',
        wave: 2,
        schema: r.schema,
        name: r.name,
        table: tableRef,
        sql: `ALTER TABLE ONLY ${tname} REPLICA IDENTITY USING INDEX ${qi(i.name)};`,
        dependsOn: [indexStmt.get(i.oid)!],
      })
    }
  }
  for (const i of cat.indexes) {
    if (!i.parentOid || !indexStmt.has(i.oid)) continue
    const parent = indexById.get(i.parentOid)
    if (!parent || !attachedIndex(parent)) continue
    const r = relById.get(i.tableOid)!
    add({
      id: `index-attach:${i.oid}`,
      kind: 'attach index',
      section: 'post-data',
      wave: 3,
      schema: i.schema,
      name: i.name,
      table: {schema: r.schema, name: r.name},
      sql: `ALTER INDEX ${qname(parent.schema, parent.name)} ATTACH PARTITION ${qname(i.schema, i.name)};`,
      dependsOn: [attachedIndex(parent)!, indexStmt.get(i.oid)!],
    })
  }

  const enabledSql = (tname: string, what: 'TRIGGER' | 'RULE', name: string, e: string) =>
    e === 'D' ? `\nALTER TABLE ${tname} DISABLE ${what} ${qi(name)};` : e === 'R' ? `\nALTER TABLE ${tname} ENABLE REPLICA ${what} ${qi(name)};` : e === 'A' ? `\nALTER TABLE ${tname} ENABLE ALWAYS ${what} ${qi(name)};` : ''
  for (const t of cat.triggers) {
    const r = relById.get(t.tableOid)
    if (!r) continue
    const tname = qname(r.schema, r.name)
    const id = `trigger:${t.oid}`
    reg(`pg_trigger:${t.oid}`, id)
    add({
      id,
      kind: 'trigger',
      section: 'post-data',
      wave: 4,
      schema: r.schema,
      name: t.name,
      table: {schema: r.schema, name: r.name},
      sql: t.def.trimEnd().replace(/;?$/, ';') + enabledSql(tname, 'TRIGGER', t.name, t.enabled) + comment(`TRIGGER ${qi(t.name)} ON ${tname}`, t.comment),
      dependsOn: [r.kind === 'v' || r.kind === 'm' ? `view:${r.oid}` : `table:${r.oid}`],
    })
  }
  for (const u of cat.rules) {
    const r = relById.get(u.tableOid)
    if (!r) continue
    const tname = qname(r.schema, r.name)
    const id = `rule:${u.oid}`
    reg(`pg_rewrite:${u.oid}`, id)
    add({
      id,
      kind: 'rule',
      section: 'post-data',
      wave: 4,
      schema: r.schema,
      name: u.name,
      table: {schema: r.schema, name: r.name},
      sql: u.def.trimEnd().replace(/;?$/, ';') + enabledSql(tname, 'RULE', u.name, u.enabled) + comment(`RULE ${qi(u.name)} ON ${tname}`, u.comment),
      dependsOn: [r.kind === 'v' || r.kind === 'm' ? `view:${r.oid}` : `table:${r.oid}`],
    })
  }
  const polCmd: Record<string, string> = {r: 'SELECT', a: 'INSERT', w: 'UPDATE', d: 'DELETE', '*': 'ALL'}
  for (const p of cat.policies) {
    const r = relById.get(p.tableOid)
    if (!r) continue
    const tname = qname(r.schema, r.name)
    const id = `policy:${p.oid}`
    reg(`pg_policy:${p.oid}`, id)
    let sql = `CREATE POLICY ${qi(p.name)} ON ${tname} AS ${p.permissive ? 'PERMISSIVE' : 'RESTRICTIVE'} FOR ${polCmd[p.command]} TO ${p.roles.join(', ')}`
    if (p.using !== null) sql += ` USING (${p.using})`
    if (p.withCheck !== null) sql += ` WITH CHECK (${p.withCheck})`
    sql += ';' + comment(`POLICY ${qi(p.name)} ON ${tname}`, p.comment)
    add({id, kind: 'policy', section: 'post-data', wave: 4, schema: r.schema, name: p.name, table: {schema: r.schema, name: r.name}, sql, dependsOn: [`table:${r.oid}`]})
  }
  for (const x of cat.statistics) {
    const r = relById.get(x.tableOid)
    const name = qname(x.schema, x.name)
    const id = `statistics:${x.oid}`
    reg(`pg_statistic_ext:${x.oid}`, id)
    let sql = x.def.trimEnd().replace(/;?$/, ';')
    if (x.target !== null) sql += `\nALTER STATISTICS ${name} SET STATISTICS ${x.target};`
    sql += owner(`ALTER STATISTICS ${name}`, x.owner) + comment(`STATISTICS ${name}`, x.comment)
    add({
      id,
      kind: 'statistics',
      section: 'post-data',
      wave: 4,
      schema: x.schema,
      name: x.name,
      table: r ? {schema: r.schema, name: r.name} : null,
      sql,
      dependsOn: [...inSchema(x.schema), ...(r ? [r.kind === 'm' ? `view:${r.oid}` : `table:${r.oid}`] : [])],
    })
  }

  // Edges from pg_depend, mapped onto the statements that create each object.
  const byId = new Map(drafts.map((d) => [d.id, d]))
  const seqOids = new Set(cat.sequences.map((s) => `pg_class:${s.oid}`))
  const resolve = (key: string): string | undefined => {
    const direct = objects.get(key)
    if (direct) return direct
    const ext = cat.extensionMembers.get(key)
    return ext ? objects.get(`pg_extension:${ext}`) : undefined
  }
  for (const d of cat.dependencies) {
    // OWNED BY (auto) is its own statement; a partition's auto dependency on its parent belongs to ATTACH.
    if (d.type === 'a' && d.to.startsWith('pg_class:') && d.from.startsWith('pg_class:')) {
      if (seqOids.has(d.from)) continue
      const child = relById.get(d.from.slice('pg_class:'.length))
      if (child?.partitionOf) continue
    }
    const from = objects.get(d.from)
    const to = resolve(d.to)
    if (!from || !to || from === to) continue
    const draft = byId.get(from)!
    if (!draft.dependsOn.includes(to)) draft.dependsOn.push(to)
  }
  // A matview refresh waits for the refreshes of the matviews it reads.
  for (const d of drafts) {
    if (d.kind !== 'refresh materialized view') continue
    const view = byId.get(d.dependsOn[0]!)!
    for (const dep of view.dependsOn) if (dep.startsWith('view:') && byId.has(`refresh:${dep.slice(5)}`)) d.dependsOn.push(`refresh:${dep.slice(5)}`)
  }
  // A pre-data statement that needs a post-data one (a view grouping by a primary key) moves to post-data.
  for (let changed = true; changed; ) {
    changed = false
    for (const d of drafts) {
      if (d.section !== 'pre-data') continue
      if (d.dependsOn.some((x) => byId.get(x)?.section === 'post-data')) {
        d.section = 'post-data'
        d.wave = 4
        d.sortKey = '999' + d.sortKey
        changed = true
      }
    }
  }
  for (const d of drafts) if (d.section === 'post-data') d.sortKey = `${d.wave}\u0000${d.sortKey}`

  const pre = topoSort(drafts.filter((d) => d.section === 'pre-data'))
  const post = topoSort(drafts.filter((d) => d.section === 'post-data'))
  const strip = ({sortKey: _k, ...st}: Draft): DdlStatement => st
  const ddl: SchemaDdl = {
    serverVersionNum: v,
    database: cat.database,
    settings: SESSION_SETTINGS,
    preData: pre.ordered.map(strip),
    postData: post.ordered.map(strip),
    skipped,
    cycleBreaks: [...pre.cycleBreaks, ...post.cycleBreaks],
    sql: {preData: '', postData: ''},
  }
  ddl.sql = {preData: renderDdl(ddl, {sections: ['pre-data'], header: false}), postData: renderDdl(ddl, {sections: ['post-data'], header: false})}
  return ddl
}

/** Post-data statements grouped by wave (1-4), each group in a valid order. */
export function postDataWaves(ddl: Pick<SchemaDdl, 'postData'>): DdlStatement[][] {
  const waves: DdlStatement[][] = [[], [], [], []]
  for (const s of ddl.postData) waves[Math.min(Math.max(s.wave, 1), 4) - 1]!.push(s)
  return waves
}

/** A `--` comment line safe for any object name (no line breaks reach the SQL). */
export function sqlComment(text: string): string {
  // eslint-disable-next-line no-control-regex
  return '-- ' + text.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

export interface RenderOptions {
  sections?: Section[]
  /** Header comments with the source and the skipped objects (default true). */
  header?: boolean
}

/** The DDL as one SQL script: the session settings, then each statement under a comment line. */
export function renderDdl(ddl: SchemaDdl, opts: RenderOptions = {}): string {
  const sections = opts.sections ?? ['pre-data', 'post-data']
  const out: string[] = []
  if (opts.header !== false) {
    out.push(sqlComment(`steep-repl schema dump of database ${ddl.database} (server_version_num ${ddl.serverVersionNum}), sections: ${sections.join(', ')}`))
    for (const s of ddl.skipped) out.push(sqlComment(`WARNING: not dumped: ${s.kind} ${s.schema === null ? '' : s.schema + '.'}${s.name}: ${s.reason}`))
    for (const c of ddl.cycleBreaks) out.push(sqlComment(`WARNING: dependency cycle broken at ${c}`))
    out.push('')
  }
  out.push(...ddl.settings, '')
  for (const section of sections) {
    const list = section === 'pre-data' ? ddl.preData : ddl.postData
    out.push(sqlComment(`section ${section}: ${list.length} statement(s)`), '')
    for (const st of list) {
      const where = st.table && st.kind !== 'table' && st.kind !== 'view' && st.kind !== 'materialized view' ? ` on ${st.table.schema}.${st.table.name}` : ''
      out.push(sqlComment(`${st.kind} ${st.schema === null ? '' : st.schema + '.'}${st.name}${where}${section === 'post-data' ? ` (wave ${st.wave})` : ''}`), st.sql, '')
    }
  }
  return out.join('\n')
}
