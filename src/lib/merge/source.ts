// The RangeSource of diff.ts over two live nodes: each call is one statement on one node (the diff
// runs the A and B calls at the same time).

import type {BlockStat, LeafRow, RangeSource, Side, SplitRequest} from './diff.js'
import {evenSplit, INTEGER_KEY_TYPES, type Key, type KeyRange} from './ranges.js'
import type {NodeSession} from './session.js'
import pg from 'pg'
import {cutStatsSql, fromTable, leafRowsSql, parseBlocks, PLANNER_SETTINGS, rangeStatsSql, sampleCutsSql, splitKeysSql, type SqlTable} from './sql.js'

export interface SourceCounters {
  statements: number
}

export class SqlRangeSource implements RangeSource {
  readonly counters: SourceCounters = {statements: 0}

  constructor(
    private readonly table: SqlTable,
    private readonly nodes: {a: NodeSession; b: NodeSession},
  ) {}

  private async one<R extends Record<string, unknown>>(side: Side, q: {text: string; values: unknown[]}): Promise<R> {
    this.counters.statements++
    const {rows} = await this.nodes[side].client.query<R>(q)
    return rows[0]!
  }

  async cutStats(side: Side, cuts: Key[]): Promise<BlockStat[]> {
    const c = this.nodes[side].client
    const names = PLANNER_SETTINGS.map(([n]) => n)
    const saved = (await c.query<{v: string[]}>(`SELECT array_agg(current_setting(n) ORDER BY o) AS v FROM unnest($1::text[]) WITH ORDINALITY AS s(n, o)`, [names])).rows[0]!.v
    await c.query(`SELECT set_config(n, v, true) FROM unnest($1::text[], $2::text[]) AS s(n, v)`, [names, PLANNER_SETTINGS.map(([, v]) => v)])
    try {
      const r = await this.one<{blocks: string}>(side, cutStatsSql(this.table, cuts))
      return parseBlocks(r.blocks, cuts.length + 1)
    } finally {
      await c.query(`SELECT set_config(n, v, true) FROM unnest($1::text[], $2::text[]) AS s(n, v)`, [names, saved])
    }
  }

  async rangeStats(side: Side, ranges: KeyRange[]): Promise<BlockStat[]> {
    const r = await this.one<{blocks: string}>(side, rangeStatsSql(this.table, ranges))
    return parseBlocks(r.blocks, ranges.length)
  }

  async splitKeys(side: Side, requests: SplitRequest[]): Promise<Key[][]> {
    // Dense closed integer ranges are cut arithmetically (no statement); the others by the rows.
    const integer = this.table.key.length === 1 && INTEGER_KEY_TYPES.has(this.table.key[0]!.type)
    const out: Array<Key[] | null> = requests.map((q) => (integer ? evenSplit(q.range, q.rows, q.parts) : null))
    const rest = requests.map((q, i) => ({q, i})).filter((x) => out[x.i] === null)
    if (rest.length) {
      const r = await this.one<Record<string, unknown[]>>(side, splitKeysSql(this.table, rest.map((x) => x.q)))
      const got: Key[][] = rest.map(() => [])
      const idx = r.i as number[]
      idx.forEach((i, j) => got[i]!.push(this.table.key.map((_, c) => String((r[`k${c}`] as string[])[j]))))
      rest.forEach((x, j) => (out[x.i] = got[j]!))
    }
    return out as Key[][]
  }

  async leafRows(side: Side, ranges: KeyRange[]): Promise<LeafRow[]> {
    const r = await this.one<Record<string, string[]>>(side, leafRowsSql(this.table, ranges))
    const hashes = r.h!
    return hashes.map((h, j) => ({key: this.table.key.map((_, c) => r[`k${c}`]![j]!), hash: h}))
  }

  /** min and max of a single integer key on one node (index lookups), null when empty. */
  async keySpan(side: Side): Promise<{lo: bigint; hi: bigint} | null> {
    const t = this.table
    const k = `t.${pg.escapeIdentifier(t.key[0]!.name)}`
    const r = await this.one<{lo: string | null; hi: string | null}>(side, {text: `SELECT min(${k})::text AS lo, max(${k})::text AS hi FROM ${fromTable(t)}`, values: []})
    return r.lo === null || r.hi === null ? null : {lo: BigInt(r.lo), hi: BigInt(r.hi)}
  }

  /** pg_stats histogram bounds of a single integer key column on one node (null: none). */
  async histogram(side: Side): Promise<bigint[] | null> {
    const t = this.table
    const r = await this.one<{b: string[] | null}>(side, {
      text: `SELECT histogram_bounds::text::int8[]::text[] AS b FROM pg_stats WHERE schemaname = $1 AND tablename = $2 AND attname = $3 ORDER BY inherited = $4 DESC LIMIT 1`,
      values: [t.schema, t.name, t.key[0]!.name, t.kind === 'p'],
    })
    return r?.b ? r.b.map((x) => BigInt(x)) : null
  }

  /** Top-level cut keys from a sample of one node. */
  async sampleCuts(side: Side, blocks: number, percent: number, method: 'BERNOULLI' | 'SYSTEM'): Promise<Key[]> {
    const r = await this.one<Record<string, string[]>>(side, sampleCutsSql(this.table, blocks, percent, method))
    const first = r.k0 ?? []
    return first.map((_, j) => this.table.key.map((_, c) => r[`k${c}`]![j]!))
  }
}
