// Least privilege: a non-superuser role granted exactly what docs/privileges.md lists runs each
// command the docs say it can, and a role without one of the important grants is refused with
// exit 1 and a message naming what is missing, leaving things as they were.
//
// The GRANT statements are not copied here: they are read from the ```sql recipe=NAME blocks of
// docs/privileges.md, with the documentation's names (steep_source, app_owner, DATABASE app, …)
// replaced by this run's, so the docs and the test cannot drift apart. Every role logs in over TCP
// with a password (scram-sha-256, as the embedded servers' pg_hba.conf requires), never as a
// superuser.

import {type ChildProcess, spawn} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {readManifest, verifyFiles} from '../../src/lib/snapshot/manifest-io.js'
import {BIN, type CliResult, runCli} from '../helpers/cli.js'
import {adminClient, dropDatabase, freshDatabase, shared, sql} from '../helpers/pg.js'
import type {ServerHandle} from '../helpers/servers.js'
import {dropSlots, dropSubs, registerTarget, waitFor} from '../integration/node-support.js'
import {installSchema, SIMPLE_A, SIMPLE_B, SIMPLE_SCHEMA} from '../integration/merge-fixtures.js'
import {checkpoints, showMaxWalSizeMb, walrusServer} from '../integration/walrus-support.js'

const PW = 'lp-Test-pass-4821'
const P = `lp${process.pid}`
const DOC = readFileSync(new URL('../../docs/privileges.md', import.meta.url), 'utf8')

/** The statements of the ```sql recipe=NAME block of docs/privileges.md. */
function recipe(name: string): string[] {
  const m = new RegExp('```sql recipe=' + name + '\\n([\\s\\S]*?)```').exec(DOC)
  if (!m) throw new Error(`docs/privileges.md has no recipe=${name} block`)
  return m[1]!
    .split(/;\s*\n/)
    .map((s) => s.replace(/\s+/g, ' ').trim())
    .filter(Boolean)
}

const DOC_ROLES = ['steep_admin', 'steep_source', 'steep_reader', 'steep_target', 'steep_schema', 'steep_merge', 'steep_walrus', 'steep_queue', 'steep_worker', 'app_owner']
const role = (docName: string, variant = '') => `${P}_${docName.replace(/^steep_/, '')}${variant}`
const OWNER = role('app_owner')
const created = new Set<string>()

/**
 * Runs a recipe as the superuser in the database of `url`: documentation names → this run's
 * (`as` maps a documentation role to another name, for the variants without one grant), `DATABASE
 * app` → the database of `url`; `without` drops the statements it matches.
 */
let grants: Promise<unknown> = Promise.resolve()
function grant(url: string, name: string, o: {as?: Record<string, string>; without?: RegExp} = {}): Promise<string[]> {
  // One at a time: concurrent GRANTs on one object (a parameter, a steep_repl table) can fail with
  // "tuple concurrently updated", and the cases run concurrently.
  const p = grants.then(() => grantNow(url, name, o))
  grants = p.catch(() => {})
  return p
}

async function grantNow(url: string, name: string, o: {as?: Record<string, string>; without?: RegExp}): Promise<string[]> {
  const db = decodeURIComponent(new URL(url).pathname.slice(1))
  const statements = recipe(name)
    .filter((s) => !o.without?.test(s))
    .map((s) =>
      s
        .replace(new RegExp(`\\b(${DOC_ROLES.join('|')})\\b`, 'g'), (r) => o.as?.[r] ?? role(r))
        .replace(/\bDATABASE app\b/g, `DATABASE "${db}"`),
    )
  const c = await adminClient(url)
  try {
    for (const s of statements) {
      const made = /^CREATE ROLE (\S+)/.exec(s)
      if (made) {
        await c.query(`DROP ROLE IF EXISTS ${made[1]}`)
        created.add(made[1]!)
      }
      await c.query(s)
      if (made && / LOGIN\b/.test(s)) await c.query(`ALTER ROLE ${made[1]} PASSWORD '${PW}'`)
    }
  } finally {
    await c.end()
  }
  return statements
}

