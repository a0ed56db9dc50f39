// Table fingerprints: one SHA-256 per table over its columns, in order. Pure: no I/O.
//
// The input string (version 1), one line per live column in attnum order, lines joined by "\n"
// (no trailing newline):
//
//   "<column name, with " doubled>" <format_type(atttypid, atttypmod) with search_path = ''> <NULL|NOT NULL>[ COLLATE "<collation schema>"."<collation name>"]
//
// The COLLATE part is present for every column of a collatable type (attcollation <> 0), also when
// it is the default collation ("pg_catalog"."default"). Defaults are not part of it (sequence names
// differ between nodes); they are recorded in the column definitions. A table without columns has
// the empty input. fingerprint = lower-case hex SHA-256 of the input's UTF-8 bytes. The SQL function
// steep_repl.fingerprint_input/compute_fingerprint (migration 003) builds the same string.

import {createHash} from 'node:crypto'

export interface ColumnDefinition {
  name: string
  /** format_type(atttypid, atttypmod) with search_path = '' (user types schema-qualified) */
  type: string
  nullable: boolean
  /** `"schema"."name"` for collatable types, else null */
  collation: string | null
  /** default expression (pg_get_expr) or null; not part of the fingerprint */
  default: string | null
  /** 1-based position among the live columns */
  position: number
  identity: 'always' | 'by default' | null
  generated: 'stored' | 'virtual' | null
}

export type TableKind = 'ordinary' | 'partitioned' | 'partition'

export interface TableFingerprint {
  schema: string
  table: string
  /** null for fingerprints read back from steep_repl.schema_fingerprints (the kind is not stored) */
  kind: TableKind | null
  fingerprint: string
  columnCount: number
  columns: ColumnDefinition[]
}

const dq = (s: string) => '"' + s.replace(/"/g, '""') + '"'

/** `"schema"."name"`, as the fingerprint writes collations. */
export function quotedPair(schema: string, name: string): string {
  return `${dq(schema)}.${dq(name)}`
}

export function fingerprintLine(c: Pick<ColumnDefinition, 'name' | 'type' | 'nullable' | 'collation'>): string {
  return `${dq(c.name)} ${c.type} ${c.nullable ? 'NULL' : 'NOT NULL'}${c.collation ? ` COLLATE ${c.collation}` : ''}`
}

export function fingerprintInput(columns: Array<Pick<ColumnDefinition, 'name' | 'type' | 'nullable' | 'collation' | 'position'>>): string {
  return [...columns]
    .sort((a, b) => a.position - b.position)
    .map(fingerprintLine)
    .join('\n')
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex')
}

export function fingerprintOf(columns: Array<Pick<ColumnDefinition, 'name' | 'type' | 'nullable' | 'collation' | 'position'>>): string {
  return sha256Hex(fingerprintInput(columns))
}

export function tableKey(schema: string, table: string): string {
  return `${schema}.${table}`
}
