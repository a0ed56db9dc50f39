// Security checks of what `install` leaves and of what the tool records:
// - nothing in the steep_repl schema is usable by PUBLIC (a fresh role with no grants can use no
//   table, sequence, function or the schema itself; no ACL entry names PUBLIC);
// - every SECURITY DEFINER function in steep_repl pins its search_path;
// - a password given in a connection string never reaches job params, audit rows, any text column
//   of any steep_repl table, or the CLI's output: a snapshot generate, a merge and a node init are run
//   with a connection string carrying a distinctive password, then every text/json column is grepped.

import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {type CliResult, runCli} from '../helpers/cli.js'
import {dropDatabase, freshDatabase, shared, sql} from '../helpers/pg.js'
import {installSchema, SIMPLE_A, SIMPLE_B, SIMPLE_SCHEMA} from '../integration/merge-fixtures.js'

const PW = 'Zq81DistinctivePw7731'
const USER = `steep_pwuser_${process.pid}`
const NOBODY = `steep_nobody_${process.pid}`

function withPassword(url: string): string {
  const u = new URL(url)
  u.username = USER
  u.password = PW
  return u.toString()
}

describe('security', () => {
  let a = ''
  let b = ''
  let c = '' // empty: the node init target
  const outputs: CliResult[] = []
  beforeAll(async () => {
    ;[a, b, c] = await Promise.all([freshDatabase('sec_a'), freshDatabase('sec_b'), freshDatabase('sec_c')])
    await Promise.all([sql(a, SIMPLE_SCHEMA + ';' + SIMPLE_A), sql(b, SIMPLE_SCHEMA + ';' + SIMPLE_B)])
    await Promise.all([installSchema(a), installSchema(b), installSchema(c)])
    await sql(c, `SELECT steep_repl.register_node('tgt', 'tgt', '127.0.0.1', $1, 50)`, [shared().port])
    await sql(shared().url, `DROP ROLE IF EXISTS ${USER}; CREATE ROLE ${USER} SUPERUSER LOGIN PASSWORD '${PW}';
      DROP ROLE IF EXISTS ${NOBODY}; CREATE ROLE ${NOBODY} NOLOGIN`)
  })
  afterAll(async () => {
    await sql(a, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database() AND NOT active`).catch(() => {})
    await Promise.all([a, b, c].filter(Boolean).map(dropDatabase))
    await sql(shared().url, `DROP ROLE IF EXISTS ${USER}; DROP ROLE IF EXISTS ${NOBODY}`)
  })

  it('no ACL entry of the steep_repl schema or its objects names PUBLIC', async () => {
    const rows = await sql(
      a,
      `SELECT 'schema' AS kind, n.nspname AS name FROM pg_namespace n, aclexplode(n.nspacl) x WHERE n.nspname = 'steep_repl' AND x.grantee = 0
       UNION ALL SELECT 'relation', c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) x
         WHERE n.nspname = 'steep_repl' AND x.grantee = 0
       UNION ALL SELECT 'function', p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) x
         WHERE n.nspname = 'steep_repl' AND x.grantee = 0`,
    )
    expect(rows).toEqual([])
  })

  it('a fresh role with no grants can use no table, sequence, function, type or the schema itself', async () => {
    const [s] = await sql(a, `SELECT has_schema_privilege($1, 'steep_repl', 'USAGE') u, has_schema_privilege($1, 'steep_repl', 'CREATE') c`, [NOBODY])
    expect(s).toEqual({u: false, c: false})
    const usable = await sql(
      a,
      `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'steep_repl' AND c.relkind IN ('r','p','v','m','f')
           AND has_table_privilege($1, c.oid, 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER')
       UNION ALL SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'steep_repl' AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege($1, c.oid, 'USAGE,SELECT,UPDATE') ELSE false END
       UNION ALL SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'steep_repl' AND has_function_privilege($1, p.oid, 'EXECUTE')`,
      [NOBODY],
    )
    // Functions keep PostgreSQL's default EXECUTE for PUBLIC unless revoked; none may remain.
    expect(usable).toEqual([])
    const [objects] = await sql(a, `SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'steep_repl')::int r,
      (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'steep_repl')::int f`)
    expect(objects.r).toBeGreaterThan(10) // the check looked at something
    expect(objects.f).toBeGreaterThan(5)
  })

  it('every SECURITY DEFINER function in steep_repl has a fixed search_path', async () => {
    const rows = await sql<{fn: string; config: string[] | null}>(
      a,
      `SELECT p.oid::regprocedure::text AS fn, p.proconfig AS config FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'steep_repl' AND p.prosecdef`,
    )
    expect(rows.length).toBeGreaterThan(0)
    const unpinned = rows.filter((r) => !(r.config ?? []).some((c) => c.startsWith('search_path=')))
    expect(unpinned.map((r) => r.fn)).toEqual([])
    // And the pinned path starts with pg_catalog or is empty: never a schema a caller could create objects in first.
    for (const r of rows) {
      const sp = r.config!.find((c) => c.startsWith('search_path='))!.slice('search_path='.length)
      expect(sp, r.fn).toMatch(/^(""|pg_catalog\b.*)$/)
    }
  })

  it('a password in a connection string reaches no job param, audit row, table column or output', async () => {
    const out = mkdtempSync(path.join(tmpdir(), 'steep-sec-'))
    const runs: Array<[string[], number]> = [
      [['snapshot', 'generate', '--direct', '--db', withPassword(a), '--output', path.join(out, 'snap'), '--json'], 0],
      [['snapshot', 'generate', '--no-wait', '--db', withPassword(a), '--output', path.join(out, 'queued')], 0],
      [['merge', 'run', '--direct', '--node-a', withPassword(a), '--node-b', withPassword(b), '--tables', 'public.users', '--strategy', 'prefer-node-a'], 0],
      [['merge', 'run', '--no-wait', '--node-a', withPassword(a), '--node-b', withPassword(b), '--tables', 'public.users', '--strategy', 'prefer-node-b', '--dry-run'], 0],
      // No such node: fails after the job is recorded, with the password-carrying source in hand.
      [['node', 'init', 'no-such-node', '--from', 'src', '--direct', '--db', withPassword(c), '--source', withPassword(a)], 1],
      [['node', 'init', 'tgt', '--from', 'src', '--no-wait', '--db', withPassword(c), '--source', withPassword(a)], 0],
      // Errors too: a failed connection prints the target, not the password.
      [['health', '--debug', '--db', `postgres://${USER}:${PW}@127.0.0.1:1/db`], 6],
    ]
    for (const [args, code] of runs) {
      const r = await runCli(args)
      outputs.push(r)
      expect(r.code, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(code)
    }
    for (const r of outputs) {
      expect(r.stdout).not.toContain(PW)
      expect(r.stderr).not.toContain(PW)
    }
    // Something was recorded, or the grep below proves nothing.
    const [j] = await sql(a, `SELECT count(*)::int n FROM steep_repl.work_queue`)
    expect(j.n).toBeGreaterThanOrEqual(3)
    const [k] = await sql(c, `SELECT count(*)::int n FROM steep_repl.work_queue WHERE operation = 'node_init' AND params::text LIKE '%' || $1 || '%'`, [USER])
    expect(k.n).toBe(1) // the queued node init kept its source (without the password)
    const [m] = await sql(a, `SELECT (SELECT count(*) FROM steep_repl.merges)::int + (SELECT count(*) FROM steep_repl.merge_audit_log)::int n`)
    expect(m.n).toBeGreaterThan(0)
    for (const db of [a, b, c]) {
      const cols = await sql<{t: string; c: string}>(
        db,
        `SELECT table_name AS t, column_name AS c FROM information_schema.columns
          WHERE table_schema = 'steep_repl' AND (data_type IN ('text', 'json', 'jsonb', 'character varying', 'character', 'ARRAY', 'USER-DEFINED', 'name'))`,
      )
      expect(cols.length).toBeGreaterThan(20)
      const probes = cols.map(({t, c}) => `SELECT '${t}.${c}' AS col FROM steep_repl."${t}" WHERE "${c}"::text LIKE '%' || $1 || '%'`)
      const hits = await sql(db, probes.join(' UNION ALL '), [PW])
      expect(hits.map((h) => h.col)).toEqual([])
    }
  }, 150_000) // seven CLI runs in a row: 60 s is tight on a loaded 2-core machine
})
