// Bad-input catalogue, part 2: inputs that need a server to be judged — tampered snapshot
// manifests, objects that do not exist, refused job params, wrong credentials, and a role without
// the needed grants. Each row: the arguments, the documented exit code (docs/exit-codes.md), a
// fragment of the message, and what must not have changed (no queued job, no slot, no new table
// on the target, no new file).

import {cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {resolveConnection} from '../../src/lib/connection/resolve.js'
import {generateSnapshot} from '../../src/lib/snapshot/generate.js'
import {type Manifest, sealManifest} from '../../src/lib/snapshot/manifest.js'
import {type CliResult, runCli} from '../helpers/cli.js'
import {dropDatabase, freshDatabase, shared, sql, withDatabase} from '../helpers/pg.js'
import {installSchema} from '../integration/merge-fixtures.js'

const root = mkdtempSync(path.join(tmpdir(), 'steep-baddb-'))
const ROLE = `steep_nogrant_${process.pid}`
const ROLE_PASSWORD = 'nogrant-pw-1'

let src = '' // installed, with a table and data
let bare = '' // no steep_repl schema
let dst = '' // empty target database (steep_repl installed) for applies
let snap = '' // a good snapshot of src

/** A copy of the good snapshot with its manifest rewritten by `edit` (resealed unless told not to). */
function tampered(name: string, edit: (m: Manifest) => unknown, reseal = true): string {
  const dir = path.join(root, name)
  cpSync(snap, dir, {recursive: true})
  const m = JSON.parse(readFileSync(path.join(snap, 'manifest.json'), 'utf8')) as Manifest
  const edited = edit(m) as Manifest
  const {checksum: _c, ...rest} = edited
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(reseal ? sealManifest(rest) : edited, null, 2))
  return dir
}

function roleUrl(url: string): string {
  const u = new URL(url)
  u.username = ROLE
  u.password = ROLE_PASSWORD
  return u.toString()
}

// Rows in the tables a command would write to: queued jobs, nodes, snapshots, merges, audit.
// A direct run that fails leaves its job row (and a snapshot's registry row) as 'failed': the record
// of what was tried. Any other row would be work queued or done.
const ROWS = `SELECT (SELECT count(*) FROM steep_repl.work_queue WHERE status <> 'failed')::int
  + (SELECT count(*) FROM steep_repl.snapshots WHERE status <> 'failed')::int + ${['nodes', 'merges', 'audit_log', 'snapshot_apply'].map((t) => `(SELECT count(*) FROM steep_repl.${t})::int`).join(' + ')} n`

interface State {
  jobs: number
  slots: number
  dstTables: number
  dstSubs: number
  bareSchemas: number
}

async function state(): Promise<State> {
  const [j] = await sql(src, ROWS)
  const [s] = await sql(src, `SELECT count(*)::int n FROM pg_replication_slots WHERE database = current_database()`)
  const [t] = await sql(dst, `SELECT count(*)::int n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p') AND n.nspname NOT IN ('pg_catalog','information_schema','steep_repl') AND n.nspname NOT LIKE 'pg_toast%'`)
  const [d] = await sql(dst, `SELECT (SELECT count(*) FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()))::int + (${ROWS.replace('SELECT ', '').replace(/ n$/, '')}) n`)
  // The database without steep_repl stays without it (a refused install, a refused node register).
  const [b] = await sql(bare, `SELECT count(*)::int n FROM pg_namespace WHERE nspname = 'steep_repl'`)
  return {jobs: j.n, slots: s.n, dstTables: t.n, dstSubs: d.n, bareSchemas: b.n}
}

interface Case {
  name: string
  args: () => string[]
  code: number
  message: RegExp
  /** A file the command must not have written. */
  noFile?: () => string
  /** A directory whose listing must not change. */
  dirUnchanged?: () => string
}

