// Turns what the user gave (--db value, a config file, the environment) into complete connection
// parameters, in libpq's order: the string's own keywords, then the service file entry, then the PG*
// variables, then .pgpass for the password, then the compiled-in defaults. This is what makes
// `steep-repl -d X` reach the same server as `psql X`.

import {existsSync, readFileSync, statSync} from 'node:fs'
import {homedir, userInfo} from 'node:os'
import path from 'node:path'
import {ConfigError, UsageError} from '../errors.js'
import {registerSecret} from '../redact.js'
import type {LoadedConfig, namedConnectionInfo} from './config-file.js'
import {type ConnInfo, type ConnKeyword, looksLikeKeyValue, looksLikeUrl, parseConnString} from './conninfo.js'

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const
export type SslMode = (typeof SSL_MODES)[number]

export interface ConnParams {
  host: string
  hostaddr?: string
  port: number
  dbname: string
  user: string
  password?: string
  sslmode: SslMode
  sslrootcert?: string
  sslcert?: string
  sslkey?: string
  sslpassword?: string
  connectTimeoutSec?: number
  applicationName?: string
  options?: string
  keepalives: boolean
  keepalivesIdleSec?: number
  /** Where the parameters came from, for messages: "--db", "connection \"prod\"", "environment". */
  source: string
}

const ENV_MAP: Array<[string, ConnKeyword]> = [
  ['PGHOST', 'host'],
  ['PGHOSTADDR', 'hostaddr'],
  ['PGPORT', 'port'],
  ['PGDATABASE', 'dbname'],
  ['PGUSER', 'user'],
  ['PGPASSWORD', 'password'],
  ['PGPASSFILE', 'passfile'],
  ['PGSERVICE', 'service'],
  ['PGOPTIONS', 'options'],
  ['PGAPPNAME', 'application_name'],
  ['PGSSLMODE', 'sslmode'],
  ['PGSSLROOTCERT', 'sslrootcert'],
  ['PGSSLCERT', 'sslcert'],
  ['PGSSLKEY', 'sslkey'],
  ['PGCONNECT_TIMEOUT', 'connect_timeout'],
]

export interface ResolveInput {
  /** The --db value (URL, key=value string or a connection name), if given. */
  db?: string
  config?: LoadedConfig
  env?: NodeJS.ProcessEnv
  /** For messages: the flag that carried the value (default --db). */
  flag?: string
  /** config-file.ts's namedConnectionInfo, passed in so yaml and zod load only when a name is used. */
  named?: typeof namedConnectionInfo
}

/** Picks the keywords the user gave, before env/defaults. */
export function explicitInfo(input: ResolveInput): {info: ConnInfo; source: string} {
  const env = input.env ?? process.env
  const flag = input.flag ?? '--db'
  const db = input.db?.trim()
  if (!db) return {info: {}, source: 'environment'}
  if (looksLikeUrl(db) || looksLikeKeyValue(db)) {
    try {
      return {info: parseConnString(db), source: flag}
    } catch (err) {
      if (err instanceof UsageError) throw new UsageError(`${flag}: ${err.message}`, {hint: err.hint})
      throw err
    }
  }
  if (/^[A-Za-z0-9_.-]+$/.test(db)) {
    if (!input.config?.config.connections[db]) {
      const where = input.config?.exists ? input.config.path : `${input.config?.path ?? 'the config file'} (not found)`
      throw new ConfigError(`${flag}: "${db}" is not a connection string and no connection of that name is in ${where}`, {
        hint: 'Give a postgres:// URL, key=value pairs such as "host=db1 dbname=app", or add the name under connections: in the config file.',
      })
    }
    if (!input.named) throw new Error('resolveConnection: a connection name needs input.named')
    return {info: input.named(input.config, db, env), source: `connection "${db}"`}
  }
  throw new UsageError(`${flag}: not a connection string or a connection name`, {
    hint: 'Give a postgres:// URL, key=value pairs such as "host=db1 dbname=app", or a name from the config file.',
  })
}

export function resolveConnection(input: ResolveInput): ConnParams {
  const env = input.env ?? process.env
  const {info, source} = explicitInfo(input)
  const merged: ConnInfo = {...info}
  const service = merged.service ?? env.PGSERVICE
  if (service) fillFrom(merged, readService(service, env))
  for (const [name, key] of ENV_MAP) {
    const v = env[name]
    if (merged[key] === undefined && v !== undefined && v !== '') merged[key] = v
  }
  return finish(merged, source, env)
}

function fillFrom(target: ConnInfo, from: ConnInfo): void {
  for (const [k, v] of Object.entries(from)) {
    if (target[k as ConnKeyword] === undefined) target[k as ConnKeyword] = v
  }
}

function intParam(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined || value === '') return undefined
  if (!/^\d+$/.test(value.trim())) throw new UsageError(`invalid ${name} value "${value}": expected an integer`)
  const n = Number(value.trim())
  if (n < min || n > max) throw new UsageError(`invalid ${name} value "${value}": must be between ${min} and ${max}`)
  return n
}

