import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {latestVersion, listMigrations} from '../../src/lib/install/migrations.js'
import {runCli} from '../helpers/cli.js'
import {dropDatabase, freshDatabase, sql} from '../helpers/pg.js'

/** Everything in the steep_repl schema that a change would touch: objects, columns, ACLs. */
async function schemaFingerprint(url: string): Promise<string> {
  const rows = await sql(
    url,
    `SELECT c.relname, c.relkind, c.relacl::text, array_agg(a.attname || ':' || format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum) cols
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE n.nspname = 'steep_repl' GROUP BY 1, 2, 3 ORDER BY 1`,
  )
  const versions = await sql(url, `SELECT version, name, checksum, applied_at FROM steep_repl.schema_version ORDER BY 1`)
  return JSON.stringify({rows, versions})
}

describe('install', () => {
  let db: string
  beforeAll(async () => {
    db = await freshDatabase('install')
  })
  afterAll(async () => {
    await dropDatabase(db)
  })

  it('--dry-run prints the SQL and changes nothing', async () => {
    const r = await runCli(['install', '-d', db, '--dry-run'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/CREATE TABLE steep_repl\.nodes/)
    const [{present}] = await sql(db, `SELECT to_regnamespace('steep_repl') IS NOT NULL AS present`)
    expect(present).toBe(false)
  })

  it('installs the upstream-compatible tables, revoked from PUBLIC, at the latest version', async () => {
    const r = await runCli(['install', '-d', db, '--json'])
    expect(r.code).toBe(0)
    expect(r.json()).toMatchObject({from: 0, to: latestVersion()})
    const tables = (await sql(db, `SELECT tablename FROM pg_tables WHERE schemaname = 'steep_repl' ORDER BY 1`)).map((t) => t.tablename)
    expect(tables).toEqual(expect.arrayContaining(['audit_log', 'coordinator_state', 'nodes', 'schema_version', 'work_queue']))
    const pub = await sql(
      db,
      `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'steep_repl' AND (has_table_privilege('public', c.oid, 'SELECT') OR has_table_privilege('public', c.oid, 'INSERT'))`,
    )
    expect(pub).toEqual([])
    const [{usage}] = await sql(db, `SELECT has_schema_privilege('public', 'steep_repl', 'USAGE') AS usage`)
    expect(usage).toBe(false)
    const fns = await sql(
      db,
      `SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'steep_repl' AND has_function_privilege('public', p.oid, 'EXECUTE')`,
    )
    expect(fns).toEqual([])
  })

  it('a second run changes nothing', async () => {
    const before = await schemaFingerprint(db)
    const r = await runCli(['install', '-d', db])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/up to date/)
    expect(await schemaFingerprint(db)).toBe(before)
  })

  it('upgrades from an older version, applying only what is missing', async () => {
    const up = await freshDatabase('upgrade')
    try {
      expect((await runCli(['install', '-d', up])).code).toBe(0)
      // A migration whose record is missing is applied again, and only it: with the record of 001
      // gone (CREATE TABLE …, not repeatable; later migrations may be written to be repeatable) the
      // install must fail and roll back entirely — proof that the runner applies the missing
      // versions in one transaction. (Which versions are missing is planInstall's, unit-tested.)
      await sql(up, `DELETE FROM steep_repl.schema_version WHERE version = 1`)
      const before = await schemaFingerprint(up)
      const r = await runCli(['install', '-d', up])
      expect(r.code).toBe(1)
      expect(await schemaFingerprint(up)).toBe(before)
      expect(await sql(up, `SELECT count(*)::int AS n FROM steep_repl.schema_version`)).toEqual([{n: listMigrations().length - 1}])
    } finally {
      await dropDatabase(up)
    }
  })

  it('two installs at once: one waits, both succeed, the schema is applied once', async () => {
    const race = await freshDatabase('race')
    try {
      // Hold the install lock so both installers must wait, then release it.
      const {adminClient} = await import('../helpers/pg.js')
      const holder = await adminClient(race)
      await holder.query('BEGIN')
      await holder.query(`SELECT pg_advisory_xact_lock(hashtextextended('steep_repl.install', 0))`)
      const a = runCli(['install', '-d', race, '--json'])
      const b = runCli(['install', '-d', race, '--json'])
      // Release only once both installers are blocked on the lock.
      for (let i = 0; i < 300; i++) {
        const [{n}] = await sql(race, `SELECT count(*)::int n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`)
        if (n >= 2) break
        await new Promise((r) => setTimeout(r, 100))
      }
      await holder.query('COMMIT')
      await holder.end()
      const [ra, rb] = await Promise.all([a, b])
      expect(ra.code).toBe(0)
      expect(rb.code).toBe(0)
      expect(ra.stderr + rb.stderr).toMatch(/another install is running/)
      const applied = [ra.json().applied.length, rb.json().applied.length].sort()
      expect(applied).toEqual([0, listMigrations().length])
      const versions = await sql(race, `SELECT count(*)::int n FROM steep_repl.schema_version`)
      expect(versions[0].n).toBe(listMigrations().length)
    } finally {
      await dropDatabase(race)
    }
  })

  it('refuses a schema newer than this CLI with exit 3', async () => {
    const newer = await freshDatabase('newer')
    try {
      await runCli(['install', '-d', newer])
      await sql(newer, `INSERT INTO steep_repl.schema_version (version, name, checksum) VALUES (999, 'future', 'x')`)
      const r = await runCli(['install', '-d', newer])
      expect(r.code).toBe(3)
      expect(r.stderr).toMatch(/newer than this steep-repl/)
    } finally {
      await dropDatabase(newer)
    }
  })
})

describe('uninstall', () => {
  it('needs --yes without a terminal, refuses while a job runs, then drops the schema', async () => {
    const db = await freshDatabase('uninstall')
    try {
      await runCli(['install', '-d', db])
      const noYes = await runCli(['uninstall', '-d', db])
      expect(noYes.code).toBe(2)
      expect(noYes.stderr).toMatch(/--yes/)

      await sql(db, `INSERT INTO steep_repl.work_queue (operation, status, started_at, lease_owner, lease_expires_at) VALUES ('noop', 'running', now(), 'test', now() + interval '1 hour')`)
      const refused = await runCli(['uninstall', '-d', db, '--yes'])
      expect(refused.code).toBe(1)
      expect(refused.stderr).toMatch(/job\(s\) running/)
      const [{present}] = await sql(db, `SELECT to_regnamespace('steep_repl') IS NOT NULL AS present`)
      expect(present).toBe(true)

      await sql(db, `UPDATE steep_repl.work_queue SET status = 'complete', completed_at = now(), lease_owner = NULL, lease_expires_at = NULL`)
      const ok = await runCli(['uninstall', '-d', db, '--yes', '--json'])
      expect(ok.code).toBe(0)
      expect(ok.json()).toMatchObject({dropped: true})
      const [{gone}] = await sql(db, `SELECT to_regnamespace('steep_repl') IS NULL AS gone`)
      expect(gone).toBe(true)

      const again = await runCli(['uninstall', '-d', db, '--yes'])
      expect(again.code).toBe(0)
      expect(again.stdout).toMatch(/not installed/)
    } finally {
      await dropDatabase(db)
    }
  })
})
