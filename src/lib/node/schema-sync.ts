// --schema-sync for tables that already exist on the target, decided from the schema capability's
// comparison (the report `steep-repl schema compare` prints), never from a comparison of its own.
// Pure: the report comes from compareNodes(source as A, target as B).

import type {CompareReport} from '../schema/compare.js'
import {tableKey} from '../schema/fingerprint.js'

const PUBLICATION_KINDS = new Set(['not_in_publication', 'not_published', 'publication_missing'])

export interface SchemaFindings {
  /** What schema compare counts as blocking (its exit 3), for the tables in scope. */
  blocking: string[]
  /** What it reports without blocking (defaults, collations, column order, …). */
  notes: string[]
}

/**
 * The findings of a compare report about the tables an init loads into: for each such table its
 * blocking status and column differences as compare reports them, and the readiness issues of that
 * table on either node (except publication membership). Tables absent from the target are the init's to create (not in scope).
 */
export function schemaFindings(report: CompareReport, inScope: Array<{schema: string; name: string}>): SchemaFindings {
  const keys = new Set(inScope.map((t) => tableKey(t.schema, t.name)))
  const blocking: string[] = []
  const notes: string[] = []
  for (const t of report.tables) {
    if (!keys.has(t.key)) continue
    if (t.status === 'LOCAL_ONLY' || t.status === 'REMOTE_ONLY') {
      blocking.push(`${t.key}: exists only on ${t.status === 'LOCAL_ONLY' ? report.nodeA : report.nodeB}`)
      continue
    }
    for (const d of t.differences) (d.blocking ? blocking : notes).push(`${t.key}.${d.column}: ${d.message}`)
    // A fingerprint difference compare counts as blocking without a column to name.
    if (t.blocking && !t.differences.some((d) => d.blocking)) blocking.push(`${t.key}: definition differs`)
  }
  for (const r of report.readiness) {
    // Publication membership is the init's own business: it creates the publication.
    if (!keys.has(r.object) || PUBLICATION_KINDS.has(r.kind)) continue
    const side = r.node === 'a' ? report.nodeA : r.node === 'b' ? report.nodeB : 'both nodes'
    ;(r.blocking ? blocking : notes).push(`${r.object} (${side}): ${r.message}`)
  }
  return {blocking, notes}
}