function finish(info: ConnInfo, source: string, env: NodeJS.ProcessEnv): ConnParams {
  if (info.host?.includes(',') || info.port?.includes(',')) {
    throw new UsageError('multiple hosts in one connection string are not supported', {
      hint: 'Give the single host (the primary) this command should use.',
    })
  }
  const port = intParam(info.port, 'port', 1, 65535) ?? 5432
  const sslmode = (info.sslmode ?? 'prefer') as SslMode
  if (!SSL_MODES.includes(sslmode)) {
    throw new UsageError(`invalid sslmode value "${info.sslmode}": use one of ${SSL_MODES.join(', ')}`)
  }
  const user = info.user || osUser()
  const host = info.host || defaultHost(port)
  const dbname = info.dbname || user
  let password = info.password
  if (password === undefined) password = lookupPgpass(info.passfile ?? defaultPassfile(env), host, port, dbname, user)
  registerSecret(password)
  registerSecret(info.sslpassword)
  const sslrootcert = info.sslrootcert ?? existingFile(path.join(homedir(), '.postgresql', 'root.crt'))
  return {
    host,
    hostaddr: info.hostaddr,
    port,
    dbname,
    user,
    password,
    sslmode,
    sslrootcert,
    sslcert: info.sslcert ?? existingFile(path.join(homedir(), '.postgresql', 'postgresql.crt')),
    sslkey: info.sslkey ?? existingFile(path.join(homedir(), '.postgresql', 'postgresql.key')),
    sslpassword: info.sslpassword,
    connectTimeoutSec: intParam(info.connect_timeout, 'connect_timeout', 0, 86400),
    applicationName: info.application_name ?? info.fallback_application_name,
    options: info.options,
    keepalives: info.keepalives !== '0',
    keepalivesIdleSec: intParam(info.keepalives_idle, 'keepalives_idle', 0, 86400),
    source,
  }
}

function osUser(): string {
  try {
    return userInfo().username
  } catch {
    return 'postgres'
  }
}

function existingFile(p: string): string | undefined {
  return existsSync(p) ? p : undefined
}

/** libpq's default: the Unix socket directory when a server socket is there, else localhost. */
function defaultHost(port: number): string {
  for (const dir of ['/var/run/postgresql', '/tmp']) {
    if (existsSync(path.join(dir, `.s.PGSQL.${port}`))) return dir
  }
  return 'localhost'
}

function defaultPassfile(env: NodeJS.ProcessEnv): string {
  return env.PGPASSFILE || path.join(homedir(), '.pgpass')
}

/** Splits one .pgpass line into its five fields (':' separates, '\' escapes). */
export function splitPgpassLine(line: string): string[] {
  const fields: string[] = []
  let cur = ''
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!
    if (c === '\\' && i + 1 < line.length) {
      cur += line[++i]
    } else if (c === ':' && fields.length < 4) {
      fields.push(cur)
      cur = ''
    } else cur += c
  }
  fields.push(cur)
  return fields
}

export function matchPgpass(text: string, host: string, port: number, dbname: string, user: string): string | undefined {
  // A socket directory matches the "localhost" entry, as in libpq.
  const h = host.startsWith('/') ? 'localhost' : host
  for (const raw of text.split(/\r?\n/)) {
    if (!raw || raw.startsWith('#')) continue
    const f = splitPgpassLine(raw)
    if (f.length !== 5) continue
    const ok = (pat: string, v: string) => pat === '*' || pat === v
    if (ok(f[0]!, h) && ok(f[1]!, String(port)) && ok(f[2]!, dbname) && ok(f[3]!, user)) return f[4]
  }
  return undefined
}

function lookupPgpass(file: string, host: string, port: number, dbname: string, user: string): string | undefined {
  let text: string
  try {
    const st = statSync(file)
    if (!st.isFile()) return undefined
    // libpq ignores a password file that group or others can read.
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      process.stderr.write(`warning: password file "${file}" has group or world access; permissions should be u=rw (0600) or less\n`)
      return undefined
    }
    text = readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
  return matchPgpass(text, host, port, dbname, user)
}

function readService(name: string, env: NodeJS.ProcessEnv): ConnInfo {
  const files = [
    env.PGSERVICEFILE || path.join(homedir(), '.pg_service.conf'),
    path.join(env.PGSYSCONFDIR || '/etc/postgresql-common', 'pg_service.conf'),
  ]
  for (const file of files) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      continue
    }
    const info = parseServiceFile(text, name)
    if (info) return info
  }
  throw new UsageError(`definition of service "${name}" not found`)
}

export function parseServiceFile(text: string, name: string): ConnInfo | undefined {
  let current: string | undefined
  let found: ConnInfo | undefined
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (!line || line.startsWith('#')) continue
    const section = /^\[(.+)\]$/.exec(line)
    if (section) {
      if (found) break
      current = section[1]
      if (current === name) found = {}
      continue
    }
    if (found && current === name) {
      const eq = line.indexOf('=')
      if (eq < 0) throw new UsageError(`syntax error in service file line "${line}"`)
      const key = line.slice(0, eq).trim() as ConnKeyword
      found[key] = line.slice(eq + 1).trim()
    }
  }
  return found
}

/** user@host:port/dbname — safe to print (no password). */
export function describeConnection(p: Pick<ConnParams, 'user' | 'host' | 'port' | 'dbname'>): string {
  const host = p.host.startsWith('/') ? `[${p.host}]` : p.host.includes(':') ? `[${p.host}]` : p.host
  return `${p.user}@${host}:${p.port}/${p.dbname}`
}
