// Human and JSON shapes of the merge commands' results, pure.

import {renderTable} from '../ui/output.js'
import type {AnalyzeResult, TableAnalysis} from './analyze.js'
import type {MergeReport} from './audit.js'
import type {RowDiff} from './diff.js'
import type {MergeResult} from './run.js'

export const pkObject = (names: string[], key: string[]): Record<string, string> => Object.fromEntries(names.map((n, i) => [n, key[i]!]))

export interface DetailedRow {
  pk: Record<string, string>
  category: 'conflict' | 'a_only' | 'b_only'
  hashA: string | null
  hashB: string | null
}

export interface AnalyzeTableJson extends Omit<TableAnalysis, 'conflicts' | 'aOnlyRows' | 'bOnlyRows'> {
  rows?: {total: number; offset: number; limit: number; items: DetailedRow[]}
}

export interface AnalyzeJson extends Omit<AnalyzeResult, 'tables'> {
  tables: AnalyzeTableJson[]
}

/** The analysis without the key lists, or (detailed) with one page of the differing rows per table. */
export function analyzeJson(r: AnalyzeResult, detailed: {limit: number; offset: number} | null): AnalyzeJson {
  return {
    ...r,
    tables: r.tables.map(({conflicts, aOnlyRows, bOnlyRows, ...t}) => {
      if (!detailed) return t
      const all: Array<[RowDiff, DetailedRow['category']]> = [
        ...conflicts.map((x) => [x, 'conflict'] as [RowDiff, DetailedRow['category']]),
        ...aOnlyRows.map((x) => [x, 'a_only'] as [RowDiff, DetailedRow['category']]),
        ...bOnlyRows.map((x) => [x, 'b_only'] as [RowDiff, DetailedRow['category']]),
      ]
      const items = all.slice(detailed.offset, detailed.offset + detailed.limit).map(([x, category]) => ({pk: pkObject(t.key, x.key), category, hashA: x.hashA, hashB: x.hashB}))
      return {...t, rows: {total: all.length, offset: detailed.offset, limit: detailed.limit, items}}
    }),
  }
}

const pkText = (pk: Record<string, unknown>) => {
  const vals = Object.values(pk)
  return vals.length === 1 ? String(vals[0]) : JSON.stringify(pk)
}

export function renderAnalyze(r: AnalyzeJson): string {
  const lines: string[] = []
  lines.push(`Overlap of node A (${r.nodeA}) and node B (${r.nodeB})`, '')
  const rows = r.tables.map((t) => [t.table, t.total, t.match, t.conflict, t.aOnly, t.bOnly])
  rows.push(['TOTAL', r.totals.total, r.totals.match, r.totals.conflict, r.totals.aOnly, r.totals.bOnly])
  lines.push(renderTable(['table', 'total', 'match', 'conflict', 'A only', 'B only'], rows))
  for (const t of r.tables) {
    if (!t.rows) continue
    lines.push('', `${t.table}: rows ${t.rows.offset + 1}–${t.rows.offset + t.rows.items.length} of ${t.rows.total} differing`)
    if (t.rows.items.length) lines.push(renderTable(['key', 'category', 'hash A', 'hash B'], t.rows.items.map((x) => [pkText(x.pk), x.category.replace('_', ' '), x.hashA ?? '-', x.hashB ?? '-'])))
  }
  for (const n of r.notes) lines.push(`note: ${n}`)
  const kb = (r.bytesReceived.total / 1024).toFixed(1)
  lines.push('', `${r.seconds.toFixed(2)} s, ${kb} kB received from the nodes`)
  if (r.totals.conflict + r.totals.aOnly + r.totals.bOnly > 0 && !r.tables.some((t) => t.rows)) lines.push('Use --detailed to list the differing keys; steep-repl merge run resolves them.')
  return lines.join('\n')
}

export function mergeJson(r: MergeResult): MergeResult {
  return r
}