const cases: Case[] = [
  // Tampered and malformed manifests: refused before the target is touched.
  {name: 'manifest that is not JSON (verify)', args: () => ['snapshot', 'verify', tamperedRaw('badjson', '{"format": "steep-snap')], code: 1, message: /is not valid JSON/},
  {name: 'manifest checksum mismatch (verify)', args: () => ['snapshot', 'verify', tampered('cksum', (m) => ({...m, totals: {...m.totals, rows: m.totals.rows + 1}}), false)], code: 1, message: /checksum/},
  {name: 'manifest of another format version (verify)', args: () => ['snapshot', 'verify', tampered('fmtver', (m) => ({...m, formatVersion: 999}))], code: 1, message: /formatVersion/},
  {name: 'data file path ../../etc/passwd (verify)', args: () => ['snapshot', 'verify', tampered('escape', (m) => withFirstPart(m, '../../etc/passwd'))], code: 1, message: /unsafe path|escapes the snapshot directory/},
  {name: 'data file absolute path /etc/passwd (verify)', args: () => ['snapshot', 'verify', tampered('absolute', (m) => withFirstPart(m, '/etc/passwd'))], code: 1, message: /unsafe path|escapes the snapshot directory/},
  {name: 'data file byte flipped (apply: nothing applied)', args: () => ['snapshot', 'apply', '--direct', '--db', dst, '--input', flipped('flip')], code: 1, message: /checksum|verification/},
  {name: 'path escape (apply: nothing applied)', args: () => ['snapshot', 'apply', '--direct', '--db', dst, '--input', tampered('escape2', (m) => withFirstPart(m, '../../etc/passwd'))], code: 1, message: /unsafe path|escapes the snapshot directory/},
  {name: 'manifest checksum mismatch (apply --no-verify still checks the manifest)', args: () => ['snapshot', 'apply', '--direct', '--no-verify', '--db', dst, '--input', tampered('cksum2', (m) => ({...m, totals: {...m.totals, rows: 1}}), false)], code: 1, message: /checksum/},
  // A non-empty output directory.
  {name: 'snapshot generate into a non-empty directory', args: () => ['snapshot', 'generate', '--direct', '--db', src, '--output', nonEmpty()], code: 2, message: /not empty/, dirUnchanged: () => path.join(root, 'nonempty')},
  // Contradictory flags judged against a live server.
  {name: '--direct with --no-wait', args: () => ['snapshot', 'generate', '--db', src, '--output', path.join(root, 'dnw'), '--direct', '--no-wait'], code: 2, message: /--direct|--no-wait/},
  // Objects that do not exist.
  {name: 'unknown job id', args: () => ['jobs', 'show', '987654', '--db', src], code: 1, message: /987654/},
  {name: 'job id that is not a number', args: () => ['jobs', 'show', 'abc', '--db', src], code: 2, message: /"abc" is not a job id/},
  {name: 'cancel an unknown job', args: () => ['jobs', 'cancel', '987654', '--db', src], code: 1, message: /987654/},
  {name: 'unknown node id', args: () => ['node', 'status', 'no-such-node', '--db', src], code: 1, message: /no-such-node/},
  {name: 'remove an unknown node', args: () => ['node', 'remove', 'no-such-node', '--db', src], code: 1, message: /no-such-node/},
  {name: 'unknown snapshot id', args: () => ['snapshot', 'show', 'no-such-snapshot', '--db', src], code: 1, message: /no-such-snapshot/},
  {name: 'unknown merge id', args: () => ['merge', 'report', '00000000-0000-4000-8000-000000000000', '--node-a', src], code: 1, message: /00000000-0000-4000-8000-000000000000/},
  {name: 'merge id that is not a UUID', args: () => ['merge', 'report', '987654', '--node-a', src], code: 2, message: /"987654" is not a merge id/},
  {name: 'merge analyze of a table that does not exist', args: () => ['merge', 'analyze', '--node-a', src, '--node-b', dst, '--tables', 'public.no_such_table'], code: 1, message: /no_such_table/},
  {name: 'snapshot generate of a table that does not exist', args: () => ['snapshot', 'generate', '--direct', '--db', src, '--output', path.join(root, 'notable'), '--table', 'public.no_such_table'], code: 2, message: /no such table: public\.no_such_table/, noFile: () => path.join(root, 'notable', 'manifest.json')},
  // By design a warning, not an error (src/commands/schema/fingerprint.ts): the report lists no table.
  {name: 'schema fingerprint of a table that does not exist', args: () => ['schema', 'fingerprint', '--db', src, '--table', 'public.no_such_table'], code: 1, message: /error: table public\.no_such_table not found/},
  // Job params refused before anything is queued.
  {name: 'job params that are not JSON', args: () => ['jobs', 'run', 'noop', '--db', src, '--params', '{not json'], code: 2, message: /JSON/},
  {name: 'job params holding a password', args: () => ['jobs', 'run', 'noop', '--no-wait', '--db', src, '--params', JSON.stringify({password: 'hunter2'})], code: 2, message: /password/},
  // Servers, databases and credentials.
  {name: 'database that does not exist', args: () => ['health', '--db', withDatabase(shared().url, 'no_such_database')], code: 6, message: /no_such_database/},
  {name: 'wrong password', args: () => ['health', '--db', wrongPassword()], code: 6, message: /password authentication failed|authentication/},
  {name: 'steep_repl not installed', args: () => ['jobs', 'list', '--db', bare], code: 3, message: /not installed|steep-repl install/},
  {name: 'invalid node id on a database without the schema', args: () => ['node', 'register', 'bad id!', '--db', bare, '--host', 'h'], code: 2, message: /invalid node id "bad id!"/},
  // A role without the needed grants (created in beforeAll, LOGIN only).
  {name: 'role without grants: jobs list', args: () => ['jobs', 'list', '--db', roleUrl(src)], code: 1, message: /may not use the steep_repl schema[\s\S]*GRANT USAGE ON SCHEMA steep_repl/},
  {name: 'role without grants: jobs run', args: () => ['jobs', 'run', 'noop', '--no-wait', '--db', roleUrl(src)], code: 1, message: /may not use the steep_repl schema[\s\S]*GRANT USAGE ON SCHEMA steep_repl/},
  {name: 'role without grants: install', args: () => ['install', '--db', roleUrl(bare)], code: 1, message: /permission|privilege|superuser|owner/i},
  {name: 'role without SELECT: merge analyze of its tables', args: () => ['merge', 'analyze', '--node-a', roleUrl(src), '--node-b', roleUrl(bare), '--tables', 'public.items'], code: 1, message: /permission denied|privilege/i},
]

