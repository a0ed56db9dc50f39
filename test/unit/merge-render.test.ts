import {describe, expect, it} from 'vitest'
import type {AnalyzeResult} from '../../src/lib/merge/analyze.js'
import {analyzeJson, renderAnalyze, renderMerge} from '../../src/lib/merge/render.js'
import type {MergeResult} from '../../src/lib/merge/run.js'

const stats = {topBlocks: 1, levels: 0, rangesCompared: 1, differingRanges: 1, leafRanges: 1, leafRowsA: 3, leafRowsB: 3, estRows: 3, sampledOn: null, cutsFrom: 'none' as const, statements: 3, seconds: 0.1, bytesA: 100, bytesB: 100}
const analysis: AnalyzeResult = {
  nodeA: 'postgres@a:5432/app',
  nodeB: 'postgres@b:5432/app',
  tables: [
    {
      table: 'public.users', schema: 'public', name: 'users', key: ['id'], total: 4, match: 1, conflict: 1, aOnly: 1, bOnly: 1,
      conflicts: [{key: ['3'], hashA: 'x', hashB: 'y'}], aOnlyRows: [{key: ['1'], hashA: 'p', hashB: null}], bOnlyRows: [{key: ['4'], hashA: null, hashB: 'q'}],
      stats,
    },
  ],
  totals: {total: 4, match: 1, conflict: 1, aOnly: 1, bOnly: 1},
  bytesReceived: {a: 100, b: 100, total: 200},
  notes: [`public.users: column "status" default (none) vs 'new'::text (ok for replication)`],
  seconds: 0.2,
}

describe('merge output', () => {
  it('JSON without --detailed has no keys; with it, one page in category order', () => {
    expect(analyzeJson(analysis, null).tables[0]).not.toHaveProperty('rows')
    expect(analyzeJson(analysis, null).tables[0]).not.toHaveProperty('conflicts')
    const d = analyzeJson(analysis, {limit: 2, offset: 1}).tables[0]!.rows!
    expect(d).toEqual({total: 3, offset: 1, limit: 2, items: [{pk: {id: '1'}, category: 'a_only', hashA: 'p', hashB: null}, {pk: {id: '4'}, category: 'b_only', hashA: null, hashB: 'q'}]})
  })

  it('human text: the upstream summary columns and a TOTAL row', () => {
    const text = renderAnalyze(analyzeJson(analysis, null))
    expect(text).toMatch(/public\.users\s+4\s+1\s+1\s+1\s+1/)
    expect(text).toMatch(/TOTAL\s+4\s+1\s+1\s+1\s+1/)
    expect(text).toContain('Use --detailed')
    expect(text).toContain(`note: public.users: column "status" default (none) vs 'new'::text (ok for replication)`)
  })

  it('a dry run says nothing changed and how to apply', () => {
    const r: MergeResult = {
      mergeId: null, dryRun: true, strategy: 'manual', nodeA: 'a', nodeB: 'b', order: ['public.users'], warnings: ['node B: 1 session(s) idle in a transaction'],
      tables: [{table: 'public.users', key: ['id'], timestampColumn: null, replicaRole: {a: false, b: false}, total: 4, match: 1, conflict: 1, aOnly: 1, bOnly: 1, transferredAToB: 1, transferredBToA: 1, keptA: 0, keptB: 0, skipped: 1, skippedKeys: [['3']], sequences: [{node: 'B', sequence: 'public.users_id_seq', column: 'id', increment: '1', lastValue: '3', isCalled: true, columnExtreme: '4', advancedTo: '4', problem: null}]}],
      totals: {total: 4, match: 1, conflict: 1, aOnly: 1, bOnly: 1, transferredAToB: 1, transferredBToA: 1, conflictsResolved: 0, conflictsSkipped: 1},
      seconds: 0.5,
    }
    const text = renderMerge(r)
    expect(text).toContain('DRY RUN (strategy manual): nothing was changed on either node')
    expect(text).toContain('warning: node B: 1 session(s) idle in a transaction')
    expect(text).toContain('1 conflict(s) left for manual resolution.')
    expect(text).toContain('Run without --dry-run to apply.')
    expect(text).toMatch(/public\.users\s+B\s+public\.users_id_seq\s+id\s+3\s+4\s+4/)
    expect(text).toContain('will set to')
  })
})
