// Property-based tests (fast-check) for hostile identifiers: random schema, table and column names
// made of quotes, spaces, dots, commas, slashes, backslashes, unicode, emoji and reserved words,
// at most 63 bytes (PostgreSQL truncates longer names), must round-trip
//   - through the schema.table parser (pure): quoting a name and parsing it back gives it back;
//   - through schema dump DDL into another database: the same fingerprints;
//   - through snapshot generate/apply: the same rows (count and checksum);
//   - through merge analyze/run: the counts found are right and both nodes end identical.
// Few runs per property (each creates and drops real objects); a failure prints the seed and the
// shrunk counterexample to replay.

import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import fc from 'fast-check'
import pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {type ConnParams, resolveConnection} from '../../src/lib/connection/resolve.js'
import {analyzeOverlap} from '../../src/lib/merge/analyze.js'
import {runMerge} from '../../src/lib/merge/run.js'
import {renderDdl} from '../../src/lib/schema/ddl.js'
import {extractSchemaDdl} from '../../src/lib/schema/extract.js'
import {computeFingerprints} from '../../src/lib/schema/fingerprint-io.js'
import {parseQualifiedName, qi, qname} from '../../src/lib/schema/names.js'
import {applySnapshot} from '../../src/lib/snapshot/apply.js'
import {generateSnapshot} from '../../src/lib/snapshot/generate.js'
import {adminClient, dropDatabase, freshDatabase, sql} from '../helpers/pg.js'
import {installSchema} from '../integration/merge-fixtures.js'

const RESERVED = ['select', 'table', 'user', 'order', 'group', 'from', 'where', 'Select', 'TABLE', 'null', 'default', 'public', 'column', 'check', 'primary', 'end']
const PIECES = ['"', '""', ' ', '.', ',', "'", '\\', '/', '..', '-', '$', '%', '_', 'é', 'ß', 'Ω', '日本', 'ü', '😀', '🐘', 'A', 'Z', 'a', 'z', '0', '9', '\t', '\n', '*/', '--', ';']
const byteLength = (s: string) => Buffer.byteLength(s, 'utf8')

/** A name PostgreSQL keeps as given: 1..63 bytes, no NUL. */
const identifier = fc
  .oneof(
    {weight: 1, arbitrary: fc.constantFrom(...RESERVED)},
    {weight: 4, arbitrary: fc.array(fc.constantFrom(...PIECES, ...RESERVED), {minLength: 1, maxLength: 12}).map((a) => a.join(''))},
  )
  .filter((s) => byteLength(s) >= 1 && byteLength(s) <= 63)

/** Schema names may not start with pg_ and must not be one the tests or the system use. */
const schemaName = identifier.filter((s) => !s.toLowerCase().startsWith('pg_') && !['public', 'information_schema', 'steep_repl'].includes(s))

const tableShape = fc.record({
  schema: schemaName,
  table: identifier,
  columns: fc.uniqueArray(identifier, {minLength: 2, maxLength: 3}),
})
type Shape = {schema: string; table: string; columns: string[]}

const RUNS = Number(process.env.PROPERTY_RUNS ?? 10)

/** DDL of the shape: first column the primary key (int), the others text. */
function createSql(s: Shape): string {
  const cols = s.columns.map((c, i) => `${qi(c)} ${i === 0 ? 'int PRIMARY KEY' : 'text'}`).join(', ')
  return `CREATE SCHEMA ${qi(s.schema)}; CREATE TABLE ${qname(s.schema, s.table)} (${cols})`
}

function insertSql(s: Shape, from: number, to: number, tag = ''): string {
  const vals = s.columns.map((c, i) => (i === 0 ? 'i' : `'v' || i || ${pg.escapeLiteral(c + tag)}`)).join(', ')
  return `INSERT INTO ${qname(s.schema, s.table)} (${s.columns.map(qi).join(', ')}) SELECT ${vals} FROM generate_series(${from}, ${to}) i`
}

async function rowsOf(url: string, s: Shape): Promise<{n: number; h: string}> {
  const [r] = await sql(url, `SELECT count(*)::int n, coalesce(sum(hashtext(t::text)), 0)::text h FROM ${qname(s.schema, s.table)} t`)
  return r
}

const dropSchema = (url: string, s: Shape) => sql(url, `DROP SCHEMA IF EXISTS ${qi(s.schema)} CASCADE`)

describe('identifiers: the schema.table parser (pure)', () => {
  it('parses a quoted schema.table back to the same names', () => {
    fc.assert(
      fc.property(identifier, identifier, (schema, name) => {
        expect(parseQualifiedName(qname(schema, name))).toEqual({schema, name})
        expect(parseQualifiedName(`  ${qname(schema, name)}  `)).toEqual({schema, name})
        expect(parseQualifiedName(qi(name), 'dflt')).toEqual({schema: 'dflt', name})
      }),
      {numRuns: 2000},
    )
  })
})

