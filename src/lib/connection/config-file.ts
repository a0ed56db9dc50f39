// The configuration file: YAML with named connections, validated with zod. Found at --config,
// else $STEEP_REPL_CONFIG, else $XDG_CONFIG_HOME/steep-repl/config.yaml (~/.config/… by default).
// A missing default file is not an error; a missing file that was named explicitly is.
//
//   connections:
//     source:
//       url: postgres://app@db1.example.com/app?sslmode=verify-full
//     target:
//       host: db2.example.com
//       dbname: app
//       user: app
//       password_env: TARGET_PGPASSWORD   # the password stays in the environment or ~/.pgpass

import {readFileSync, statSync} from 'node:fs'
import {homedir} from 'node:os'
import path from 'node:path'
import {parse as parseYaml, YAMLParseError} from 'yaml'
import {z} from 'zod'
import {ConfigError} from '../errors.js'
import {registerSecret} from '../redact.js'
import {parseConnString, type ConnInfo} from './conninfo.js'

const sslmode = z.enum(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'])

const connectionSchema = z
  .object({
    url: z.string().min(1).optional(),
    conninfo: z.string().min(1).optional(),
    host: z.string().min(1).optional(),
    port: z.union([z.number().int().min(1).max(65535), z.string().regex(/^\d+$/)]).optional(),
    dbname: z.string().min(1).optional(),
    user: z.string().min(1).optional(),
    password: z.string().optional(),
    password_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name').optional(),
    sslmode: sslmode.optional(),
    sslrootcert: z.string().optional(),
    sslcert: z.string().optional(),
    sslkey: z.string().optional(),
    application_name: z.string().optional(),
    connect_timeout: z.union([z.number().int().min(0), z.string().regex(/^\d+$/)]).optional(),
    options: z.string().optional(),
  })
  .strict()
  .refine((c) => !(c.url && c.conninfo), {message: 'give either url or conninfo, not both'})

/** walrus rule settings (flags and STEEP_REPL_WALRUS_* variables win over these). */
const walrusSchema = z
  .object({
    threshold: z.number().int().min(1).optional(),
    max: z.union([z.string(), z.number()]).optional(),
    min: z.union([z.string(), z.number()]).optional(),
    shrink: z.boolean().optional(),
    shrink_factor: z.number().gt(0).lt(1).optional(),
    shrink_intervals: z.number().int().min(1).optional(),
    cooldown: z.union([z.string(), z.number()]).optional(),
    max_changes_per_hour: z.number().int().min(0).optional(),
  })
  .strict()

export const configSchema = z
  .object({
    walrus: walrusSchema.optional(),
    connections: z
      .record(z.string().regex(/^[A-Za-z0-9_.-]+$/, 'connection names use letters, digits, _ . -'), connectionSchema)
      .default({}),
  })
  .strict()

export type ConfigFile = z.infer<typeof configSchema>
export type NamedConnection = z.infer<typeof connectionSchema>

export interface LoadedConfig {
  path: string
  exists: boolean
  config: ConfigFile
}

export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || path.join(homedir(), '.config')
  return path.join(base, 'steep-repl', 'config.yaml')
}

export function loadConfig(explicitPath?: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const named = explicitPath || env.STEEP_REPL_CONFIG
  const file = named || defaultConfigPath(env)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' && !named) return {path: file, exists: false, config: {connections: {}}}
    throw new ConfigError(`cannot read config file ${file}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`)
  }
  let raw: unknown
  try {
    raw = parseYaml(text) ?? {}
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` (line ${err.linePos[0].line})` : ''
    throw new ConfigError(`config file ${file} is not valid YAML${where}: ${(err as Error).message.split('\n')[0]}`)
  }
  const parsed = configSchema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    const key = issue.path.length ? issue.path.join('.') : '(top level)'
    throw new ConfigError(`config file ${file}: key "${key}": ${describeIssue(issue)}`)
  }
  for (const [name, c] of Object.entries(parsed.data.connections)) {
    if (c.password !== undefined) {
      registerSecret(c.password)
      if (process.platform !== 'win32' && (statSync(file).mode & 0o077) !== 0) {
        throw new ConfigError(
          `config file ${file}: key "connections.${name}.password": the file holds a password but is readable by others`,
          {hint: `chmod 600 ${file}, or use password_env / ~/.pgpass instead of a password in the file`},
        )
      }
    }
  }
  return {path: file, exists: true, config: parsed.data}
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`
  return issue.message
}

/** Turns a named connection into libpq keywords (password_env resolved here). */
export function namedConnectionInfo(
  loaded: LoadedConfig,
  name: string,
  env: NodeJS.ProcessEnv = process.env,
): ConnInfo {
  const c = loaded.config.connections[name]
  if (!c) throw new ConfigError(`no connection named "${name}" in ${loaded.path}`)
  const where = `config file ${loaded.path}: key "connections.${name}`
  let info: ConnInfo = {}
  const base = c.url ?? c.conninfo
  if (base) {
    try {
      info = parseConnString(base)
    } catch (err) {
      throw new ConfigError(`${where}.${c.url ? 'url' : 'conninfo'}": ${(err as Error).message}`)
    }
  }
  const fields = ['host', 'port', 'dbname', 'user', 'password', 'sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'application_name', 'connect_timeout', 'options'] as const
  for (const f of fields) {
    const v = c[f]
    if (v !== undefined) info[f] = String(v)
  }
  if (c.password_env) {
    const pw = env[c.password_env]
    if (pw === undefined) throw new ConfigError(`${where}.password_env": environment variable ${c.password_env} is not set`)
    registerSecret(pw)
    info.password = pw
  }
  for (const f of ['sslrootcert', 'sslcert', 'sslkey'] as const) {
    if (info[f]?.startsWith('~/')) info[f] = path.join(homedir(), info[f]!.slice(2))
  }
  return info
}
