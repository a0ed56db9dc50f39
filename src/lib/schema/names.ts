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
 * keep their case and may contain dots and doubled quotes. No dot means schema `public`.
 */
export function parseQualifiedName(input: string, defaultSchema = 'public'): QualifiedName {
  const parts: string[] = []
  let i = 0
  const s = input.trim()
  if (!s) throw new UsageError('empty table name: give schema.table')
  while (i <= s.length) {
    let part = ''
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

/** `schema.table` for display and sorting keys (unquoted; unambiguous enough for humans). */
export function displayName(schema: string, name: string): string {
  return `${schema}.${name}`
}