function withFirstPart(m: Manifest, file: string): Manifest {
  const tables = m.tables.map((t, i) => (i === 0 ? {...t, parts: t.parts.map((p, j) => (j === 0 ? {...p, file} : p))} : t))
  return {...m, tables}
}

function tamperedRaw(name: string, text: string): string {
  const dir = path.join(root, name)
  cpSync(snap, dir, {recursive: true})
  writeFileSync(path.join(dir, 'manifest.json'), text)
  return dir
}

function flipped(name: string): string {
  const dir = tampered(name, (m) => m)
  const m = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest
  const file = path.join(dir, m.tables[0]!.parts[0]!.file)
  const b = readFileSync(file)
  b[Math.floor(b.length / 2)]! ^= 0xff
  writeFileSync(file, b)
  return dir
}

function nonEmpty(): string {
  const dir = path.join(root, 'nonempty')
  if (!existsSync(dir)) {
    cpSync(snap, dir, {recursive: true})
    writeFileSync(path.join(dir, 'notes.txt'), 'keep me')
  }
  return dir
}

function wrongPassword(): string {
  const u = new URL(shared().url)
  u.password = 'definitely-wrong'
  return u.toString()
}

const listing = (dir: string) => readdirSync(dir, {recursive: true}).map(String).sort()

describe('bad input: manifests, missing objects, credentials and privileges', () => {
  // Each spawn costs 1-3 s on a loaded machine: all cases run three at a time, each `it` checks its
  // own result, and the state of every database is compared before and after the whole catalogue
  // (no case may queue a job, register anything, leave a slot, or create a table or subscription).
  let before: State
  const results = new Map<string, Promise<{r: CliResult; filesBefore: string[]}>>()
  function startAll(): Promise<unknown> {
    const queue = [...cases]
    const lanes: Array<Promise<void>> = []
    for (let i = 0; i < 3; i++)
      lanes.push(
        (async () => {
          for (let c = queue.shift(); c; c = queue.shift()) {
            const watched = c.dirUnchanged?.()
            const args = c.args()
            const filesBefore = watched ? listing(watched) : []
            const p = runCli(args).then((r) => ({r, filesBefore}))
            results.set(c.name, p)
            await p
          }
        })(),
      )
    return Promise.all(lanes)
  }
  let all: Promise<unknown>

  beforeAll(async () => {
    ;[src, bare, dst] = await Promise.all([freshDatabase('bad_src'), freshDatabase('bad_bare'), freshDatabase('bad_dst')])
    await sql(src, `CREATE TABLE public.items (id int PRIMARY KEY, label text); INSERT INTO public.items SELECT i, 'item ' || i FROM generate_series(1, 500) i`)
    await sql(bare, `CREATE TABLE public.items (id int PRIMARY KEY, label text)`)
    await Promise.all([installSchema(src), installSchema(dst)])
    await sql(shared().url, `DROP ROLE IF EXISTS ${ROLE}; CREATE ROLE ${ROLE} LOGIN PASSWORD '${ROLE_PASSWORD}'`)
    snap = path.join(root, 'good')
    await generateSnapshot({source: resolveConnection({db: src, env: {}}), output: snap, parallel: 1, compression: 'none', selection: {}, keepSlot: false, toolVersion: 'test'})
    before = await state()
    all = startAll()
  })
  afterAll(async () => {
    await all
    await Promise.all([src, bare, dst].filter(Boolean).map(dropDatabase))
    await sql(shared().url, `DROP ROLE IF EXISTS ${ROLE}`)
  })

  it.each(cases)('$name → exit $code', async (c) => {
    while (!results.has(c.name)) await new Promise((res) => setTimeout(res, 50))
    const {r, filesBefore} = await results.get(c.name)!
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(c.code)
    expect(r.stdout + r.stderr).toMatch(c.message)
    if (c.dirUnchanged) expect(listing(c.dirUnchanged())).toEqual(filesBefore)
    if (c.noFile) expect(existsSync(c.noFile())).toBe(false)
  })

  it('nothing changed: no job queued, nothing registered, no slot, no table or subscription on the target', async () => {
    await all
    expect(await state()).toEqual(before)
  })
})
