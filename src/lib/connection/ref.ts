// A reference to a server that job params may hold: never a password. What the user gave on a
// flag becomes a config connection name (kept as is) or a key=value string without password;
// the resolved parameters (with the password) stay in the process for a direct run.

import {toKeyValue} from './conninfo.js'
import type {ConnParams} from './resolve.js'

export function toConnRef(flagValue: string | undefined, p: ConnParams): string {
  if (flagValue && /^[A-Za-z0-9_.-]+$/.test(flagValue.trim())) return flagValue.trim()
  return conninfoOf(p, false)
}

/**
 * Resolved parameters back into a key=value string another server can use (a subscription's
 * CONNECTION); the password only when asked for.
 */
export function conninfoOf(p: ConnParams, withPassword: boolean): string {
  return toKeyValue({
    host: p.host,
    port: String(p.port),
    dbname: p.dbname,
    user: p.user,
    ...(withPassword && p.password ? {password: p.password} : {}),
    sslmode: p.sslmode,
    ...(p.sslrootcert ? {sslrootcert: p.sslrootcert} : {}),
    ...(p.sslcert ? {sslcert: p.sslcert} : {}),
    ...(p.sslkey ? {sslkey: p.sslkey} : {}),
    ...(p.applicationName ? {application_name: p.applicationName} : {}),
  })
}
