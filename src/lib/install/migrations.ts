// The steep_repl schema as numbered migrations (src/lib/sql/NNN_name.sql), applied in order in one
// transaction under an advisory lock, each recorded in steep_repl.schema_version with its checksum.
// A second install finds nothing pending and changes nothing; two installs at once serialise on the
// lock and the second finds nothing pending.

import {createHash} from 'node:crypto'
import {readdirSync, readFileSync} from 'node:fs'
import path from 'node:path'
import type pg from 'pg'
import {SchemaMismatchError} from '../errors.js'
import {CODE_DIR} from '../version.js'

export const SCHEMA = 'steep_repl'
/** Key of the transaction-scoped advisory lock that serialises install, upgrade and uninstall. */
export const INSTALL_LOCK_SQL = `hashtextextended('steep_repl.install', 0)`

export interface Migration {
  version: number
  name: string
  sql: string
  checksum: string
}

const SQL_DIR = path.join(CODE_DIR, 'lib', 'sql')

let cached: Migration[] | undefined

export function listMigrations(dir = SQL_DIR): Migration[] {
  if (cached && dir === SQL_DIR) return cached
  const out: Migration[] = []
  for (const file of readdirSync(dir).sort()) {
    const m = /^(\d{3})_([a-z0-9_]+)\.sql$/.exec(file)
    if (!m) continue
    const sql = readFileSync(path.join(dir, file), 'utf8')
    out.push({version: Number(m[1]), name: m[2]!, sql, checksum: createHash('sha256').update(sql).digest('hex')})
  }
  // Versions are unique and ascending; gaps are allowed (capabilities reserve their numbers and may
  // land in any order), and install applies whatever is missing, lowest first.
  out.forEach((mig, i) => {
    if (i > 0 && mig.version <= out[i - 1]!.version) throw new Error(`duplicate migration version ${mig.version} (${mig.name})`)
  })
  if (dir === SQL_DIR) cached = out
  return out
}

export function latestVersion(): number {
  return listMigrations().at(-1)?.version ?? 0
}

/** Statements that create the schema and the version table; run by install before migration 001. */
export const BOOTSTRAP_SQL = `CREATE SCHEMA IF NOT EXISTS steep_repl;
REVOKE ALL ON SCHEMA steep_repl FROM PUBLIC;
CREATE TABLE IF NOT EXISTS steep_repl.schema_version (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL DEFAULT current_user
);`

/** Run after migrations: nothing in the schema is usable by PUBLIC (functions default to EXECUTE for PUBLIC). */
export const REVOKE_SQL = `REVOKE ALL ON ALL TABLES IN SCHEMA steep_repl FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA steep_repl FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA steep_repl FROM PUBLIC;`

export interface AppliedRow {
  version: number
  name: string
  checksum: string
  applied_at: Date
}

export interface SchemaState {
  installed: boolean
  version: number
  applied: AppliedRow[]
}

export async function readSchemaState(client: pg.Client): Promise<SchemaState> {
  const {rows} = await client.query<{present: boolean}>(
    `SELECT to_regclass('steep_repl.schema_version') IS NOT NULL AS present`,
  )
  if (!rows[0]?.present) return {installed: false, version: 0, applied: []}
  const res = await client.query<AppliedRow>(
    `SELECT version, name, checksum, applied_at FROM steep_repl.schema_version ORDER BY version`,
  )
  return {installed: true, version: res.rows.at(-1)?.version ?? 0, applied: res.rows}
}

export interface InstallPlan {
  from: number
  to: number
  pending: Migration[]
  /** Applied migrations whose file has changed since (reported, not fatal). */
  modified: Array<{version: number; name: string}>
}

export function planInstall(state: SchemaState, migrations = listMigrations()): InstallPlan {
  const latest = migrations.at(-1)?.version ?? 0
  if (state.version > latest) {
    throw new SchemaMismatchError(
      `the steep_repl schema in this database is at version ${state.version}, newer than this steep-repl knows (${latest})`,
      {hint: 'Upgrade steep-repl to a release that knows this schema version.'},
    )
  }
  const done = new Map(state.applied.map((a) => [a.version, a]))
  const modified = migrations
    .filter((m) => done.has(m.version) && done.get(m.version)!.checksum !== m.checksum)
    .map((m) => ({version: m.version, name: m.name}))
  return {from: state.version, to: latest, pending: migrations.filter((m) => !done.has(m.version)), modified}
}

/** The SQL install would run, for --dry-run. */
export function renderPlanSql(plan: InstallPlan, installed: boolean): string {
  if (plan.pending.length === 0) return '-- steep_repl schema is up to date; nothing to run\n'
  const parts = ['BEGIN;', `SELECT pg_advisory_xact_lock(${INSTALL_LOCK_SQL});`]
  if (!installed) parts.push(BOOTSTRAP_SQL)
  for (const m of plan.pending) {
    parts.push(`-- migration ${String(m.version).padStart(3, '0')}_${m.name}`, m.sql.trim())
    parts.push(
      `INSERT INTO steep_repl.schema_version (version, name, checksum) VALUES (${m.version}, '${m.name}', '${m.checksum}');`,
    )
  }
  parts.push(REVOKE_SQL, 'COMMIT;')
  return parts.join('\n') + '\n'
}

export interface InstallResult {
  from: number
  to: number
  applied: Array<{version: number; name: string}>
  modified: Array<{version: number; name: string}>
  waitedForLock: boolean
}

/**
 * Installs or upgrades in one transaction. onWait is called when another installer holds the lock.
 * On any error the transaction rolls back: the database is left as it was.
 */
export async function install(client: pg.Client, onWait?: () => void): Promise<InstallResult> {
  await client.query('BEGIN')
  try {
    let waited = false
    const got = await client.query<{ok: boolean}>(`SELECT pg_try_advisory_xact_lock(${INSTALL_LOCK_SQL}) AS ok`)
    if (!got.rows[0]?.ok) {
      waited = true
      onWait?.()
      await client.query(`SELECT pg_advisory_xact_lock(${INSTALL_LOCK_SQL})`)
    }
    const state = await readSchemaState(client)
    const plan = planInstall(state)
    if (plan.pending.length > 0) {
      if (!state.installed) await client.query(BOOTSTRAP_SQL)
      for (const m of plan.pending) {
        await client.query(m.sql)
        await client.query(`INSERT INTO steep_repl.schema_version (version, name, checksum) VALUES ($1, $2, $3)`, [
          m.version,
          m.name,
          m.checksum,
        ])
      }
      await client.query(REVOKE_SQL)
    }
    await client.query('COMMIT')
    return {
      from: plan.from,
      to: plan.pending.length ? plan.to : plan.from,
      applied: plan.pending.map((m) => ({version: m.version, name: m.name})),
      modified: plan.modified,
      waitedForLock: waited,
    }
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  }
}
