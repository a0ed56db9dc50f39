// Conflict strategies, pure: which node's row wins for a key that exists on both with different
// contents, and the timestamp column that last-modified compares.

import {UsageError} from '../errors.js'

export const STRATEGIES = ['prefer-node-a', 'prefer-node-b', 'last-modified', 'manual'] as const
export type Strategy = (typeof STRATEGIES)[number]

/** Upstream's resolution names: kept_a (B is updated from A), kept_b (A from B), skipped (left as is). */
export type Resolution = 'kept_a' | 'kept_b' | 'skipped'

export function parseStrategy(s: string): Strategy {
  if ((STRATEGIES as readonly string[]).includes(s)) return s as Strategy
  throw new UsageError(`unknown strategy "${s}"`, {hint: `Use one of: ${STRATEGIES.join(', ')}.`})
}

/** Columns last-modified looks for, in order, when --timestamp-column is not given. */
export const TIMESTAMP_CANDIDATES = ['updated_at', 'modified_at', 'last_modified'] as const
/** Types last-modified can compare. */
export const TIMESTAMP_TYPES = ['timestamp with time zone', 'timestamp without time zone', 'date']

export interface ColumnType {
  name: string
  /** format_type(atttypid, atttypmod) */
  type: string
}

export type TimestampChoice = {ok: true; column: string} | {ok: false; reason: string}

/** The timestamp column of a table for last-modified: the flag's, or the first candidate present. */
export function chooseTimestampColumn(columns: ColumnType[], flag?: string): TimestampChoice {
  const base = (t: string) => t.replace(/\(\d+\)/, '')
  if (flag !== undefined) {
    const c = columns.find((x) => x.name === flag)
    if (!c) return {ok: false, reason: `has no column "${flag}"`}
    if (!TIMESTAMP_TYPES.includes(base(c.type))) return {ok: false, reason: `column "${flag}" is ${c.type}, not a timestamp or date`}
    return {ok: true, column: c.name}
  }
  for (const cand of TIMESTAMP_CANDIDATES) {
    const c = columns.find((x) => x.name === cand)
    if (c && TIMESTAMP_TYPES.includes(base(c.type))) return {ok: true, column: c.name}
  }
  return {ok: false, reason: `has none of the columns ${TIMESTAMP_CANDIDATES.join(', ')} (as a timestamp); name one with --timestamp-column`}
}

/**
 * The decision for one conflicting key. For last-modified, tsA/tsB are the rows' timestamps as
 * microseconds since the epoch (decimal text, exact), null when the row's column is NULL: the newer
 * row wins; a row with a timestamp beats one without; on a tie (or both NULL) node A wins, so that
 * the outcome is deterministic and a second run finds the rows equal.
 */
export function decide(strategy: Strategy, tsA?: string | null, tsB?: string | null): Resolution {
  switch (strategy) {
    case 'prefer-node-a':
      return 'kept_a'
    case 'prefer-node-b':
      return 'kept_b'
    case 'manual':
      return 'skipped'
    case 'last-modified': {
      const a = tsA === null || tsA === undefined ? null : BigInt(tsA)
      const b = tsB === null || tsB === undefined ? null : BigInt(tsB)
      if (a === null && b === null) return 'kept_a'
      if (a === null) return 'kept_b'
      if (b === null) return 'kept_a'
      return b > a ? 'kept_b' : 'kept_a'
    }
  }
}
