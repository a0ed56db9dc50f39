// Table names from --tables, pure: "t" is public.t, "s.t" is s.t, double quotes keep case and
// dots ("My Schema"."Odd.Name"); anything else ("a.b.c", empty parts) is a usage error rather than a
// silent guess (upstream turned a.b.c into public.a).

import {UsageError} from '../errors.js'

export interface TableName {
  schema: string
  name: string
}

export const tableLabel = (t: TableName): string => `${t.schema}.${t.name}`

function splitName(spec: string): string[] {
  const parts: string[] = []
  let cur = ''
  let quoted = false
  let wasQuoted = false
  for (let i = 0; i < spec.length; i++) {
    const ch = spec[i]!
    if (quoted) {
      if (ch === '"' && spec[i + 1] === '"') {
        cur += '"'
        i++
      } else if (ch === '"') quoted = false
      else cur += ch
    } else if (ch === '"') {
      quoted = true
      wasQuoted = true
    } else if (ch === '.') {
      parts.push(wasQuoted ? cur : cur.toLowerCase())
      cur = ''
      wasQuoted = false
    } else cur += ch
  }
  if (quoted) throw new UsageError(`unterminated quote in table name ${JSON.stringify(spec)}`)
  parts.push(wasQuoted ? cur : cur.toLowerCase())
  return parts
}

export function parseTableName(spec: string): TableName {
  const s = spec.trim()
  const parts = splitName(s)
  if (parts.some((p) => p === '') || parts.length > 2) {
    throw new UsageError(`invalid table name ${JSON.stringify(spec)}`, {hint: 'Write schema.table or table (public is assumed); quote names with dots or capitals: "My Schema"."Table".'})
  }
  return parts.length === 1 ? {schema: 'public', name: parts[0]!} : {schema: parts[0]!, name: parts[1]!}
}

/** A comma-separated list (commas inside double quotes belong to the name); duplicates removed. */
export function parseTableList(list: string): TableName[] {
  const specs: string[] = []
  let cur = ''
  let quoted = false
  for (const ch of list) {
    if (ch === '"') quoted = !quoted
    if (ch === ',' && !quoted) {
      specs.push(cur)
      cur = ''
    } else cur += ch
  }
  specs.push(cur)
  const out: TableName[] = []
  const seen = new Set<string>()
  for (const s of specs) {
    if (s.trim() === '') continue
    const t = parseTableName(s)
    const id = JSON.stringify([t.schema, t.name])
    if (!seen.has(id)) {
      seen.add(id)
      out.push(t)
    }
  }
  if (out.length === 0) throw new UsageError('--tables names no table', {hint: 'Example: --tables public.orders,public.customers'})
  return out
}
