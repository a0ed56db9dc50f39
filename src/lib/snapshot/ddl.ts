// The DDL a snapshot carries, from the schema capability, extracted inside the snapshot
// transaction: pre-data as a runnable script, post-data both as a script (for people) and as a
// plan (for apply: statements with their wave and dependencies, run in parallel wave by wave).

import type pg from 'pg'
import {type DdlStatement, extractSchemaDdl, lockRelations, renderDdl, type SchemaDdl} from '../schema/index.js'
import type {Selection} from './catalog.js'
import {parseQualifiedName} from './catalog.js'

export interface PostDataPlan {
  settings: string[]
  statements: Array<Pick<DdlStatement, 'id' | 'kind' | 'wave' | 'schema' | 'name' | 'table' | 'sql' | 'dependsOn'>>
}

export interface SnapshotDdl {
  preData: string
  postData: string
  /** JSON of PostDataPlan. */
  postDataPlan: string
  /** DROP … IF EXISTS of every object the DDL creates, in reverse order (apply --clean). */
  clean: string
}

/** Drops the statements of tables outside a --table / --exclude-table selection. */
export function selectStatements(ddl: SchemaDdl, sel: Selection): SchemaDdl {
  const key = (t: {schema: string; name: string}) => `${t.schema}\u0000${t.name}`
  const only = sel.tables?.length ? new Set(sel.tables.map((t) => key(parseQualifiedName(t)))) : undefined
  const excluded = new Set((sel.excludeTables ?? []).map((t) => key(parseQualifiedName(t))))
  if (!only && !excluded.size) return ddl
  const keep = (st: DdlStatement) => !st.table || ((!only || only.has(key(st.table))) && !excluded.has(key(st.table)))
  const pre = ddl.preData.filter(keep)
  const post = ddl.postData.filter(keep)
  const ids = new Set([...pre, ...post].map((s) => s.id))
  const prune = (s: DdlStatement) => ({...s, dependsOn: s.dependsOn.filter((d) => ids.has(d))})
  return {...ddl, preData: pre.map(prune), postData: post.map(prune)}
}

/**
 * The statements that remove what the DDL creates, dependents first (the reverse of creation
 * order), each IF EXISTS and without CASCADE: an object of the target that the snapshot does not
 * carry and that depends on one of these makes the drop fail instead of vanishing with it.
 */
export function renderClean(ddl: Pick<SchemaDdl, 'settings' | 'preData' | 'postData'>): string {
  const drops = [...ddl.preData, ...ddl.postData].flatMap((st) => (st.drop ? [st.drop] : [])).reverse()
  return [...ddl.settings, '', ...drops, ''].join('\n')
}

/**
 * ACCESS SHARE locks on everything the DDL reads (as pg_dump takes first): no DDL can change the
 * selected tables until the snapshot transaction of `client` ends.
 */
export async function lockSnapshotRelations(client: pg.Client, sel: Selection): Promise<void> {
  await lockRelations(client, {schemas: sel.schemas})
}

/** The DDL of the selection, read in the snapshot transaction of `client` (locked by the caller). */
export async function snapshotDdl(client: pg.Client, sel: Selection): Promise<SnapshotDdl> {
  const ddl = selectStatements(await extractSchemaDdl(client, {schemas: sel.schemas}), sel)
  const plan: PostDataPlan = {
    settings: ddl.settings,
    statements: ddl.postData.map((s) => ({id: s.id, kind: s.kind, wave: s.wave, schema: s.schema, name: s.name, table: s.table, sql: s.sql, dependsOn: s.dependsOn})),
  }
  return {
    preData: renderDdl(ddl, {sections: ['pre-data']}),
    postData: renderDdl(ddl, {sections: ['post-data']}),
    postDataPlan: JSON.stringify(plan, null, 1) + '\n',
    clean: renderClean(ddl),
  }
}
