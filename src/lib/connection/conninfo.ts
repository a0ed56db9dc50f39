// Pure parsing of libpq connection strings: URLs (postgres:// and postgresql://) and key=value
// strings, with libpq's quoting and percent-decoding rules. No environment, no I/O: the result is
// the set of keywords the string itself gives; resolve.ts layers service files, PG* variables,
// .pgpass and defaults on top, in libpq's order.

import {UsageError} from '../errors.js'

/** Keywords this tool honours. */
export const SUPPORTED_KEYWORDS = [
  'host',
  'hostaddr',
  'port',
  'dbname',
  'user',
  'password',
  'passfile',
  'service',
  'connect_timeout',
  'application_name',
  'fallback_application_name',
  'options',
  'sslmode',
  'sslrootcert',
  'sslcert',
  'sslkey',
  'sslpassword',
  'keepalives',
  'keepalives_idle',
] as const

/** Keywords libpq knows that change nothing here (accepted so existing strings keep working). */
const ACCEPTED_IGNORED = new Set([
  'client_encoding',
  'keepalives_interval',
  'keepalives_count',
  'tcp_user_timeout',
  'target_session_attrs',
  'load_balance_hosts',
  'gssencmode',
  'krbsrvname',
  'gsslib',
  'gssdelegation',
  'sslcompression',
  'sslcrl',
  'sslcrldir',
  'sslsni',
  'ssl_min_protocol_version',
  'ssl_max_protocol_version',
  'sslcertmode',
  'sslnegotiation',
  'requirepeer',
  'require_auth',
  'channel_binding',
  'replication',
])

export type ConnKeyword = (typeof SUPPORTED_KEYWORDS)[number]
export type ConnInfo = Partial<Record<ConnKeyword, string>>

const SUPPORTED = new Set<string>(SUPPORTED_KEYWORDS)

export function looksLikeUrl(s: string): boolean {
  return /^postgres(ql)?:\/\//i.test(s)
}

export function looksLikeKeyValue(s: string): boolean {
  return /^\s*[A-Za-z_][A-Za-z0-9_]*\s*=/.test(s)
}

/** Parses a URL or key=value string; throws UsageError naming the problem (never echoing a password). */
export function parseConnString(s: string): ConnInfo {
  if (looksLikeUrl(s)) return parseUrl(s)
  if (looksLikeKeyValue(s)) return parseKeyValue(s)
  throw new UsageError('not a connection string: expected postgres://… , postgresql://… or key=value pairs')
}

function put(info: ConnInfo, key: string, value: string, where: string): void {
  const k = key === 'ssl' ? 'sslmode' : key // pgjdbc/node-pg style ssl=true in URLs
  if (key === 'ssl') value = /^(1|true|on|yes)$/i.test(value) ? 'require' : 'disable'
  if (SUPPORTED.has(k)) {
    info[k as ConnKeyword] = value
    return
  }
  if (ACCEPTED_IGNORED.has(k)) return
  throw new UsageError(`invalid connection option "${key}" in ${where}`, {
    hint: 'Use libpq keywords: host, port, dbname, user, sslmode, sslrootcert, sslcert, sslkey, application_name, connect_timeout, options.',
  })
}

function decode(s: string, what: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    throw new UsageError(`invalid percent-encoding in the ${what} of the connection URL`)
  }
}

export function parseUrl(url: string): ConnInfo {
  const info: ConnInfo = {}
  const m = /^postgres(?:ql)?:\/\/([^/?#]*)(?:\/([^?#]*))?(?:\?([^#]*))?(?:#.*)?$/i.exec(url)
  if (!m) throw new UsageError('malformed connection URL')
  let authority = m[1] ?? ''
  const at = authority.lastIndexOf('@')
  if (at >= 0) {
    const userinfo = authority.slice(0, at)
    authority = authority.slice(at + 1)
    const colon = userinfo.indexOf(':')
    const user = colon >= 0 ? userinfo.slice(0, colon) : userinfo
    if (user) info.user = decode(user, 'user name')
    if (colon >= 0) info.password = decode(userinfo.slice(colon + 1), 'password')
  }
  if (authority) {
    const hosts: string[] = []
    const ports: string[] = []
    for (const part of authority.split(',')) {
      let host = part
      let port = ''
      if (part.startsWith('[')) {
        const close = part.indexOf(']')
        if (close < 0) throw new UsageError('malformed IPv6 address in the connection URL (missing "]")')
        host = part.slice(1, close)
        const rest = part.slice(close + 1)
        if (rest && !rest.startsWith(':')) throw new UsageError('malformed host in the connection URL')
        port = rest.slice(1)
      } else {
        const colon = part.lastIndexOf(':')
        if (colon >= 0) {
          host = part.slice(0, colon)
          port = part.slice(colon + 1)
        }
      }
      hosts.push(decode(host, 'host'))
      ports.push(port)
    }
    if (hosts.some((h) => h !== '')) info.host = hosts.join(',')
    if (ports.some((p) => p !== '')) info.port = ports.join(',')
  }
  if (m[2]) info.dbname = decode(m[2], 'database name')
  if (m[3]) {
    for (const pair of m[3].split('&')) {
      if (!pair) continue
      const eq = pair.indexOf('=')
      if (eq < 0) throw new UsageError(`missing "=" after "${decode(pair, 'query')}" in the connection URL`)
      put(info, decode(pair.slice(0, eq), 'query'), decode(pair.slice(eq + 1), 'query'), 'the connection URL')
    }
  }
  return info
}

export function parseKeyValue(s: string): ConnInfo {
  const info: ConnInfo = {}
  let i = 0
  const n = s.length
  const ws = () => {
    while (i < n && /\s/.test(s[i]!)) i++
  }
  while (true) {
    ws()
    if (i >= n) break
    const keyStart = i
    while (i < n && s[i] !== '=' && !/\s/.test(s[i]!)) i++
    const key = s.slice(keyStart, i)
    ws()
    if (s[i] !== '=') throw new UsageError(`missing "=" after "${key}" in the connection string`)
    i++
    ws()
    let value = ''
    if (s[i] === "'") {
      i++
      let closed = false
      while (i < n) {
        const c = s[i]!
        if (c === '\\' && i + 1 < n) {
          value += s[i + 1]
          i += 2
        } else if (c === "'") {
          i++
          closed = true
          break
        } else {
          value += c
          i++
        }
      }
      if (!closed) throw new UsageError(`unterminated quoted value for "${key}" in the connection string`)
    } else {
      while (i < n && !/\s/.test(s[i]!)) {
        if (s[i] === '\\' && i + 1 < n) {
          value += s[i + 1]
          i += 2
        } else {
          value += s[i]
          i++
        }
      }
    }
    if (!key) throw new UsageError('empty keyword in the connection string')
    put(info, key, value, 'the connection string')
  }
  return info
}

/** Renders params back into a key=value string (quoted as libpq expects). */
export function toKeyValue(info: ConnInfo): string {
  return Object.entries(info)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${/^[^\s'\\]+$/.test(v!) ? v : `'${v!.replace(/(['\\])/g, '\\$1')}'`}`)
    .join(' ')
}
