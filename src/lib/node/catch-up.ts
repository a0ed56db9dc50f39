// Catch-up: when a new subscription has applied what its source had committed.

import type pg from 'pg'
import {CancelledError, StateError, TimeoutError} from '../errors.js'

/**
 * SQL for where the WAL written so far ends (`lsn`: an expression, the insert position by default),
 * comparable with a slot's confirmed_flush_lsn.
 *
 * Not pg_current_wal_flush_lsn() nor pg_current_wal_lsn(): a transaction committed with
 * synchronous_commit = off is visible before its commit record is written or flushed (the WAL
 * writer flushes it within three wal_writer_delay cycles, and until then only whole pages), and a
 * walsender decodes only flushed WAL. Measured against the flush position, a slot whose subscriber
 * confirmed everything the walsender could read is "caught up" while such a transaction, already
 * committed and visible on the source, is neither sent nor applied. The insert position is past the
 * commit record of every transaction that has committed.
 *
 * pg_current_wal_insert_lsn() is where the next record will go: when the last record ended exactly
 * at a page boundary, that is after the next page's header (24 bytes, 40 on a segment's first page),
 * while the walsender and the slot report the boundary itself. No record ends inside a page header,
 * so a position in it is taken back to the page's start.
 */
export function walEndSql(lsn = 'pg_current_wal_insert_lsn()'): string {
  return `(SELECT CASE WHEN p.off > 0 AND p.off <= CASE WHEN p.seg_off < p.blk THEN 40 ELSE 24 END THEN p.lsn - p.off ELSE p.lsn END
      FROM (SELECT l.lsn, (l.lsn - '0/0'::pg_lsn) % b.blk AS off, (l.lsn - '0/0'::pg_lsn) % b.seg AS seg_off, b.blk
              FROM (SELECT (${lsn})::pg_lsn AS lsn) l,
                   (SELECT current_setting('wal_block_size')::numeric AS blk, pg_size_bytes(current_setting('wal_segment_size')) AS seg) b) p)`
}

/**
 * Has the source's WAL flushed up to its end now: a transaction that writes one WAL record (a
 * logical decoding message, which pgoutput does not pass on) and commits with a local flush
 * flushes everything inserted before it. Without this, WAL that nothing flushes soon keeps a mark
 * taken at the insert position out of the walsender's reach: the last partial page of a transaction
 * that is still open (idle in transaction, say) is flushed only when something else asks, which on
 * an otherwise idle source is the 15-second running_xacts record (catch-up took ~20 s then). Not
 * fatal: a source that refuses (read only, EXECUTE revoked) is waited for as before.
 */
export async function flushWal(source: pg.Client): Promise<void> {
  // One statement, its own transaction (set_config's is_local: for that transaction only), so no
  // BEGIN/COMMIT that could end a caller's transaction. 'local', not 'on': the local flush is all
  // that is needed, and 'on' would also wait for synchronous standbys (forever, with one down).
  await source
    .query(`SELECT set_config('synchronous_commit', 'local', true), pg_logical_emit_message(true, 'steep-repl', 'catch-up')`)
    .catch(() => {})
}

/**
 * Waits until the subscription runs, the slot's confirmed position is within maxLag of the end of
 * the source's WAL, and every transaction committed on the source when it first was is applied.
 *
 * The byte lag alone cannot say the last: the source's walsender sends a transaction when it
 * decodes its commit record, and may before that send a keepalive at the position it has read up
 * to, inside the transaction; the subscriber, with nothing of it yet, confirms that position. A
 * transaction of any size then shows as the few bytes of its commit record. So once the lag is
 * under maxLag, the end of the source's WAL at that moment is the mark: the slot confirms a
 * position at or past it only after the walsender has sent every transaction committed before it
 * and the subscriber has applied and flushed them. The end is the insert position, not the flush
 * position (see walEndSql): an asynchronously committed transaction can lie past the latter.
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
    const r: pg.QueryResult<{lag: string | null; active: boolean; wal_end: string; passed: boolean | null}> = await source.query(
      `SELECT pg_wal_lsn_diff(e.lsn, confirmed_flush_lsn)::text AS lag, active, e.lsn::text AS wal_end,
              confirmed_flush_lsn >= $2::pg_lsn AS passed
         FROM pg_replication_slots, ${walEndSql()} AS e(lsn) WHERE slot_name = $1`,
      [slot, mark],
    )
    const row = r.rows[0]
    if (!row) throw new StateError(`replication slot ${slot} disappeared from the source during catch-up`)
    const lag = Math.max(0, Number(row.lag ?? 0))
    await onLag?.(lag)
    if (w.rows.length && row.active) {
      // Confirmed at or past the end of the WAL: nothing committed before it is unapplied.
      if (Number(row.lag ?? 1) <= 0 || (mark !== null && row.passed)) return lag
      if (mark === null && lag <= maxLag) {
        mark = row.wal_end
        await flushWal(source)
      }
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
