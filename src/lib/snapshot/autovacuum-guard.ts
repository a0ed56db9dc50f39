// Keeps autovacuum off the tables that apply loads part by part, until each is loaded.
//
// A split table's parts commit one by one, so autovacuum sees inserted rows long before the table
// is complete: the insert threshold (autovacuum_vacuum_insert_threshold, 1000 rows on a table never
// analyzed) starts a vacuum that scans the growing table while the load runs, competing with it for
// CPU and I/O, and then holds the lock the table's index build needs until the build has waited
// deadlock_timeout for it to be cancelled. Measured on PostgreSQL 15 (2 cores, pgbench scale 50): in
// some applies autovacuum was active for ~7 s of a 16 s run, in others not at all.
//
// Autovacuum (short of preventing wraparound) skips a table whose lock it cannot take at once, so
// an open transaction holding SHARE UPDATE EXCLUSIVE on a table keeps it away. That lock does not
// conflict with the loaders' COPY (ROW EXCLUSIVE) and changes nothing in the catalog, so nothing
// needs restoring if the process dies: the lock goes with the connection. It does conflict with the
// table's own index builds and ANALYZE, so it is released as soon as the table's last part is in.
// One transaction cannot release one lock, so the transaction ends and the locks still needed are
// taken again (NOWAIT: a table that autovacuum took in between is simply left to it).

import type pg from 'pg'
import {qualified} from './copy.js'

export class AutovacuumGuard {
  private readonly held = new Map<string, string>()
  private chain: Promise<void> = Promise.resolve()
  private open = false

  /** `client` must be idle and is used by the guard alone until end(). */
  constructor(private readonly client: pg.Client) {}

  /** Holds the tables (keyed by the caller's table key); called once, first. */
  start(tables: Array<{key: string; table: {schema: string; name: string}}>): Promise<void> {
    for (const t of tables) this.held.set(t.key, qualified(t.table))
    return this.serial(() => this.lockHeld())
  }

  /**
   * Lets autovacuum (and the table's own index builds) at one table again: resolves once its lock
   * is gone; the others are taken again in the background (if that fails, the load goes on
   * unguarded and end() still ends the transaction).
   */
  release(key: string): Promise<void> {
    if (!this.held.delete(key)) return Promise.resolve()
    const committed = this.serial(() => this.commit())
    this.serial(() => this.lockHeld()).catch(() => {})
    return committed
  }

  /** Resolves when the guard's queued work (the background re-locking) is done. */
  idle(): Promise<void> {
    return this.chain.catch(() => {})
  }

  /** Releases everything; the client is free again. */
  end(): Promise<void> {
    this.held.clear()
    return this.serial(() => this.commit())
  }

  /** Runs f after what was asked before, whether that succeeded or not. */
  private serial(f: () => Promise<void>): Promise<void> {
    this.chain = this.chain.catch(() => {}).then(f)
    return this.chain
  }

  private async commit(): Promise<void> {
    if (!this.open) return
    this.open = false
    await this.client.query('COMMIT')
  }

  private async lockHeld(): Promise<void> {
    if (!this.held.size || this.open) return
    await this.client.query('BEGIN')
    this.open = true
    // All at once in the usual case; one by one when one of them is taken.
    await this.client.query('SAVEPOINT steep_repl_guard')
    try {
      await this.client.query(`LOCK TABLE ${[...this.held.values()].map((n) => `ONLY ${n}`).join(', ')} IN SHARE UPDATE EXCLUSIVE MODE NOWAIT`)
      await this.client.query('RELEASE SAVEPOINT steep_repl_guard')
      return
    } catch (err) {
      if (!skippable(err)) throw err
      await this.client.query('ROLLBACK TO SAVEPOINT steep_repl_guard')
    }
    for (const [key, name] of [...this.held]) {
      try {
        await this.client.query(`LOCK TABLE ONLY ${name} IN SHARE UPDATE EXCLUSIVE MODE NOWAIT`)
      } catch (err) {
        if (!skippable(err)) throw err
        // Back to the savepoint, which stays for the next table.
        await this.client.query('ROLLBACK TO SAVEPOINT steep_repl_guard')
        this.held.delete(key)
        continue
      }
      // Keep this lock (released subtransactions hand theirs to the transaction), then a new point.
      await this.client.query('RELEASE SAVEPOINT steep_repl_guard')
      await this.client.query('SAVEPOINT steep_repl_guard')
    }
    await this.client.query('RELEASE SAVEPOINT steep_repl_guard')
  }
}

/**
 * 55P03: someone (autovacuum, in the moment between two transactions) has the table; 42501: a role
 * that may load the table but not lock it so. Either way the load goes on unguarded.
 */
const skippable = (err: unknown) => ['55P03', '42501'].includes((err as {code?: string}).code ?? '')