export function renderMerge(r: MergeResult): string {
  const lines: string[] = []
  lines.push(r.dryRun ? `DRY RUN (strategy ${r.strategy}): nothing was changed on either node` : `Merge ${r.mergeId} (strategy ${r.strategy})`)
  lines.push(`node A: ${r.nodeA}`, `node B: ${r.nodeB}`, `order: ${r.order.join(' → ')}`, '')
  const verb = r.dryRun ? 'would ' : ''
  lines.push(
    renderTable(
      ['table', 'match', 'conflict', `A→B ${verb}copy`, `B→A ${verb}copy`, 'kept A', 'kept B', 'skipped'],
      [
        ...r.tables.map((t) => [t.table, t.match, t.conflict, t.transferredAToB, t.transferredBToA, t.keptA, t.keptB, t.skipped]),
        ['TOTAL', r.totals.match, r.totals.conflict, r.totals.transferredAToB, r.totals.transferredBToA, r.tables.reduce((s, t) => s + t.keptA, 0), r.tables.reduce((s, t) => s + t.keptB, 0), r.totals.conflictsSkipped],
      ],
    ),
  )
  const seqs = r.tables.flatMap((t) => t.sequences.map((s) => ({t, s})))
  if (seqs.length) {
    lines.push('', 'owned sequences on the nodes that received rows')
    lines.push(
      renderTable(
        ['table', 'node', 'sequence', 'column', 'before', `column ${'max/min'}`, r.dryRun ? 'will set to' : 'set to'],
        seqs.map(({t, s}) => [t.table, s.node, s.sequence, s.column, `${s.lastValue}${s.isCalled ? '' : ' (not called)'}`, s.columnExtreme ?? '-', s.advancedTo ?? (s.problem ? 'not advanced' : 'already past')]),
      ),
    )
  }
  for (const w of r.warnings) lines.push(`warning: ${w}`)
  if (r.totals.conflictsSkipped) {
    lines.push('', `${r.totals.conflictsSkipped} conflict(s) left for manual resolution.`)
    if (r.mergeId) lines.push(`See them with: steep-repl merge report ${r.mergeId} --node-a <node A> --unresolved`)
  }
  if (r.dryRun) lines.push('', 'Run without --dry-run to apply.')
  lines.push(`${r.seconds.toFixed(2)} s`)
  return lines.join('\n')
}

export function renderReport(r: MergeReport): string {
  const m = r.merge
  const lines = [
    `Merge ${m.mergeId}: ${m.status}`,
    `strategy ${m.strategy}${m.timestampColumn ? ` (timestamp column ${m.timestampColumn})` : ''}, started ${m.startedAt} by ${m.startedBy}${m.completedAt ? `, finished ${m.completedAt}` : ''}`,
    `node A: ${m.nodeA}`,
    `node B: ${m.nodeB}`,
    `tables: ${m.tables.join(', ')}`,
    '',
    renderTable(
      ['total', 'match', 'conflict', 'A only', 'B only', 'A→B', 'B→A', 'resolved', 'skipped'],
      [[m.totals.total, m.totals.match, m.totals.conflict, m.totals.aOnly, m.totals.bOnly, m.totals.transferredAToB, m.totals.transferredBToA, m.totals.conflictsResolved, m.totals.conflictsSkipped]],
    ),
  ]
  if (m.errors.length) lines.push('', ...m.errors.map((e) => `error: ${e}`))
  if (r.audit.length) lines.push('', 'audit', renderTable(['table', 'category', 'resolution', 'rows'], r.audit.map((a) => [a.table, a.category, a.resolution ?? '', a.rows])))
  const c = r.conflicts
  if (c.total) {
    lines.push('', `conflicts ${c.offset + 1}–${c.offset + c.rows.length} of ${c.total}`)
    lines.push(renderTable(['table', 'key', 'resolution', 'node A', 'node B'], c.rows.map((x) => [x.table, pkText(x.pk), x.resolution ?? '', JSON.stringify(x.nodeA), JSON.stringify(x.nodeB)])))
  }
  return lines.join('\n')
}
