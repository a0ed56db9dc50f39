// Passwords never reach output. Two layers:
//  1. every password the process learns (from --db, a config file, PGPASSWORD, .pgpass) is
//     registered here, and redact() replaces any occurrence of it in any text;
//  2. redact() also masks password-shaped parts of connection strings it has never seen
//     (URL userinfo, password=... pairs), so a string that never went through the parser is safe.
// All output paths (human, --json, errors, logs, job params) go through redact().

const secrets = new Set<string>()

export function registerSecret(secret: string | undefined | null): void {
  // Very short secrets would mask innocent text everywhere; they are still masked in
  // connection-string positions by the patterns below.
  if (secret && secret.length >= 3) secrets.add(secret)
}

export const MASK = '********'

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

export function redact(text: string): string {
  let out = text
  // postgres://user:secret@host -> postgres://user:********@host
  out = out.replace(/\b(postgres(?:ql)?:\/\/[^:/?#@\s]*):([^@\s/]*)@/gi, `$1:${MASK}@`)
  // password=secret / password='se cret' / password: secret (key=value strings and YAML-ish)
  out = out.replace(/\b(password|passwd|sslpassword)(\s*[=:]\s*)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s&,'"]+)/gi, `$1$2${MASK}`)
  for (const s of secrets) {
    out = out.replace(new RegExp(escapeRe(s), 'g'), MASK)
    const enc = encodeURIComponent(s)
    if (enc !== s) out = out.replace(new RegExp(escapeRe(enc), 'g'), MASK)
  }
  return out
}

/** Deep-redacts a JSON-able value (strings anywhere, keys named like passwords). */
export function redactValue<T>(value: T): T {
  if (typeof value === 'string') return redact(value) as T
  if (Array.isArray(value)) return value.map((v) => redactValue(v)) as T
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      out[k] = /^(password|passwd|sslpassword)$/i.test(k) && v != null ? MASK : redactValue(v)
    }
    return out as T
  }
  return value
}
