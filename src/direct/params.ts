// Job params: validated against the operation's zod schema, and never holding a secret. A job that
// needs another server names it — a connection name from the executor's config file, or a node id
// registered in steep_repl.nodes — and the executor resolves it with its own credentials. Pure.

import {z} from 'zod'

const SECRET_KEY = /^(password|passwd|sslpassword|secret|pgpassword)$/i
const URL_WITH_PASSWORD = /[a-z]+:\/\/[^/@\s"]*:[^/@\s"]+@/i
const KV_PASSWORD = /(^|[^a-z_])(password|sslpassword)\s*=/i

/** The JSON path of the first secret-looking value in params, or null. Mirrors the table's CHECK. */
export function findSecret(value: unknown, path = 'params'): string | null {
  if (typeof value === 'string') return URL_WITH_PASSWORD.test(value) || KV_PASSWORD.test(value) ? path : null
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const hit = findSecret(value[i], `${path}[${i}]`)
      if (hit) return hit
    }
    return null
  }
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (SECRET_KEY.test(k)) return `${path}.${k}`
      const hit = findSecret(v, `${path}.${k}`)
      if (hit) return hit
    }
  }
  return null
}

/**
 * A reference to another server inside job params:
 *   - `prod` — a connection name from the executor's config file (its password from password_env
 *     or ~/.pgpass on the executor's host);
 *   - `node:<id>` — a node registered in steep_repl.nodes of the queue database: host and port from
 *     the registry, user, password and dbname from the executor's environment (PG* variables,
 *     ~/.pgpass, service file), the database name defaulting to the queue database's;
 *   - a connection string without a password (`host=db2 dbname=app user=repl`), the password from
 *     the executor's ~/.pgpass or PGPASSWORD.
 */
export const connRefSchema = z
  .string()
  .min(1)
  .max(1000)
  .refine((s) => !URL_WITH_PASSWORD.test(s) && !KV_PASSWORD.test(s), {
    message: 'must not contain a password: give a connection name from the config file, node:<id>, or a connection string whose password comes from ~/.pgpass',
  })

export type ConnRef = z.infer<typeof connRefSchema>

export type ParsedConnRef = {kind: 'node'; nodeId: string} | {kind: 'name'; name: string} | {kind: 'conninfo'; conninfo: string}

export function parseConnRef(ref: string): ParsedConnRef {
  const node = /^node:(.+)$/.exec(ref)
  if (node) return {kind: 'node', nodeId: node[1]!}
  if (/^[A-Za-z0-9_.-]+$/.test(ref)) return {kind: 'name', name: ref}
  return {kind: 'conninfo', conninfo: ref}
}

/** One line per problem, with the path of the offending param. */
export function describeZodError(err: z.ZodError, root = 'params'): string {
  return err.issues
    .slice(0, 5)
    .map((i) => `${[root, ...i.path.map(String)].join('.')}: ${i.message}`)
    .join('; ')
}