describe('identifiers: round trips through the database', () => {
  let src = ''
  let dst = ''
  let b = ''
  let params: (url: string) => ConnParams
  beforeAll(async () => {
    ;[src, dst, b] = await Promise.all([freshDatabase('prop_src'), freshDatabase('prop_dst'), freshDatabase('prop_b')])
    await Promise.all([installSchema(src), installSchema(b)])
    params = (url) => resolveConnection({db: url, env: {}})
  })
  afterAll(async () => {
    await sql(src, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database() AND NOT active`).catch(() => {})
    await Promise.all([src, dst, b].filter(Boolean).map(dropDatabase))
  })

  it('schema dump DDL applied to another database gives the same fingerprints', async () => {
    await fc.assert(
      fc.asyncProperty(tableShape, async (s) => {
        try {
          await sql(src, createSql(s) + `; CREATE INDEX ON ${qname(s.schema, s.table)} (${qi(s.columns[1]!)})`)
          const a = await adminClient(src)
          const d = await adminClient(dst)
          try {
            await a.query('BEGIN ISOLATION LEVEL REPEATABLE READ')
            const ddl = await extractSchemaDdl(a, {schemas: [s.schema]})
            await a.query('COMMIT')
            // The text `schema dump` prints, run as one script on the other database.
            await d.query(renderDdl(ddl))
            const fa = await computeFingerprints(a, {schemas: [s.schema]})
            const fd = await computeFingerprints(d, {schemas: [s.schema]})
            expect(fa.map((f) => [f.schema, f.table, f.fingerprint])).toEqual([[s.schema, s.table, expect.any(String)]])
            expect(fd.map((f) => [f.schema, f.table, f.fingerprint])).toEqual(fa.map((f) => [f.schema, f.table, f.fingerprint]))
            const [ix] = (await d.query(`SELECT count(*)::int n FROM pg_indexes WHERE schemaname = $1 AND tablename = $2`, [s.schema, s.table])).rows
            expect(ix.n).toBe(2) // the primary key and the index came along
          } finally {
            await a.end()
            await d.end()
          }
        } finally {
          await Promise.all([dropSchema(src, s), dropSchema(dst, s)])
        }
      }),
      {numRuns: RUNS},
    )
  })

  it('snapshot generate then apply gives identical rows', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'steep-prop-snap-'))
    let n = 0
    await fc.assert(
      fc.asyncProperty(tableShape, async (s) => {
        const out = path.join(root, String(n++))
        try {
          await sql(src, createSql(s) + ';' + insertSql(s, 1, 200))
          const g = await generateSnapshot({source: params(src), output: out, parallel: 1, compression: 'none', selection: {schemas: [s.schema]}, keepSlot: false, toolVersion: 'test'})
          expect(g.manifest.tables.map((t) => [t.schema, t.name])).toEqual([[s.schema, s.table]])
          // Data file names are derived safely, whatever the table is called.
          for (const t of g.manifest.tables) for (const p of t.parts) expect(p.file).toMatch(/^data\/[^/]+$/)
          await applySnapshot({target: params(dst), input: out, parallel: 1, verify: true, resume: false})
          expect(await rowsOf(dst, s)).toEqual(await rowsOf(src, s))
          expect((await rowsOf(dst, s)).n).toBe(200)
        } finally {
          await Promise.all([dropSchema(src, s), dropSchema(dst, s)])
          await sql(dst, `DELETE FROM steep_repl.snapshot_apply`).catch(() => {})
        }
      }),
      {numRuns: RUNS},
    )
  })

  it('merge analyze counts the overlap and merge run leaves both nodes identical', async () => {
    await fc.assert(
      fc.asyncProperty(tableShape, async (s) => {
        try {
          // A: 1..30; B: 21..40 with 21..25 different → 15 match, 5 conflict, 20 A-only, 15 B-only.
          await Promise.all([sql(src, createSql(s) + ';' + insertSql(s, 1, 30)), sql(b, createSql(s) + ';' + insertSql(s, 26, 40) + ';' + insertSql(s, 21, 25, 'changed'))])
          const tables = [{schema: s.schema, name: s.table}]
          const an = await analyzeOverlap({nodeA: params(src), nodeB: params(b), tables})
          expect(an.totals).toMatchObject({match: 5, conflict: 5, aOnly: 20, bOnly: 10})
          const r = await runMerge({nodeA: params(src), nodeB: params(b), tables, strategy: 'prefer-node-a'})
          expect(r.totals).toMatchObject({conflict: 5, aOnly: 20, bOnly: 10})
          const [ra, rb] = await Promise.all([rowsOf(src, s), rowsOf(b, s)])
          expect(ra).toEqual(rb)
          expect(ra.n).toBe(40)
        } finally {
          await Promise.all([dropSchema(src, s), dropSchema(b, s)])
        }
      }),
      {numRuns: RUNS},
    )
  })
})
