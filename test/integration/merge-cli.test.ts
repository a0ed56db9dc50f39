import {afterAll, describe, expect, it} from 'vitest'
import {runCli} from '../helpers/cli.js'
import {dropDatabase, sql} from '../helpers/pg.js'
import {dump, installSchema, SIMPLE_A, SIMPLE_B, SIMPLE_SCHEMA, twoNodes} from './merge-fixtures.js'

const dbs: string[] = []
afterAll(async () => {
  await Promise.all(dbs.map((d) => dropDatabase(d)))
})

async function nodes(schema = SIMPLE_SCHEMA, a = SIMPLE_A, b = SIMPLE_B, install = true) {
  const n = await twoNodes(schema, a, b, 'mcli')
  dbs.push(n.a, n.b)
  if (install) await installSchema(n.a)
  return n
}

describe('merge commands (CLI)', () => {
  it('analyze-overlap --json: upstream categories; --detailed pages the keys; human output', async () => {
    const n = await nodes()
    const r = await runCli(['analyze-overlap', '--node-a', n.a, '--node-b', n.b, '--tables', 'users', '--json', '--detailed', '--limit', '2', '--offset', '1'])
    expect(r.code).toBe(0)
    const j = r.json()
    expect(j.tables[0]).toMatchObject({table: 'public.users', total: 4, match: 1, conflict: 1, aOnly: 1, bOnly: 1})
    expect(j.tables[0].rows).toMatchObject({total: 3, offset: 1, limit: 2, items: [{pk: {id: '1'}, category: 'a_only'}, {pk: {id: '4'}, category: 'b_only'}]})
    expect(j.bytesReceived.total).toBeGreaterThan(0)
    expect(r.stdout).not.toContain(new URL(n.a).password)
    const h = await runCli(['merge', 'analyze', '--node-a', n.a, '--node-b', n.b, '--tables', 'public.users'])
    expect(h.code).toBe(0)
    expect(h.stdout).toMatch(/public\.users\s+4\s+1\s+1\s+1\s+1/)
    expect(h.stdout).not.toContain(new URL(n.a).password)
  })

  it('merge run --json, then merge report --json and in text', async () => {
    const n = await nodes()
    const r = await runCli(['merge', 'run', '--node-a', n.a, '--node-b', n.b, '--tables', 'users', '--strategy', 'prefer-node-b', '--json'])
    expect(r.code).toBe(0)
    const j = r.json()
    expect(j.totals).toMatchObject({transferredAToB: 1, transferredBToA: 1, conflictsResolved: 1})
    const rep = await runCli(['merge', 'report', j.mergeId, '--node-a', n.a, '--json'])
    expect(rep.code).toBe(0)
    expect(rep.json().merge).toMatchObject({mergeId: j.mergeId, status: 'complete', strategy: 'prefer-node-b'})
    expect(rep.json().audit).toEqual([
      {table: 'public.users', category: 'conflict', resolution: 'kept_b', rows: 1},
      {table: 'public.users', category: 'local_only', resolution: 'transferred_a_to_b', rows: 1},
      {table: 'public.users', category: 'remote_only', resolution: 'transferred_b_to_a', rows: 1},
    ])
    const text = await runCli(['merge', 'report', j.mergeId, '--node-a', n.a])
    expect(text.stdout).toContain(`Merge ${j.mergeId}: complete`)
    const missing = await runCli(['merge', 'report', '00000000-0000-4000-8000-000000000000', '--node-a', n.a])
    expect(missing.code).toBe(1)
    const bad = await runCli(['merge', 'report', 'nope', '--node-a', n.a])
    expect(bad.code).toBe(2)
  })

  describe('bad input: clear errors, exit codes, no writes', () => {
    // No merge was recorded (pre-flight refuses before the merge row is written).
    const unrecorded = async (n: {a: string}) => {
      expect(await sql(n.a, `SELECT count(*)::int AS n FROM steep_repl.merges`)).toEqual([{n: 0}])
    }

    it('unknown strategy → 2', async () => {
      const r = await runCli(['merge', 'run', '--node-a', 'postgres://x@127.0.0.1:1/x', '--node-b', 'postgres://x@127.0.0.1:1/x', '--tables', 't', '--strategy', 'newest'])
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(/strategy/)
    })

    it('table on one node only → 3; on neither → 1; no primary key → 1; nothing written', async () => {
      const n = await nodes(`${SIMPLE_SCHEMA}; CREATE TABLE nopk (id int, v text)`)
      await sql(n.b, `CREATE TABLE only_b (id int PRIMARY KEY)`)
      const before = [await dump(n.a, 'users'), await dump(n.b, 'users')]
      const r1 = await runCli(['merge', 'run', '--node-a', n.a, '--node-b', n.b, '--tables', 'users,only_b', '--strategy', 'prefer-node-a', '--json'])
      expect(r1.code).toBe(3)
      expect(r1.json().error.message).toMatch(/public\.only_b exists only on node B \(does not exist on node A\)/)
      const r0 = await runCli(['merge', 'run', '--node-a', n.a, '--node-b', n.b, '--tables', 'users,nowhere', '--strategy', 'prefer-node-a'])
      expect(r0.code).toBe(1)
      expect(r0.stderr).toMatch(/public\.nowhere does not exist on either node/)
      const r2 = await runCli(['merge', 'run', '--node-a', n.a, '--node-b', n.b, '--tables', 'users,nopk', '--strategy', 'prefer-node-a'])
      expect(r2.code).toBe(1)
      expect(r2.stderr).toMatch(/public\.nopk has no primary key/)
      expect([await dump(n.a, 'users'), await dump(n.b, 'users')]).toEqual(before)
      await unrecorded(n)
    })

    it('schemas differ as schema compare reports them (type, missing column, primary key) → 3, listed, nothing written', async () => {
      const n = await nodes()
      const before = [await dump(n.a, 'users'), await dump(n.b, 'users')]
      await sql(n.b, `ALTER TABLE users ALTER COLUMN status TYPE varchar(10); ALTER TABLE users ADD COLUMN extra int; ALTER TABLE users ALTER COLUMN name DROP NOT NULL`)
      // What schema compare says about this table is what merge refuses on.
      const sc = await runCli(['schema', 'compare', '--node-a', n.a, '--node-b', n.b, '--json'])
      expect(sc.code).toBe(3)
      const users = sc.json().tables.find((t: {table: string}) => t.table === 'users')
      const blocking = users.differences.filter((d: {blocking: boolean}) => d.blocking).map((d: {column: string; message: string}) => `public.users: column "${d.column}" ${d.message}`)
      expect(blocking).toHaveLength(3)
      const r3 = await runCli(['merge', 'run', '--node-a', n.a, '--node-b', n.b, '--tables', 'users', '--strategy', 'prefer-node-a', '--json'])
      expect(r3.code).toBe(3)
      const msg: string = r3.json().error.message
      for (const b of blocking) expect(msg).toContain(b)
      expect(msg).toContain('public.users: column "status" type text vs character varying(10) (breaks replication)')
      expect(msg).toContain('public.users: column "extra" missing on node A (breaks replication)')
      const r4 = await runCli(['merge', 'analyze', '--node-a', n.a, '--node-b', n.b, '--tables', 'users'])
      expect(r4.code).toBe(3)
      expect(r4.stderr).toMatch(/column "name" NOT NULL vs NULL/)
      // Same columns, another primary key.
      await sql(n.b, `ALTER TABLE users ALTER COLUMN status TYPE text; ALTER TABLE users DROP COLUMN extra; ALTER TABLE users ALTER COLUMN name SET NOT NULL;
        ALTER TABLE users DROP CONSTRAINT users_pkey; ALTER TABLE users ADD PRIMARY KEY (id, name)`)
      const r5 = await runCli(['merge', 'run', '--node-a', n.a, '--node-b', n.b, '--tables', 'users', '--strategy', 'prefer-node-b', '--dry-run'])
      expect(r5.code).toBe(3)
      expect(r5.stderr).toMatch(/public\.users: primary key \(id\) on node A but \(id, name\) on node B/)
      expect([await dump(n.a, 'users'), await dump(n.b, 'users')]).toEqual(before)
      await unrecorded(n)
    })

    it('non-blocking schema differences (a default, column order) are notes, not refusals', async () => {
      const n = await nodes()
      await sql(n.b, `ALTER TABLE users ALTER COLUMN status SET DEFAULT 'new'`)
      const r = await runCli(['merge', 'analyze', '--node-a', n.a, '--node-b', n.b, '--tables', 'users', '--json'])
      expect(r.code, r.stderr).toBe(0)
      expect(r.json().notes).toEqual([`public.users: column "status" default (none) vs 'new'::text (ok for replication)`])
    })

    it('last-modified without a timestamp column → 2; a cycle of foreign keys → 1; no schema on node A → 3', async () => {
      const n = await nodes(`CREATE TABLE p (id int PRIMARY KEY, c int); CREATE TABLE c (id int PRIMARY KEY, p int REFERENCES p); ALTER TABLE p ADD FOREIGN KEY (c) REFERENCES c`, '', 'INSERT INTO p VALUES (1, NULL)')
      const r1 = await runCli(['merge', 'run', '--node-a', n.a, '--node-b', n.b, '--tables', 'p', '--strategy', 'last-modified'])
      expect(r1.code).toBe(2)
      expect(r1.stderr).toMatch(/public\.p has none of the columns updated_at/)
      const r2 = await runCli(['merge', 'run', '--node-a', n.a, '--node-b', n.b, '--tables', 'p,c', '--strategy', 'prefer-node-a'])
      expect(r2.code).toBe(1)
      expect(r2.stderr).toMatch(/circular foreign key dependency among public\.c, public\.p/)
      const r3 = await runCli(['merge', 'run', '--node-a', n.b, '--node-b', n.a, '--tables', 'p', '--strategy', 'prefer-node-a'])
      expect(r3.code).toBe(3)
      expect(r3.stderr).toMatch(/has no steep_repl merge tables|steep_repl schema is not installed/)
      expect(await sql(n.a, 'SELECT count(*)::int AS n FROM p')).toEqual([{n: 0}])
      await unrecorded(n)
    })

    it('the same database twice → 2', async () => {
      const n = await nodes()
      const r = await runCli(['merge', 'analyze', '--node-a', n.a, '--node-b', n.a, '--tables', 'users'])
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(/--node-a and --node-b are the same database/)
    })

    it('an unreachable node → 6, named', async () => {
      const n = await nodes()
      const r = await runCli(['merge', 'analyze', '--node-a', n.a, '--node-b', 'postgresql://nobody:secret@127.0.0.1:1/none?connect_timeout=2', '--tables', 'users', '--json'])
      expect(r.code).toBe(6)
      expect(r.json().error.message).toMatch(/^node B: could not connect/)
      expect(r.stdout).not.toContain('secret')
    })
  })
})
