// Sequences after a merge, pure. A merge copies rows with their key values, so a sequence owned by
// a merged table's column (serial: OWNED BY, identity) can be behind the column on the node that
// received rows, and the next INSERT with the default there would collide. After writing, the merge
// advances each such sequence to at least the column's extreme (max for an ascending sequence, min
// for a descending one): setval(seq, extreme, true), so the next nextval is extreme + increment.
// Only ever forwards in the sequence's own direction; never when it is already past.

export interface OwnedSequence {
  /** The sequence, schema and name. */
  schema: string
  name: string
  /** The column of the merged table that owns it. */
  column: string
  /** pg_sequence.seqincrement, seqmin, seqmax as text (int8). */
  increment: string
  min: string
  max: string
}

export interface SequenceState {
  lastValue: string
  isCalled: boolean
}

export interface SequencePlan {
  /** The value to setval(…, value, true) to, null when the sequence is already past the column. */
  setTo: string | null
  /** Why it cannot be advanced (the column is beyond the sequence's bounds), else null. */
  problem: string | null
}

/** The value nextval would hand out next (exact: int8 arithmetic in BigInt). */
export function nextValue(s: OwnedSequence, st: SequenceState): bigint {
  return st.isCalled ? BigInt(st.lastValue) + BigInt(s.increment) : BigInt(st.lastValue)
}

/**
 * What to do with a sequence given the column's extreme on the node (max for an ascending
 * sequence, min for a descending one; null when the table is empty there).
 */
export function planSequence(s: OwnedSequence, st: SequenceState, extreme: string | null): SequencePlan {
  if (extreme === null) return {setTo: null, problem: null}
  const inc = BigInt(s.increment)
  const ext = BigInt(extreme)
  const next = nextValue(s, st)
  if (inc > 0n ? next > ext : next < ext) return {setTo: null, problem: null}
  if (inc > 0n && ext > BigInt(s.max)) return {setTo: null, problem: `max(${s.column}) = ${extreme} is above the sequence's MAXVALUE ${s.max}`}
  if (inc < 0n && ext < BigInt(s.min)) return {setTo: null, problem: `min(${s.column}) = ${extreme} is below the sequence's MINVALUE ${s.min}`}
  return {setTo: extreme, problem: null}
}

/** The column extreme that matters for the sequence's direction, from a (max, min) pair. */
export function extremeFor(s: OwnedSequence, hi: string | null, lo: string | null): string | null {
  return BigInt(s.increment) > 0n ? hi : lo
}

/** The later of two extremes in the sequence's direction (null = no rows). */
export function furthest(s: OwnedSequence, x: string | null, y: string | null): string | null {
  if (x === null) return y
  if (y === null) return x
  const up = BigInt(s.increment) > 0n
  return (up ? BigInt(x) >= BigInt(y) : BigInt(x) <= BigInt(y)) ? x : y
}

/** One owned sequence on one node, as the result (and the dry run's prediction) shows it. */
export interface SequenceStep {
  node: 'A' | 'B'
  /** `schema.name` of the sequence. */
  sequence: string
  column: string
  increment: string
  /** The sequence before: last_value and is_called. */
  lastValue: string
  isCalled: boolean
  /** The column's extreme on the node after the merge (predicted in a dry run); null: no rows. */
  columnExtreme: string | null
  /** setval(…, advancedTo, true) was (or, dry run, will be) run; null: nothing to do. */
  advancedTo: string | null
  /** Why it was not advanced although behind (bounds, privileges), else null. */
  problem: string | null
}
