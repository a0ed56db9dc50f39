// Catch-up: when a new subscription has applied what its source had committed.

import type pg from 'pg'
import {CancelledError, StateError, TimeoutError} from '../errors.js'

/**
 * Waits until the subscription runs, the slot's confirmed position is within maxLag of the source's
 * flushed WAL, and every transaction committed on the source when it first was is applied.
 *
 * The byte lag alone cannot say the last: the source's walsender sends a transaction when it
 * decodes its commit record, and may before that send a keepalive at the position it has read up
 * to, inside the transaction; the subscriber, with nothing of it yet, confirms that position. A
 * transaction of any size then shows as the few bytes of its commit record. So once the lag is
 * under maxLag, the source's flush position at that moment is the mark: the slot confirms a
 * position at or past it only after the walsender has sent every transaction committed before it
 * and the subscriber has applied and flushed them.
 */
export async function waitForCatchUp(
  target: pg.Client,
  source: pg.Client,
  slot: string,
  subscription: string,
  maxLag: number,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  onLag?: (lag: number) => Promise<void>,
): Promise<number> {
  const deadline = Date.now() + timeoutMs
  let mark: string | null = null
  for (;;) {
    if (signal?.aborted) throw new CancelledError('cancelled during catch-up')
    const w = await target.query(`SELECT pid FROM pg_stat_subscription WHERE subname = $1 AND relid IS NULL AND pid IS NOT NULL`, [subscription])
    // Annotated: `mark` is assigned from a row, so inference would be circular.
    const r: pg.QueryResult<{lag: string | null; active: boolean; flushed: string; passed: boolean | null}> = await source.query(
      `SELECT pg_wal_lsn_diff(f.lsn, confirmed_flush_lsn)::text AS lag, active, f.lsn::text AS flushed,
              confirmed_flush_lsn >= $2::pg_lsn AS passed
         FROM pg_replication_slots, pg_current_wal_flush_lsn() AS f(lsn) WHERE slot_name = $1`,
      [slot, mark],
    )
    const row = r.rows[0]
    if (!row) throw new StateError(`replication slot ${slot} disappeared from the source during catch-up`)
    const lag = Math.max(0, Number(row.lag ?? 0))
    await onLag?.(lag)
    if (w.rows.length && row.active) {
      // Confirmed at or past the flush position: nothing committed before it is unapplied.
      if (Number(row.lag ?? 1) <= 0 || (mark !== null && row.passed)) return lag
      if (mark === null && lag <= maxLag) mark = row.flushed
    }
    if (Date.now() > deadline) {
      throw new TimeoutError(
        mark === null
          ? `catch-up did not bring the lag under ${maxLag} bytes within ${Math.round(timeoutMs / 1000)}s (lag ${lag} bytes)`
          : `catch-up did not apply what the source had committed by ${mark} within ${Math.round(timeoutMs / 1000)}s (lag ${lag} bytes)`,
      )
    }
    await new Promise((res) => setTimeout(res, 250))
  }
}
