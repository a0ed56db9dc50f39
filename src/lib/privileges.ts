// Checks of the connecting role's privileges that commands run before they change anything, so a
// role without a needed grant is refused with exit 1 and the GRANT that fixes it, instead of
// failing halfway (docs/privileges.md lists what each command needs).

import pg from 'pg'
import {PermissionError} from './errors.js'

interface RoleFacts {
  role: string
  superuser: boolean
  database: string
  versionNum: number
}

async function roleFacts(c: pg.Client): Promise<RoleFacts> {
  const {rows} = await c.query<RoleFacts>(
    `SELECT current_user::text AS role, r.rolsuper AS superuser, current_database()::text AS database,
            current_setting('server_version_num')::int AS "versionNum"
       FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`,
  )
  return rows[0]!
}

const ident = (s: string) => pg.escapeIdentifier(s)
const DOCS = 'docs/privileges.md lists the grants each command needs.'

/**
 * Loading rows as a replica (session_replication_role = replica: no user trigger fires) needs a
 * superuser or SET on the parameter (PostgreSQL 15+). `what` says who does it, for the message.
 */
export async function requireReplicaSessions(c: pg.Client, what: string): Promise<void> {
  const f = await roleFacts(c)
  if (f.superuser) return
  const {rows} = await c.query<{ok: boolean}>(`SELECT has_parameter_privilege('session_replication_role', 'SET') AS ok`)
  if (rows[0]!.ok) return
  throw new PermissionError(
    `role ${f.role} may not SET session_replication_role, which ${what} uses so that no user trigger fires while rows are loaded; as a superuser: GRANT SET ON PARAMETER session_replication_role TO ${ident(f.role)};`,
    {hint: DOCS},
  )
}

/** CREATE SUBSCRIPTION in the connected database: a superuser, or (16+) pg_create_subscription and CREATE on the database. */
export async function requireSubscriptionRights(c: pg.Client): Promise<void> {
  const f = await roleFacts(c)
  if (f.superuser) return
  if (f.versionNum < 160000) {
    throw new PermissionError(`role ${f.role} may not create a subscription: on PostgreSQL ${Math.floor(f.versionNum / 10000)} only a superuser may`, {
      hint: 'Run it as a superuser, or upgrade the target to PostgreSQL 16 or later (GRANT pg_create_subscription).',
    })
  }
  const {rows} = await c.query<{member: boolean; create: boolean}>(
    `SELECT pg_has_role('pg_create_subscription', 'USAGE') AS member, has_database_privilege(current_database(), 'CREATE') AS create`,
  )
  const missing: string[] = []
  const grants: string[] = []
  if (!rows[0]!.member) {
    missing.push('membership in pg_create_subscription')
    grants.push(`GRANT pg_create_subscription TO ${ident(f.role)};`)
  }
  if (!rows[0]!.create) {
    missing.push(`CREATE on database ${f.database}`)
    grants.push(`GRANT CREATE ON DATABASE ${ident(f.database)} TO ${ident(f.role)};`)
  }
  if (!missing.length) return
  throw new PermissionError(`role ${f.role} may not create a subscription in database ${f.database}: it lacks ${missing.join(' and ')}; as a superuser: ${grants.join(' ')}`, {hint: DOCS})
}

/**
 * A publication of `tables` (kept slots): CREATE on the database, and ownership of every table
 * (PostgreSQL lets only a table's owner publish it; membership in the owning role counts).
 */
export async function requirePublishable(c: pg.Client, tables: Array<{schema: string; name: string}>, what: string): Promise<void> {
  const f = await roleFacts(c)
  if (f.superuser) return
  const {rows: db} = await c.query<{ok: boolean}>(`SELECT has_database_privilege(current_database(), 'CREATE') AS ok`)
  if (!db[0]!.ok) {
    throw new PermissionError(
      `role ${f.role} may not create a publication in database ${f.database} (${what}): it lacks CREATE on the database; as a superuser: GRANT CREATE ON DATABASE ${ident(f.database)} TO ${ident(f.role)};`,
      {hint: DOCS},
    )
  }
  if (!tables.length) return
  const {rows} = await c.query<{t: string; owner: string}>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS t, c.relowner::regrole::text AS owner
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest($1::text[], $2::text[]))
        AND NOT pg_has_role(c.relowner, 'USAGE')
      ORDER BY 1`,
    [tables.map((t) => t.schema), tables.map((t) => t.name)],
  )
  if (!rows.length) return
  const owners = [...new Set(rows.map((r) => r.owner))]
  const list = rows.map((r) => r.t)
  throw new PermissionError(
    `role ${f.role} must own the tables it publishes (${what}), and does not own ${list.slice(0, 5).join(', ')}${list.length > 5 ? `, … (${list.length} tables)` : ''}; as a superuser, make it a member of their owner: ${owners.map((o) => `GRANT ${o} TO ${ident(f.role)};`).join(' ')}`,
    {hint: `${DOCS} Or select only tables the role owns.`},
  )
}

/** Writes under a replication origin as a replica (merge on a node with replication configured). */
export async function missingReplicaWriteGrants(c: pg.Client): Promise<{role: string; missing: string[]; grants: string[]}> {
  const f = await roleFacts(c)
  if (f.superuser) return {role: f.role, missing: [], grants: []}
  const fns = ['pg_replication_origin_create(text)', 'pg_replication_origin_session_setup(text)', 'pg_replication_origin_session_reset()']
  const {rows} = await c.query<{set: boolean; fns: boolean[]}>(
    `SELECT has_parameter_privilege('session_replication_role', 'SET') AS set,
            ARRAY(SELECT has_function_privilege(f, 'EXECUTE') FROM unnest($1::text[]) WITH ORDINALITY AS x(f, i) ORDER BY i) AS fns`,
    [fns],
  )
  const missing: string[] = []
  const grants: string[] = []
  if (!rows[0]!.set) {
    missing.push('SET on session_replication_role')
    grants.push(`GRANT SET ON PARAMETER session_replication_role TO ${ident(f.role)};`)
  }
  const noExec = fns.filter((_, i) => !rows[0]!.fns[i])
  if (noExec.length) {
    missing.push(`EXECUTE on ${noExec.join(', ')}`)
    grants.push(`GRANT EXECUTE ON FUNCTION ${noExec.join(', ')} TO ${ident(f.role)};`)
  }
  return {role: f.role, missing, grants}
}
