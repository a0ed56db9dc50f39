// Identifier and literal quoting for generated DDL, and parsing of user-given `schema.table` names.
// Pure: no I/O. Every identifier is always double-quoted (as pg.escapeIdentifier does), so the output
// does not depend on the keyword list of any server version.

import {UsageError} from '../errors.js'

/** `"name"` with embedded double quotes doubled. */
export function qi(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"'
}

/** `"schema"."name"`. */
export function qname(schema: string, name: string): string {
  return `${qi(schema)}.${qi(name)}`
}

/** A standard-conforming string literal (the DDL preamble sets standard_conforming_strings = on). */
export function lit(value: string): string {
  return "'" + value.replace(/'/g, "''") + "'"
}

export interface QualifiedName {
  schema: string
  name: string
}

/**
 * Parses `schema.table` as psql would read it: unquoted parts are folded to lower case, quoted parts
 * keep their case and may contain dots, commas and doubled quotes. No dot means `defaultSchema`
 * (public). Spaces around the dot and around the whole name are ignored.
 */
export function parseQualifiedName(input: string, defaultSchema = 'public'): QualifiedName {
  const parts: string[] = []
  let i = 0
  const s = input.trim()
  if (!s) throw new UsageError('empty table name: give schema.table')
  const skipSpaces = () => {
    while (i < s.length && /\s/.test(s[i]!)) i++
  }
  while (i <= s.length) {
    let part = ''
    skipSpaces()
    if (s[i] === '"') {
      i++
      for (;;) {
        if (i >= s.length) throw new UsageError(`unterminated quoted identifier in "${input}"`)
        if (s[i] === '"') {
          if (s[i + 1] === '"') {
            part += '"'
            i += 2
            continue
          }
          i++
          break
        }
        part += s[i++]
      }
      if (part === '') throw new UsageError(`empty quoted identifier in "${input}"`)
      skipSpaces()
    } else {
      const start = i
      while (i < s.length && s[i] !== '.') {
        if (s[i] === '"') throw new UsageError(`misplaced quote in "${input}"`)
        i++
      }
      part = s.slice(start, i).trim().toLowerCase()
      if (part === '') throw new UsageError(`empty name part in "${input}": give schema.table`)
    }
    parts.push(part)
    if (i >= s.length) break
    if (s[i] !== '.') throw new UsageError(`unexpected character after quoted identifier in "${input}"`)
    i++
    if (i >= s.length) throw new UsageError(`"${input}" ends with a dot: give schema.table`)
  }
  if (parts.length === 1) return {schema: defaultSchema, name: parts[0]!}
  if (parts.length === 2) return {schema: parts[0]!, name: parts[1]!}
  throw new UsageError(`"${input}" has ${parts.length} parts: give schema.table (quote names that contain dots)`)
}

/**
 * A comma-separated list of names (`a, s.b,"X,Y".c`): commas inside double quotes belong to the
 * name; empty items are ignored; duplicates (after folding) are removed, first occurrence kept.
 */
export function parseQualifiedNameList(list: string, defaultSchema = 'public'): QualifiedName[] {
  const specs: string[] = []
  let cur = ''
  let quoted = false
  for (const ch of list) {
    // A doubled quote inside a quoted name toggles twice: still inside.
    if (ch === '"') quoted = !quoted
    if (ch === ',' && !quoted) {
      specs.push(cur)
      cur = ''
    } else cur += ch
  }
  specs.push(cur)
  const out: QualifiedName[] = []
  const seen = new Set<string>()
  for (const spec of specs) {
    if (spec.trim() === '') continue
    const t = parseQualifiedName(spec, defaultSchema)
    const id = JSON.stringify([t.schema, t.name])
    if (!seen.has(id)) {
      seen.add(id)
      out.push(t)
    }
  }
  return out
}

/** `schema.table` for display and sorting keys (unquoted; unambiguous enough for humans). */
export function displayName(schema: string, name: string): string {
  return `${schema}.${name}`
}