async function loginRole(url: string, name: string): Promise<void> {
  await sql(url, `DROP ROLE IF EXISTS ${name}; CREATE ROLE ${name} LOGIN PASSWORD '${PW}'`)
  created.add(name)
}

/** `url` with the given role and the test password. */
function as(url: string, roleName: string): string {
  const u = new URL(url)
  u.username = roleName
  u.password = PW
  return u.toString()
}

/** How the messages quote a role in the GRANT they print (pg.escapeIdentifier). */
const q = (r: string) => `"${r}"`
const show = (r: CliResult) => `exit ${r.code}\n--- stdout:\n${r.stdout}\n--- stderr:\n${r.stderr}`
const count = async (url: string, q: string, params: unknown[] = []) => Number((await sql<{n: string}>(url, `SELECT (${q})::bigint AS n`, params))[0]!.n)

interface Spawned {
  child: ChildProcess
  stderr: () => string
  exit: Promise<number>
}

function spawnCli(args: string[]): Spawned {
  const env: Record<string, string | undefined> = {...process.env, CI: '1', NO_COLOR: '1', XDG_CONFIG_HOME: '/nonexistent-steep-test-config'}
  for (const k of Object.keys(env)) if (k.startsWith('PG')) delete env[k]
  const child = spawn(process.execPath, [BIN, ...args], {env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe']})
  let err = ''
  child.stdout!.resume()
  child.stderr!.on('data', (d) => (err += d))
  const exit = new Promise<number>((resolve) => child.on('close', (code, sig) => resolve(code ?? (sig ? 128 : 1))))
  return {child, stderr: () => err, exit}
}

const SOURCE_FIXTURE = (owner: string) => `
  GRANT CREATE ON SCHEMA public TO ${owner};
  CREATE SCHEMA sales AUTHORIZATION ${owner};
  SET ROLE ${owner};
  CREATE TABLE public.items (id serial PRIMARY KEY, name text NOT NULL, qty int);
  INSERT INTO public.items (name, qty) SELECT 'item ' || g, g FROM generate_series(1, 50) g;
  CREATE TABLE sales.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, item int REFERENCES public.items (id), note text);
  INSERT INTO sales.orders (item, note) SELECT g, 'order ' || g FROM generate_series(1, 20) g;
  RESET ROLE;`

// The cases are independent (each has its own roles and databases, or only reads the shared
// source), so they run concurrently: on a loaded 2-core machine the file takes far less time.
describe.concurrent('least privilege: the documented grants are enough, and needed', {timeout: 150_000}, () => {
  const major = shared().major
  const dbs: string[] = []
  let src = ''
  let snapDir = ''
  let walrus: Promise<ServerHandle> | undefined
  let generated: {g: CliResult; health: CliResult}
  const plain = `${P}_plain`
  const noOwn = role('steep_source', '_noown')
  const noRep = role('steep_reader', '_norep')
  const fresh = async (prefix: string) => {
    const u = await freshDatabase(prefix)
    dbs.push(u)
    return u
  }

  beforeAll(async () => {
    // A dedicated server for walrus (it runs ALTER SYSTEM), started while the rest is set up.
    walrus = walrusServer()
    walrus.catch(() => {})
    await sql(shared().url, `DROP ROLE IF EXISTS ${OWNER}; CREATE ROLE ${OWNER} NOLOGIN`)
    created.add(OWNER)
    src = await fresh('lp_src')
    await sql(src, SOURCE_FIXTURE(OWNER))
    await installSchema(src)
    snapDir = mkdtempSync(path.join(tmpdir(), 'steep-lp-'))
    // The roles of the source database, granted before the cases run concurrently on it.
    await loginRole(src, plain)
    await grant(src, 'source')
    await grant(src, 'source-steep')
    await grant(src, 'source-noslot')
    await grant(src, 'source-steep', {as: {steep_source: role('steep_reader')}})
    // The reader's recipe, then without REPLICATION.
    await grant(src, 'source-noslot', {as: {steep_reader: noRep}})
    await grant(src, 'source-steep', {as: {steep_source: noRep}})
    await sql(src, `ALTER ROLE ${noRep} NOREPLICATION`)
    await grant(src, 'source', {as: {steep_source: noOwn}, without: /GRANT app_owner/})
    await grant(src, 'source-steep', {as: {steep_source: noOwn}})
    await grant(src, 'source', {as: {steep_source: role('steep_source', '_node')}})
    await grant(src, 'schema')
    await grant(src, 'queue')
    await grant(src, 'worker')
    // The kept-slot snapshot the apply, subscribe and node init cases start from (checked below).
    const source = as(src, role('steep_source'))
    const [g, health] = await Promise.all([
      runCli(['snapshot', 'generate', '--direct', '-d', source, '--output', path.join(snapDir, 'kept'), '--json']),
      runCli(['health', '-d', source, '--json']),
    ])
    generated = {g, health}
  }, 240_000)

  afterAll(async () => {
    for (const u of dbs) await dropSubs(u).catch(() => {})
    for (const u of dbs) await dropSlots(u).catch(() => {})
    await Promise.all(dbs.map((u) => dropDatabase(u).catch(() => {})))
    for (const r of [...created].reverse()) {
      await sql(shared().url, `DROP OWNED BY ${r}; DROP ROLE IF EXISTS ${r}`).catch(() => {})
    }
    const w = await walrus?.catch(() => undefined)
    await w?.stop()
    if (snapDir) rmSync(snapDir, {recursive: true, force: true})
  })

  it('install and uninstall: CREATE on the database; the installing role owns steep_repl and may drop it', async () => {
    const db = await fresh('lp_adm')
    await grant(db, 'admin')
    const admin = role('steep_admin')
    const i = await runCli(['install', '-d', as(db, admin), '--json'])
    expect(i.code, show(i)).toBe(0)
    expect(await sql(db, `SELECT nspowner::regrole::text AS o FROM pg_namespace WHERE nspname = 'steep_repl'`)).toEqual([{o: admin}])
    const u = await runCli(['uninstall', '-y', '-d', as(db, admin)])
    expect(u.code, show(u)).toBe(0)
    expect(await count(db, `SELECT count(*) FROM pg_namespace WHERE nspname = 'steep_repl'`)).toBe(0)
  })

  it('snapshot generate (kept slot) as the source role: a verifiable snapshot, the slot and publication kept; health is clean for it', async () => {
    const source = role('steep_source')
    const {g, health: h} = generated
    expect(g.code, show(g)).toBe(0)
    const m = await readManifest(path.join(snapDir, 'kept'))
    expect(m.totals.rows).toBe(70)
    expect((await verifyFiles(path.join(snapDir, 'kept'), m)).ok).toBe(true)
    expect(await sql(src, `SELECT pubowner::regrole::text AS o FROM pg_publication WHERE pubname = $1`, [m.publication])).toEqual([{o: source}])
    expect(await count(src, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, [m.slot!.name])).toBe(1)
    expect(h.code, show(h)).toBe(0)
    expect(h.json().checks.filter((c: {status: string}) => c.status === 'fail')).toEqual([])
  })

  it('health runs for a role with no grants and names what it lacks (exit 1: a check failed)', async () => {
    const h = await runCli(['health', '-d', as(src, plain), '--json'])
    expect(h.code, show(h)).toBe(1)
    const checks = h.json().checks as Array<{name: string; status: string; detail: string; hint: string}>
    expect(checks.find((c) => c.name === 'privileges')).toMatchObject({status: 'fail', detail: expect.stringMatching(/lacks REPLICATION/), hint: expect.stringMatching(/ALTER ROLE \S+ REPLICATION/)})
    expect(checks.find((c) => c.name === 'steep_repl schema')).toMatchObject({status: 'fail', detail: expect.stringMatching(/may not use it/)})
  })

  it('snapshot generate: without owning the tables a kept slot is refused before anything is created; without REPLICATION, refused', async () => {
    const [kept, norep] = await Promise.all([
      runCli(['snapshot', 'generate', '--direct', '-d', as(src, noOwn), '--output', path.join(snapDir, 'refused')]),
      runCli(['snapshot', 'generate', '--direct', '--no-slot', '-d', as(src, noRep), '--output', path.join(snapDir, 'norep')]),
    ])
    expect(kept.code, show(kept)).toBe(1)
    expect(kept.stderr).toMatch(new RegExp(`role ${noOwn} must own the tables it publishes .*does not own public\\.items, sales\\.orders`))
    expect(kept.stderr).toContain(`GRANT ${OWNER} TO ${q(noOwn)}`)
    // Nothing left: no publication of the role, and the slot the job meant to create does not exist.
    expect(await count(src, `SELECT count(*) FROM pg_publication WHERE pubowner = $1::regrole`, [noOwn])).toBe(0)
    const job = /job (\d+) \(snapshot_generate\)/.exec(kept.stderr)![1]
    expect(await count(src, `SELECT count(*) FROM pg_replication_slots WHERE slot_name IN (SELECT slot_name FROM steep_repl.snapshots WHERE job_id = $1)`, [job])).toBe(0)
    expect(norep.code, show(norep)).toBe(1)
    expect(norep.stderr).toMatch(/the source role can neither replicate nor is superuser/)
  })

  it('snapshot generate --no-slot needs only REPLICATION and SELECT (no publication, no ownership)', async () => {
    const temp = await runCli(['snapshot', 'generate', '--direct', '--no-slot', '-d', as(src, role('steep_reader')), '--output', path.join(snapDir, 'noslot'), '--json'])
    expect(temp.code, show(temp)).toBe(0)
    const m = await readManifest(path.join(snapDir, 'noslot'))
    // 70 rows, and any the concurrent subscribe and node init cases inserted since.
    expect([m.tables.length, m.totals.rows >= 70, m.slot?.name ?? null, m.publication]).toEqual([2, true, null, null])
    expect((await verifyFiles(path.join(snapDir, 'noslot'), m)).ok).toBe(true)
  })

  it('snapshot apply as the target role, into a database owned by the objects\' owner, steep_repl installed by apply itself; without SET on session_replication_role, refused with the target untouched', async () => {
    const [tgt, bare] = await Promise.all([fresh('lp_tgt'), fresh('lp_bare')])
    await grant(tgt, 'target')
    const noSet = role('steep_target', '_noset')
    await grant(bare, 'target', {as: {steep_target: noSet}, without: /session_replication_role/})
    const [ok, refused] = await Promise.all([
      runCli(['snapshot', 'apply', '--direct', '-d', as(tgt, role('steep_target')), '--input', path.join(snapDir, 'kept'), '--json']),
      runCli(['snapshot', 'apply', '--direct', '-d', as(bare, noSet), '--input', path.join(snapDir, 'kept')]),
    ])
    expect(ok.code, show(ok)).toBe(0)
    expect(await sql(tgt, `SELECT (SELECT count(*) FROM public.items)::int AS items, (SELECT count(*) FROM sales.orders)::int AS orders`)).toEqual([{items: 50, orders: 20}])
    expect(await sql(tgt, `SELECT relowner::regrole::text AS o FROM pg_class WHERE oid = 'sales.orders'::regclass`)).toEqual([{o: OWNER}])
    expect(refused.code, show(refused)).toBe(1)
    expect(refused.stderr).toMatch(new RegExp(`role ${noSet} may not SET session_replication_role`))
    expect(refused.stderr).toContain(`GRANT SET ON PARAMETER session_replication_role TO ${q(noSet)}`)
    // The job record went into steep_repl (installed for it), nothing of the snapshot did.
    expect(await count(bare, `SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'sales') + (SELECT count(*) FROM pg_class WHERE relname = 'items')`)).toBe(0)
  })

  it('snapshot apply --subscribe (PostgreSQL 16+: pg_create_subscription): rows after the snapshot arrive; without it, refused before loading', async (ctx) => {
    if (major < 16) {
      ctx.skip('PostgreSQL 15: only a superuser may create a subscription (pg_create_subscription is 16+)')
      return
    }
    const [tgt, bare] = await Promise.all([fresh('lp_sub'), fresh('lp_nosub')])
    await Promise.all([installSchema(tgt), installSchema(bare)])
    const subber = role('steep_target', '_sub')
    const noSub = role('steep_target', '_nosub')
    for (const r of ['target', 'target-steep', 'target-subscribe']) await grant(tgt, r, {as: {steep_target: subber}})
    for (const r of ['target', 'target-steep']) await grant(bare, r, {as: {steep_target: noSub}})
    const source = as(src, role('steep_source'))
    const [refused, ok] = await Promise.all([
      runCli(['snapshot', 'apply', '--direct', '-d', as(bare, noSub), '--input', path.join(snapDir, 'kept'), '--subscribe', '--source', source]),
      runCli(['snapshot', 'apply', '--direct', '-d', as(tgt, subber), '--input', path.join(snapDir, 'kept'), '--subscribe', '--source', source, '--json']),
    ])
    expect(refused.code, show(refused)).toBe(1)
    expect(refused.stderr).toMatch(new RegExp(`role ${noSub} may not create a subscription .*pg_create_subscription`))
    expect(refused.stderr).toContain(`GRANT pg_create_subscription TO ${q(noSub)}`)
    expect(await count(bare, `SELECT count(*) FROM pg_namespace WHERE nspname = 'sales'`)).toBe(0)
    expect(ok.code, show(ok)).toBe(0)
    expect(await sql(tgt, `SELECT subowner::regrole::text AS o FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`)).toEqual([{o: subber}])
    await sql(src, `INSERT INTO public.items (id, name, qty) VALUES (1001, 'after the snapshot', 1)`)
    await waitFor('the row inserted after the snapshot on the subscriber', async () => (await count(tgt, `SELECT count(*) FROM public.items WHERE id = 1001`)) === 1, 30_000)
  })

  it('node init: a source role with REPLICATION, CREATE and ownership (nothing in steep_repl) and a target role with the documented grants (PostgreSQL 16+); a source role that may not publish is refused first', async () => {
    const tgt = await fresh('lp_node')
    await installSchema(tgt)
    await registerTarget(tgt, 'lp_tgt', shared().port)
    const nodeTarget = role('steep_target', '_node')
    const nodeSource = role('steep_source', '_node')
    for (const r of ['target', 'target-steep', 'target-node', ...(major >= 16 ? ['target-subscribe'] : [])]) await grant(tgt, r, {as: {steep_target: nodeTarget}})
    const init = (source: string) => runCli(['node', 'init', 'lp_tgt', '--from', 'lp_src', '--direct', '-d', as(tgt, nodeTarget), '--source', as(src, source)], {timeoutMs: 90_000})
    // The source recipe without the membership in the tables' owner.
    const refused = await init(noOwn)
    expect(refused.code, show(refused)).toBe(1)
    expect(refused.stderr).toMatch(new RegExp(`role ${noOwn} must own the tables it publishes .*GRANT ${OWNER} TO ${q(noOwn)}`))
    expect(await count(src, `SELECT count(*) FROM pg_publication WHERE pubname LIKE '%lp_tgt%'`)).toBe(0)
    if (major < 16) {
      // On 15 the target role is refused by name before anything is created, as documented.
      const r15 = await init(nodeSource)
      expect(r15.code, show(r15)).toBe(1)
      expect(r15.stderr).toMatch(/may not create a subscription: on PostgreSQL 15 only a superuser may/)
      expect(await count(src, `SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE '%lp_tgt%'`)).toBe(0)
      return
    }
    const ok = await init(nodeSource)
    expect(ok.code, show(ok)).toBe(0)
    expect(await sql(tgt, `SELECT init_state FROM steep_repl.nodes WHERE node_id = 'lp_tgt'`)).toEqual([{init_state: 'synchronized'}])
    await sql(src, `INSERT INTO sales.orders (item, note) VALUES (2, 'after node init')`)
    await waitFor('the order inserted after node init on the new node', async () => (await count(tgt, `SELECT count(*) FROM sales.orders WHERE note = 'after node init'`)) === 1, 30_000)
  })

  it('schema: fingerprint, compare and diff for any role; dump with USAGE and SELECT (refused without); capture with the fingerprints table', async () => {
    const other = await fresh('lp_other')
    await sql(other, SOURCE_FIXTURE(OWNER))
    const reader = role('steep_schema')
    const [fp, cmp, diff, dump, refused, cap] = await Promise.all([
      runCli(['schema', 'fingerprint', '-d', as(src, plain), '--json']),
      runCli(['schema', 'compare', '--node-a', as(src, plain), '--node-b', as(other, plain), '--json']),
      runCli(['schema', 'diff', '--node-a', as(src, plain), '--node-b', as(other, plain), '-t', 'sales.orders', '--json']),
      runCli(['schema', 'dump', '-d', as(src, reader)]),
      runCli(['schema', 'dump', '-d', as(src, plain)]),
      runCli(['schema', 'capture', '--node', 'lp_src', '-d', as(src, reader), '--json']),
    ])
    for (const r of [fp, cmp, diff, dump, cap]) expect(r.code, show(r)).toBe(0)
    expect(fp.json().tables.map((t: {schema: string; table: string}) => `${t.schema}.${t.table}`)).toEqual(expect.arrayContaining(['public.items', 'sales.orders']))
    expect(dump.stdout).toMatch(/CREATE TABLE "sales"\."orders"/)
    expect(refused.code, show(refused)).toBe(1)
    expect(refused.stderr).toMatch(/permission denied for (schema sales|table)/)
    expect(await count(src, `SELECT count(*) FROM steep_repl.schema_fingerprints WHERE node_id = 'lp_src'`)).toBeGreaterThanOrEqual(2)
  })

  it('merge analyze with SELECT; merge run with the documented grants; where replication is configured, refused without the replica grants (nothing written) and done with them', async () => {
    const [a, b] = await Promise.all([fresh('lp_ma'), fresh('lp_mb')])
    await Promise.all([sql(a, SIMPLE_SCHEMA + ';' + SIMPLE_A), sql(b, SIMPLE_SCHEMA + ';' + SIMPLE_B)])
    await installSchema(a)
    const merger = role('steep_merge')
    const looker = role('steep_merge', '_ro')
    await loginRole(a, merger)
    await loginRole(a, looker)
    for (const u of [a, b]) await sql(u, `GRANT SELECT ON public.users TO ${looker}`)
    const an = await runCli(['merge', 'analyze', '--node-a', as(a, looker), '--node-b', as(b, looker), '--tables', 'public.users', '--json'])
    expect(an.code, show(an)).toBe(0)
    expect(an.json().tables[0]).toMatchObject({match: 1, conflict: 1, aOnly: 1, bOnly: 1})
    for (const u of [a, b]) await grant(u, 'merge-tables')
    await grant(a, 'merge-steep')
    const run = (strategy: string) => runCli(['merge', 'run', '--direct', '--node-a', as(a, merger), '--node-b', as(b, merger), '--tables', 'public.users', '--strategy', strategy])
    const r1 = await run('prefer-node-a')
    expect(r1.code, show(r1)).toBe(0)
    const rows = (u: string) => sql(u, `SELECT id, name, status FROM public.users ORDER BY id`)
    expect(await rows(b)).toEqual(await rows(a))
    expect(await count(a, `SELECT count(*) FROM public.users`)).toBe(4)
    // Replication configured on node B: its table is published.
    await sql(b, `CREATE PUBLICATION lp_pub FOR TABLE public.users; INSERT INTO public.users VALUES (5, 'eve', 'v1', '2024-01-01 10:00Z')`)
    const audit = await count(a, `SELECT count(*) FROM steep_repl.merge_audit_log`)
    const r2 = await run('prefer-node-b')
    expect(r2.code, show(r2)).toBe(1)
    expect(r2.stderr).toMatch(new RegExp(`node B .*role ${merger} lacks SET on session_replication_role and EXECUTE on pg_replication_origin_create\\(text\\), pg_replication_origin_session_setup\\(text\\), pg_replication_origin_session_reset\\(\\); nothing was written`))
    expect(r2.stderr).toContain(`GRANT SET ON PARAMETER session_replication_role TO ${q(merger)}`)
    expect(await count(a, `SELECT count(*) FROM public.users`)).toBe(4)
    expect(await count(a, `SELECT count(*) FROM steep_repl.merge_audit_log`)).toBe(audit)
    await grant(b, 'merge-replica')
    const r3 = await run('prefer-node-b')
    expect(r3.code, show(r3)).toBe(0)
    expect(await rows(a)).toEqual(await rows(b))
    expect(await count(a, `SELECT count(*) FROM public.users WHERE id = 5`)).toBe(1)
    await sql(b, `DROP PUBLICATION lp_pub`)
  })

  it('jobs and worker: the queue role queues, follows and cancels; the worker role runs the job', async () => {
    const qr = as(src, role('steep_queue'))
    const queued = await runCli(['jobs', 'run', 'noop', '-p', '{"items": 1, "bytesPerItem": 10}', '--no-wait', '-d', qr, '--json'])
    expect(queued.code, show(queued)).toBe(0)
    const id = String(queued.json().id)
    const worker = spawnCli(['worker', '-d', as(src, role('steep_worker')), '--operations', 'noop', '--poll-interval', '500ms', '--heartbeat', '1', '--grace', '1s'])
    try {
      const w = await runCli(['jobs', 'wait', id, '-d', qr, '--json', '--timeout', '60s'])
      expect(w.code, show(w) + worker.stderr()).toBe(0)
      expect(await sql(src, `SELECT status, executor FROM steep_repl.work_queue WHERE id = $1`, [id])).toEqual([{status: 'complete', executor: 'worker'}])
    } finally {
      worker.child.kill('SIGTERM')
    }
    expect(await worker.exit, worker.stderr()).toBe(0)
    expect(await count(src, `SELECT count(*) FROM steep_repl.workers WHERE id LIKE '%' || $1 || '%'`, [String(worker.child.pid)])).toBe(0)
    // No worker now: the job waits, and the queue role cancels it.
    const [{id2}] = await sql(src, `SELECT steep_repl.enqueue('noop')::text AS id2`)
    const c = await runCli(['jobs', 'cancel', id2, '-d', qr])
    expect(c.code, show(c)).toBe(0)
    expect(await sql(src, `SELECT status FROM steep_repl.work_queue WHERE id = $1`, [id2])).toEqual([{status: 'cancelled'}])
  })

  it('walrus: tune, status for any role; tune --apply, watch, history and reset with the documented grants', async () => {
    const h = await walrus!
    const url = h.url()
    await grant(url, 'walrus')
    const w = as(url, role('steep_walrus'))
    await loginRole(url, plain)
    await checkpoints(url, 4)
    const before = await showMaxWalSizeMb(url)
    const [tune, status] = await Promise.all([runCli(['walrus', 'tune', '-d', as(url, plain), '--json']), runCli(['walrus', 'status', '-d', as(url, plain), '--json'])])
    expect(tune.code, show(tune)).toBe(0)
    expect(status.code, show(status)).toBe(0)
    expect(status.json().installed).toBe(false) // the walrus tables are there, but not readable by this role
    const ap = await runCli(['walrus', 'tune', '-d', w, '--apply', '--max', '1GB', '--min', '16MB', '--json'])
    expect(ap.code, show(ap)).toBe(0)
    expect(ap.json()).toMatchObject({applied: true, apply: {effective: true}})
    expect(ap.json().recommendedMb).not.toBe(before)
    expect(await showMaxWalSizeMb(url)).toBe(ap.json().recommendedMb)
    const [{t0}] = await sql(url, `SELECT now() AS t0`)
    const watch = spawnCli(['walrus', 'watch', '-d', w, '--interval', '500ms', '--cooldown', '0', '--min', '16MB', '--max', '1GB'])
    try {
      await waitFor('the watcher acting and saving its state', async () => /holds the walrus lock/.test(watch.stderr()) && (await count(url, `SELECT count(*) FROM steep_repl.walrus_state WHERE updated_at > $1`, [t0])) > 0, 30_000)
    } finally {
      watch.child.kill('SIGTERM')
    }
    expect(await watch.exit, watch.stderr()).toBe(0)
    const hist = await runCli(['walrus', 'history', '-d', w, '--json'])
    expect(hist.code, show(hist)).toBe(0)
    expect(hist.stdout).toMatch(/tune/)
    const reset = await runCli(['walrus', 'reset', '-d', w, '--history'])
    expect(reset.code, show(reset)).toBe(0)
    expect(await count(url, `SELECT count(*) FROM steep_repl.walrus_history`)).toBe(0)
  })
})
