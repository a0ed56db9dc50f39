// What the schema commands share: flags and the human renderings of their results (pure).

import {Flags} from '@oclif/core'
import {renderTable} from '../ui/output.js'
import type {CompareReport, TableComparison} from './compare.js'
import type {TableFingerprint} from './fingerprint.js'

export const schemaFilterFlags = {
  schema: Flags.string({
    char: 'n',
    summary: 'Only this schema (exact name; repeat for several).',
    multiple: true,
    helpValue: 'NAME',
  }),
  'exclude-schema': Flags.string({
    char: 'N',
    summary: 'Leave this schema out (exact name; repeat for several).',
    multiple: true,
    helpValue: 'NAME',
  }),
}

export const nodeFlags = {
  'node-a': Flags.string({summary: 'Connection to node A: a postgres:// URL, a key=value string, or a config name.', required: true, helpValue: 'CONN'}),
  'node-b': Flags.string({summary: 'Connection to node B: a postgres:// URL, a key=value string, or a config name.', required: true, helpValue: 'CONN'}),
}

/** Up to `max` items, then how many more. */
export function listSome(items: string[], max = 20): string {
  return items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')} … and ${items.length - max} more`
}

export function renderFingerprints(tables: Array<TableFingerprint & {input?: string}>, showInput = false): string {
  if (tables.length === 0) return 'no tables'
  const out = [renderTable(['table', 'kind', 'columns', 'fingerprint'], tables.map((t) => [`${t.schema}.${t.table}`, t.kind ?? '', t.columnCount, t.fingerprint]))]
  if (showInput) {
    for (const t of tables) out.push('', `${t.schema}.${t.table}:`, ...(t.input ?? '').split('\n').map((l) => `  ${l}`))
  }
  return out.join('\n')
}

export function renderTableDiff(t: TableComparison, a = 'A', b = 'B'): string {
  const lines: string[] = []
  if (t.status === 'LOCAL_ONLY') lines.push(`✗ ${t.key} exists only on node A (${a}): it will not replicate`)
  else if (t.status === 'REMOTE_ONLY') lines.push(`✗ ${t.key} exists only on node B (${b}): it will not replicate`)
  for (const d of t.differences) lines.push(`${d.blocking ? '✗' : '·'} ${d.column}: ${d.message}`)
  return lines.join('\n')
}

export function renderCompare(r: CompareReport): string {
  const out: string[] = [`Comparing schemas: A = ${r.nodeA}, B = ${r.nodeB}`, '']
  const sections: Array<[string, TableComparison[], string]> = [
    ['MATCH', r.tables.filter((t) => t.status === 'MATCH'), 'columns identical'],
    ['MISMATCH', r.tables.filter((t) => t.status === 'MISMATCH'), 'column differences'],
    ['LOCAL_ONLY', r.tables.filter((t) => t.status === 'LOCAL_ONLY'), 'only on A: will not replicate'],
    ['REMOTE_ONLY', r.tables.filter((t) => t.status === 'REMOTE_ONLY'), 'only on B: will not replicate'],
  ]
  for (const [label, list, what] of sections) {
    if (list.length === 0) continue
    out.push(`${label === 'MATCH' ? '✓' : '✗'} ${label} (${list.length} table${list.length === 1 ? '' : 's'}): ${what}`)
    for (const t of list) {
      if (label === 'MATCH' && t.differences.length === 0) continue
      out.push(`    ${t.key}`)
      for (const d of t.differences) out.push(`      ${d.blocking ? '✗' : '·'} ${d.column}: ${d.message}`)
    }
    if (label === 'MATCH') {
      const plain = list.filter((t) => t.differences.length === 0)
      if (plain.length) out.push(`    ${listSome(plain.map((t) => t.key))}`)
    }
  }
  if (r.readiness.length) {
    out.push('', 'Replication readiness:')
    const seqs = r.readiness.filter((i) => i.kind === 'sequence_not_replicated')
    for (const i of r.readiness) {
      if (i.kind === 'sequence_not_replicated') continue
      out.push(`  ${i.blocking ? '✗' : '·'} [${i.node === 'both' ? 'A+B' : i.node.toUpperCase()}] ${i.message}`)
      if (i.hint && i.blocking) out.push(`      ${i.hint}`)
    }
    if (seqs.length) {
      out.push(`  · ${seqs.length} sequence(s) whose values logical replication does not carry: ${listSome(seqs.map((i) => i.object))}`)
      out.push(`      ${seqs[0]!.hint}`)
    }
  }
  const s = r.summary
  out.push('', `Summary: match=${s.match}, mismatch=${s.mismatch}, local_only=${s.localOnly}, remote_only=${s.remoteOnly}, readiness issues=${r.readiness.length} (${r.readiness.filter((i) => i.blocking).length} blocking)`)
  if (r.blocking) out.push('✗ Differences that will break replication were found (exit 3).')
  else if (r.identical && r.readiness.length === 0) out.push('✓ Schemas are identical.')
  else out.push('✓ Compatible for replication (non-blocking differences noted above).')
  return out.join('\n')
}
