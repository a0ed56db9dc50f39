// Shared checks of the node commands.

import type pg from 'pg'
import {NotInstalledError} from '../errors.js'

/** The registry needs the steep_repl schema with migration 006. */
export async function requireInstalled(c: pg.Client): Promise<void> {
  const r = await c.query(`SELECT to_regprocedure('steep_repl.node_status(text, interval)') IS NOT NULL AS ok`)
  if (!r.rows[0].ok) throw new NotInstalledError('the node registry is not installed in this database', {hint: 'Run steep-repl install -d ... (or steep-repl node register, which installs it).'})
}
