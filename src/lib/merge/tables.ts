// Table names from --tables: the schema capability's parser (src/lib/schema/names.ts), so `merge`
// reads `schema.table` exactly as `schema compare`, `schema diff` and snapshots do ("t" is public.t,
// unquoted parts fold to lower case, double quotes keep case, dots, commas and doubled quotes).

import {UsageError} from '../errors.js'
import {displayName, parseQualifiedNameList, type QualifiedName} from '../schema/names.js'

export type TableName = QualifiedName

export const tableLabel = (t: TableName): string => displayName(t.schema, t.name)

/** The --tables list; at least one table. */
export function parseTableList(list: string): TableName[] {
  const out = parseQualifiedNameList(list)
  if (out.length === 0) throw new UsageError('--tables names no table', {hint: 'Example: --tables public.orders,public.customers'})
  return out
}
