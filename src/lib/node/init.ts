// node init, the engine: a streaming clone of a source database into a target, then native logical
// replication handed over at the exact LSN of the slot whose exported snapshot the copy read.
//
//   checks (source: wal_level, not a standby, privileges, names free; target: empty or matching)
//   → preparing: publication, then a permanent slot exporting a snapshot (source.ts)
//   → copying: pre-data DDL on the target; N connections that imported the snapshot COPY each
//     table (or part) TO STDOUT straight into COPY FROM STDIN on the target; sequences;
//     post-data in parallel waves; ANALYZE
//   → catching_up: CREATE SUBSCRIPTION (create_slot = false, slot_name, copy_data = false,
//     origin = none on 16+) and wait until the slot's lag is under the threshold and what the
//     source had committed then is applied (catch-up.ts)
//   → synchronized.
// Any failure (or a cancel) drops what this run created (subscription, slot, publication, the
// tables it created) and leaves the node failed with the reason in init_progress.

import pg from 'pg'
import {openClient} from '../connection/connect.js'
import type {ConnParams} from '../connection/resolve.js'
import {SchemaMismatchError, StateError, UsageError} from '../errors.js'
import {install} from '../install/migrations.js'
import {requirePublishable, requireReplicaSessions, requireSubscriptionRights} from '../privileges.js'
import {redact} from '../redact.js'
import {compareNodes, type DdlStatement, extractSchemaDdl} from '../schema/index.js'
import {createSubscription, dropSubscriptionKeepSlot, earlyStatements, runPostData} from '../snapshot/apply.js'
import {binaryCopyTables, type DataTable, listDataTables, publicationTables, readSequences, type Selection, selectTables, tableKey} from '../snapshot/catalog.js'
import {dropSlotAndPublication} from '../snapshot/cleanup.js'
import {copyPartDirect, qualified} from '../snapshot/copy.js'
import {selectStatements, type PostDataPlan} from '../snapshot/ddl.js'
import type {Reporter} from '../snapshot/generate.js'
import {planParts} from '../snapshot/plan.js'
import {runPool} from '../snapshot/pool.js'
import {WorkQueue} from '../snapshot/work-queue.js'
import {createExportedSlot, createPublication, type ExportedSlot, importSnapshot, openSession} from '../snapshot/source.js'
import {waitForCatchUp} from './catch-up.js'
import {registerNode, requireNode, setInitState} from './registry.js'
import {schemaFindings} from './schema-sync.js'
import {DEFAULT_MAX_LAG_BYTES, initNames, overallPercent} from './state.js'

export type SchemaSync = 'strict' | 'auto' | 'manual'

export interface InitOptions {
  /** The target database (also holds the registry and the job). */
  target: ConnParams
  source: ConnParams
  nodeId: string
  fromNodeId: string
  parallel: number
  schemaSync: SchemaSync
  selection: Selection
  splitLargerThan?: number
  maxLagBytes?: number
  catchupTimeoutMs?: number
  reporter?: Reporter
  signal?: AbortSignal
  log?: (message: string) => void
  jobId?: string
}

export interface InitResult {
  nodeId: string
  fromNodeId: string
  state: 'synchronized'
  lsn: string
  slot: string
  publication: string
  subscription: string
  tables: number
  parts: number
  rows: number
  bytes: number
  createdTables: number
  sequences: number
  lagBytes: number
  seconds: number
  /** Wall-clock seconds per phase. */
  phaseSeconds: Record<string, number>
}

const DUPLICATE_CODES = new Set(['42P06', '42710', '42723', '42P07'])

interface SourceFacts {
  serverVersionNum: number
}

/** The source must be a primary with wal_level = logical and a role that may replicate. */
export async function checkSource(c: pg.Client): Promise<SourceFacts> {
  const r = await c.query(`SELECT current_setting('wal_level') AS wal_level, pg_is_in_recovery() AS standby,
      current_setting('server_version_num')::int AS n,
      (SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = current_user) AS can_replicate,
      has_database_privilege(current_database(), 'CREATE') AS can_create`)
  const row = r.rows[0]
  if (row.wal_level !== 'logical') {
    throw new StateError(`the source has wal_level = ${row.wal_level}; node init needs a logical replication slot on it`, {
      hint: "On the source: ALTER SYSTEM SET wal_level = 'logical'; then restart it.",
    })
  }
  if (row.standby) {
    throw new StateError('the source is a standby (in recovery); node init creates a publication, which a standby cannot', {hint: 'Initialize from the primary.'})
  }
  if (!row.can_replicate) throw new StateError('the source role can neither replicate nor is superuser', {hint: 'ALTER ROLE <role> REPLICATION; (as a superuser)'})
  if (!row.can_create) throw new StateError('the source role may not create a publication in the source database', {hint: 'GRANT CREATE ON DATABASE <db> TO <role>;'})
  return {serverVersionNum: row.n}
}

const key = (t: {schema: string; name: string}) => `${t.schema}.${t.name}`

export async function existingOnTarget(c: pg.Client, tables: Array<{schema: string; name: string}>): Promise<Set<string>> {
  if (!tables.length) return new Set()
  const r = await c.query<{s: string; n: string}>(
    `SELECT n.nspname AS s, c.relname AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND (n.nspname, c.relname) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
    [tables.map((t) => t.schema), tables.map((t) => t.name)],
  )
  return new Set(r.rows.map((x) => `${x.s}.${x.n}`))
}

/** Which of the given relations (any kind) exist on the target, as schema.name keys. */
async function existingRelations(c: pg.Client, rels: Array<{schema: string; name: string}>): Promise<Set<string>> {
  if (!rels.length) return new Set()
  const r = await c.query<{s: string; n: string}>(
    `SELECT n.nspname AS s, c.relname AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
    [rels.map((t) => t.schema), rels.map((t) => t.name)],
  )
  return new Set(r.rows.map((x) => `${x.s}.${x.n}`))
}

/**
 * Tables whose rows can move in COPY's binary format: both servers of the same major version, and
 * every column of a type binaryCopyTables allows (built-in types but OID aliases, enums, domains
 * over them). The others use the text format.
 */
async function binaryEligible(source: pg.Client, target: pg.Client, tables: DataTable[]): Promise<Set<string>> {
  const major = async (c: pg.Client) => Math.floor((await c.query<{n: number}>(`SELECT current_setting('server_version_num')::int AS n`)).rows[0]!.n / 10000)
  if (!tables.length || (await major(source)) !== (await major(target))) return new Set()
  return binaryCopyTables(source, tables)
}

/** The partitioned tables above the given partitions, every level (none for plain tables). */
async function partitionAncestors(c: pg.Client, tables: DataTable[]): Promise<Array<{schema: string; name: string}>> {
  const parts = tables.filter((t) => t.partition)
  if (!parts.length) return []
  const r = await c.query<{schema: string; name: string}>(
    `SELECT DISTINCT an.nspname AS schema, ac.relname AS name
       FROM unnest($1::text[], $2::text[]) AS t(s, n)
       JOIN pg_namespace ns ON ns.nspname = t.s
       JOIN pg_class c ON c.relnamespace = ns.oid AND c.relname = t.n
       CROSS JOIN LATERAL pg_partition_ancestors(c.oid) AS a(relid)
       JOIN pg_class ac ON ac.oid = a.relid
       JOIN pg_namespace an ON an.oid = ac.relnamespace
      WHERE ac.oid <> c.oid
      ORDER BY 1, 2`,
    [parts.map((t) => t.schema), parts.map((t) => t.name)],
  )
  return r.rows
}

/**
 * The statement that removes what `st` is about to create, when that object does not exist on the
 * target yet (null: it exists, or its kind is not one an init removes: extensions and the like stay).
 */
async function dropIfNew(c: pg.Client, st: DdlStatement): Promise<string | null> {
  let probe: {text: string; value: string}
  if (st.kind === 'schema') probe = {text: 'to_regnamespace($1)', value: pg.escapeIdentifier(st.name)}
  else if (st.kind === 'sequence' || st.kind === 'view' || st.kind === 'materialized view') probe = {text: 'to_regclass($1)', value: qualified({schema: st.schema ?? '', name: st.name})}
  else if (st.kind === 'type' || st.kind === 'domain') probe = {text: 'to_regtype($1)', value: qualified({schema: st.schema ?? '', name: st.name})}
  else if ((st.kind === 'function' || st.kind === 'procedure') && st.drop) probe = {text: 'to_regprocedure($1)', value: st.drop.replace(/^DROP (FUNCTION|PROCEDURE) IF EXISTS /, '').replace(/;$/, '')}
  else return null
  const r = await c.query<{missing: boolean}>(`SELECT ${probe.text} IS NULL AS missing`, [probe.value])
  if (!r.rows[0]!.missing) return null
  return st.kind === 'schema' ? `DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(st.name)};` : (st.drop ?? null)
}

/** Upserts init_progress (the upstream table) with what `node progress` shows. */
export async function writeProgress(c: pg.Client, nodeId: string, v: Record<string, unknown>): Promise<void> {
  const cols = Object.keys(v)
  const sets = cols.map((k, i) => `${pg.escapeIdentifier(k)} = $${i + 2}`).join(', ')
  await c.query(`UPDATE steep_repl.init_progress SET ${sets}, updated_at = now() WHERE node_id = $1`, [nodeId, ...cols.map((k) => v[k])])
}

export interface PreflightOptions {
  source: ConnParams
  nodeId: string
  fromNodeId: string
  schemaSync: SchemaSync
  selection: Selection
  /** --bidirectional: both servers must support origin = none (16+). */
  bidirectional?: boolean
}

/**
 * The checks of an init that change nothing but the source node's registration: the target node's
 * state, the source (wal_level, standby, privileges), names free on both sides, and the target's
 * tables (absent, or present, empty and matching). `node init` runs them before queueing the job,
 * so bad input ends with the right exit code; the job runs them again.
 */
export async function preflightInit(control: pg.Client, src: pg.Client, o: PreflightOptions, log: (m: string) => void = () => {}): Promise<{candidates: DataTable[]; existing: Set<string>}> {
  if (o.nodeId === o.fromNodeId) throw new UsageError('a node cannot be initialized from itself')
  const names = initNames(o.nodeId, o.fromNodeId)
  const target = await requireNode(control, o.nodeId)
  if (!(await control.query(`SELECT 1 FROM steep_repl.nodes WHERE node_id = $1`, [o.fromNodeId])).rows.length) {
    await registerNode(control, {nodeId: o.fromNodeId, name: `${o.fromNodeId} (${o.source.host})`, host: o.source.host, port: o.source.port, priority: 100})
    log(`registered the source node ${o.fromNodeId} (${o.source.host}:${o.source.port}) in the target's registry`)
  }
  if (!['uninitialized', 'failed'].includes(target.initState)) {
    throw new StateError(`node ${o.nodeId} is ${target.initState}; node init starts from uninitialized or failed`, {
      hint: target.initState === 'synchronized' ? 'Use steep-repl node reinit to copy tables again.' : 'steep-repl node cancel stops a running init.',
    })
  }

  // Checks that change nothing: a refusal here leaves the node as it was.
  const facts = await checkSource(src)
  if (o.bidirectional) {
    const t = (await control.query<{n: number}>(`SELECT current_setting('server_version_num')::int AS n`)).rows[0]!.n
    if (facts.serverVersionNum < 160000 || t < 160000) {
      throw new StateError('--bidirectional needs PostgreSQL 16 or later on both nodes: without origin = none changes would loop', {hint: 'Initialize without --bidirectional.'})
    }
  }
  if ((await src.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [names.slot])).rows.length) {
    throw new StateError(`replication slot ${names.slot} already exists on the source (an init of ${o.nodeId} is running or was left behind)`, {
      hint: `steep-repl node cancel ${o.nodeId} -d TARGET --source SOURCE drops it; or pg_drop_replication_slot('${names.slot}') on the source.`,
    })
  }
  if ((await src.query(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [names.publication])).rows.length) {
    throw new StateError(`publication ${names.publication} already exists on the source`, {hint: `steep-repl node cancel ${o.nodeId} -d TARGET --source SOURCE removes it.`})
  }
  if ((await control.query(`SELECT 1 FROM pg_subscription WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`, [names.subscription])).rows.length) {
    throw new StateError(`subscription ${names.subscription} already exists on the target`, {hint: `steep-repl node cancel ${o.nodeId} -d TARGET --source SOURCE removes it.`})
  }
  const candidates = selectTables(await listDataTables(src), o.selection)
  if (!candidates.length) throw new UsageError('no tables to copy: the source has none in the selection')
  // The roles' privileges, so that a missing grant is named before anything is created.
  await requirePublishable(src, publicationTables(candidates), 'the publication node init creates on the source')
  await requireSubscriptionRights(control)
  await requireReplicaSessions(control, 'node init')
  const existing = await existingOnTarget(control, candidates)
  const explicit = Boolean(o.selection.tables?.length)
  if (existing.size) {
    if (!explicit && o.schemaSync !== 'auto') {
      throw new StateError(`the target is not empty: it already has ${existing.size} of the source's tables (${[...existing].slice(0, 5).join(', ')}${existing.size > 5 ? ', …' : ''})`, {
        hint: 'Initialize into an empty database, or pass --schema-sync auto (or an explicit --tables list) to load into the existing, empty tables.',
      })
    }
    // The schema capability's comparison (what steep-repl schema compare reports), source as A.
    const report = await compareNodes(src, control, {schemas: o.selection.schemas, labelA: o.fromNodeId, labelB: o.nodeId})
    const inScope = candidates.filter((t) => existing.has(key(t)))
    const f = schemaFindings(report, inScope)
    if (f.notes.length) log(`schema differences that do not block replication (${f.notes.length}): ${f.notes.slice(0, 10).join('; ')}${f.notes.length > 10 ? '; …' : ''}`)
    if (f.blocking.length) {
      const lines = `${f.blocking.slice(0, 10).join('; ')}${f.blocking.length > 10 ? `; … and ${f.blocking.length - 10} more` : ''}`
      if (o.schemaSync === 'manual') log(`WARNING: schema mismatch (${f.blocking.length} differences): ${lines}. Proceeding may load rows that do not fit or break replication.`)
      else
        throw new SchemaMismatchError(`schema mismatch between ${o.fromNodeId} and ${o.nodeId} (${f.blocking.length} differences): ${lines}`, {
          hint: `steep-repl schema compare --node-a SOURCE --node-b TARGET shows them; fix the target schema, or pass --schema-sync manual to proceed anyway.`,
        })
    }
    for (const k of existing) {
      const [s, n] = [k.slice(0, k.indexOf('.')), k.slice(k.indexOf('.') + 1)]
      const r = await control.query(`SELECT EXISTS (SELECT 1 FROM ${pg.escapeIdentifier(s)}.${pg.escapeIdentifier(n)}) AS has`)
      if (r.rows[0].has) throw new StateError(`target table ${k} already has rows; node init loads only empty tables`, {hint: 'TRUNCATE it first, or leave it out with --tables.'})
    }
  }
  return {candidates, existing}
}

/** preflightInit on connections of its own (for the command, before it queues the job). */
export async function preflight(target: ConnParams, o: PreflightOptions, log?: (m: string) => void): Promise<{tables: number; existing: number}> {
  const control = await openClient(target, {applicationName: 'steep-repl node init'})
  control.on('error', () => {})
  try {
    const src = await openClient(o.source, {applicationName: 'steep-repl node init'})
    src.on('error', () => {})
    try {
      const r = await preflightInit(control, src, o, log)
      return {tables: r.candidates.length, existing: r.existing.size}
    } finally {
      await src.end().catch(() => {})
    }
  } finally {
    await control.end().catch(() => {})
  }
}

export async function initNode(o: InitOptions): Promise<InitResult> {
  if (!Number.isInteger(o.parallel) || o.parallel < 1 || o.parallel > 64) throw new UsageError('--parallel must be between 1 and 64')
  if (o.nodeId === o.fromNodeId) throw new UsageError('a node cannot be initialized from itself')
  const started = Date.now()
  const maxLag = o.maxLagBytes ?? DEFAULT_MAX_LAG_BYTES
  const names = initNames(o.nodeId, o.fromNodeId)
  const phaseSeconds: Record<string, number> = {}
  let phaseName = ''
  let phaseStart = Date.now()
  const rep: Reporter = {
    phase(name, detail, totals) {
      if (phaseName) phaseSeconds[phaseName] = Math.round((Date.now() - phaseStart) / 100) / 10
      phaseName = name
      phaseStart = Date.now()
      o.reporter?.phase(name, detail, totals)
    },
    part: (e) => o.reporter?.part(e),
  }
  const log = o.log ?? (() => {})

  const control = await openClient(o.target, {applicationName: 'steep-repl node init'})
  control.on('error', () => {})
  const src = await openClient(o.source, {applicationName: 'steep-repl node init'})
  src.on('error', () => {})
  const readers: pg.Client[] = []
  const loaders: pg.Client[] = []
  let slot: ExportedSlot | undefined
  let createdPublication = false
  let createdSubscription = false
  const createdTables: Array<{schema: string; name: string}> = []
  const createdOther: CreatedObject[] = []
  let stateTouched = false
  try {
    rep.phase('prepare')
    await install(control)
    const {candidates, existing} = await preflightInit(control, src, o, log)
    o.signal?.throwIfAborted?.()

    // From here on the node's state tells what happens.
    await setInitState(control, o.nodeId, 'preparing', {sourceNode: o.fromNodeId, started: true})
    stateTouched = true
    await control.query(
      `INSERT INTO steep_repl.init_progress (node_id, phase, parallel_workers, source_node_id, slot_name, publication_name, subscription_name, job_id)
       VALUES ($1, 'preparing', $2, $3, $4, $5, $6, $7)
       ON CONFLICT (node_id) DO UPDATE SET phase = 'preparing', overall_percent = 0, tables_total = 0, tables_completed = 0, current_table = NULL,
         current_table_percent = 0, rows_copied = 0, bytes_copied = 0, throughput_rows_sec = 0, started_at = now(), eta_seconds = NULL,
         updated_at = now(), parallel_workers = EXCLUDED.parallel_workers, error_message = NULL, source_node_id = EXCLUDED.source_node_id,
         slot_name = EXCLUDED.slot_name, publication_name = EXCLUDED.publication_name, subscription_name = EXCLUDED.subscription_name,
         lsn = NULL, lag_bytes = NULL, job_id = EXCLUDED.job_id, created_tables = NULL`,
      [o.nodeId, o.parallel, o.fromNodeId, names.slot, names.publication, names.subscription, o.jobId ?? null],
    )

    // The publication exists before the slot's consistent point (see snapshot/source.ts).
    await src.query('BEGIN ISOLATION LEVEL REPEATABLE READ')
    await createPublication(src, names.publication, publicationTables(candidates))
    await src.query('COMMIT')
    createdPublication = true
    slot = await createExportedSlot(o.source, names.slot, false)
    log(`slot ${names.slot} created on the source at LSN ${slot.lsn}`)
    await control.query(
      `INSERT INTO steep_repl.init_slots (slot_name, node_id, lsn, used_by_node, used_at) VALUES ($1, $2, $3, $4, now())
       ON CONFLICT (slot_name) DO UPDATE SET node_id = EXCLUDED.node_id, lsn = EXCLUDED.lsn, created_at = now(), used_by_node = EXCLUDED.used_by_node, used_at = now()`,
      [names.slot, o.fromNodeId, slot.lsn, o.nodeId],
    )
    await writeProgress(control, o.nodeId, {lsn: slot.lsn})
    for (let i = 0; i < o.parallel; i++) {
      const c = await openSession(o.source, 'steep-repl node init')
      readers.push(c)
      await importSnapshot(c, slot.snapshotName)
    }
    const main = readers[0]!

    // Schema inside the snapshot.
    rep.phase('schema')
    const tables = selectTables(await listDataTables(main), o.selection)
    const ddl = selectStatements(await extractSchemaDdl(main, {schemas: o.selection.schemas, lockTables: true}), o.selection)
    const binaryTables = await binaryEligible(main, control, tables)
    const toCreate = tables.filter((t) => !existing.has(key(t)))
    // The partitioned tables above the partitions to create (they hold no rows, so they are not in
    // the data list) are created too when the target lacks them, and dropped with them on failure.
    const ancestors = await partitionAncestors(main, toCreate)
    const presentAncestors = await existingOnTarget(control, ancestors)
    const newAncestors = ancestors.filter((a) => !presentAncestors.has(key(a)))
    // Views and materialized views the target lacks are created too, with what belongs to them
    // (their statements name themselves as their table; a refresh fills a materialized view).
    const views = ddl.preData.filter((st) => (st.kind === 'view' || st.kind === 'materialized view') && st.table).map((st) => st.table!)
    const presentViews = await existingRelations(control, views)
    const createSet = new Set([...toCreate, ...newAncestors, ...views.filter((v) => !presentViews.has(key(v)))].map(key))
    // Statements of tables and views that exist on the target are skipped; objects that are not
    // relations (schemas, types, functions) are created when missing.
    const wanted = (st: DdlStatement) => !st.table || createSet.has(key(st.table))
    await setInitState(control, o.nodeId, 'copying')
    await writeProgress(control, o.nodeId, {phase: 'copying', tables_total: tables.length})
    await control.query('BEGIN')
    await control.query(ddl.settings.join('\n'))
    // What this init creates besides tables (schemas, types, functions, sequences, views), so that a
    // failure or node cancel removes it too: each one's DROP … IF EXISTS (never CASCADE), in order.
    const createdObjects: CreatedObject[] = []
    for (const st of ddl.preData.filter(wanted)) {
      await control.query('SAVEPOINT pre')
      try {
        // Only what did not exist before is this init's (CREATE SCHEMA IF NOT EXISTS and CREATE OR
        // REPLACE FUNCTION succeed over an object of the target's own).
        const drop = st.kind === 'table' ? null : await dropIfNew(control, st)
        await control.query(st.sql)
        await control.query('RELEASE SAVEPOINT pre')
        if (drop) createdObjects.push({schema: st.schema ?? '', name: st.name, kind: st.kind, drop})
      } catch (err) {
        const code = (err as {code?: string}).code ?? ''
        if (st.kind !== 'table' && DUPLICATE_CODES.has(code)) {
          await control.query('ROLLBACK TO SAVEPOINT pre')
          continue
        }
        ;(err as Error).message = `pre-data ${st.kind} ${st.schema ? st.schema + '.' : ''}${st.name}: ${(err as Error).message}`
        throw err
      }
    }
    // Recorded in the pre-data's own transaction: a process killed right after the commit still
    // leaves node cancel the list of what to drop.
    const created = [...newAncestors, ...toCreate].map((t) => ({schema: t.schema, name: t.name}))
    await writeProgress(control, o.nodeId, {created_tables: JSON.stringify([...created, ...createdObjects])})
    await control.query('COMMIT')
    createdTables.push(...created)
    createdOther.push(...createdObjects)
    await control.query('RESET ALL')

    // Data: straight from the source's COPY into the target's COPY.
    // Split tables on page ranges (planParts' default): each part is a TID range scan of its own
    // pages, where a key range would make each part's query scan the whole table once the range is
    // too wide for the index.
    const parts = planParts(tables, {splitLargerThan: o.splitLargerThan, connections: o.parallel})
    const post: PostDataPlan = {
      settings: ddl.settings,
      statements: ddl.postData.filter(wanted).map((s) => ({id: s.id, kind: s.kind, wave: s.wave, schema: s.schema, name: s.name, table: s.table, sql: s.sql, dependsOn: s.dependsOn})),
    }
    // Index builds of a table whose rows are all in start at once, on the same connections, while
    // other tables are still copying (those with no post-data dependency; the rest wait for post-data).
    const early = earlyStatements(post)
    const earlyDone = new Set<string>()
    // ANALYZE of a table follows its early index builds (expression indexes get statistics too).
    const earlyLeft = new Map<string, number>()
    const analyzed = new Set<string>()
    type Work = {part: (typeof parts)[number]} | {ddl: PostDataPlan['statements'][number]} | {analyze: DataTable}
    // A queue that grows as parts finish (index builds, then ANALYZE); idle loaders wait for it.
    const work = new WorkQueue<Work>(parts.map((part) => ({part})))
    const estTotal = parts.reduce((s, p) => s + p.estBytes, 0)
    rep.phase('data', `${tables.length} tables in ${parts.length} parts`, {bytes: Math.round(estTotal), rows: Math.round(tables.reduce((s, t) => s + t.rows, 0)), items: parts.length})
    for (let i = 0; i < Math.min(o.parallel, parts.length); i++) {
      const c = await openSession(o.target, 'steep-repl node init')
      // Loading is not replicated onward and does not fire the user's triggers.
      await c.query(`SET session_replication_role = replica`)
      await c.query(ddl.settings.join('\n'))
      await c.query(`SET maintenance_work_mem = '256MB'`).catch(() => {})
      loaders.push(c)
    }
    let rows = 0
    let bytes = 0
    let lastWrite = 0
    const partsLeft = new Map<string, number>(tables.map((t) => [key(t), parts.filter((p) => key(p.table) === key(t)).length]))
    let tablesDone = 0
    const progressWrite = async (current: string | null, force = false) => {
      if (!force && Date.now() - lastWrite < 1000) return
      lastWrite = Date.now()
      const secs = Math.max(0.001, (Date.now() - started) / 1000)
      await writeProgress(control, o.nodeId, {
        tables_completed: tablesDone,
        current_table: current,
        rows_copied: rows,
        bytes_copied: bytes,
        throughput_rows_sec: rows / secs,
        overall_percent: overallPercent('copying', estTotal > 0 ? Math.min(1, bytes / estTotal) : 0, null, maxLag),
        eta_seconds: bytes > 0 && estTotal > bytes ? Math.round(((estTotal - bytes) / bytes) * secs) : null,
      }).catch(() => {})
    }
    await work.run(
      loaders.length,
      async (w, slotIdx) => {
        const c = loaders[slotIdx]!
        if ('analyze' in w) {
          await c.query(`ANALYZE ${qualified(w.analyze)}`)
          analyzed.add(key(w.analyze))
          return
        }
        if ('ddl' in w) {
          const st = w.ddl
          const label = `${st.kind} ${st.schema ? st.schema + '.' : ''}${st.name}`
          rep.part({id: `ddl:${st.id}`, label, state: 'start', bytes: 0, rows: 0, estBytes: 0})
          try {
            await c.query(st.sql)
          } catch (err) {
            ;(err as Error).message = `post-data ${label}: ${(err as Error).message}`
            throw err
          }
          earlyDone.add(st.id)
          rep.part({id: `ddl:${st.id}`, label, state: 'done', bytes: 0, rows: 0, estBytes: 0})
          const tk = key(st.table!)
          const n = earlyLeft.get(tk)! - 1
          earlyLeft.set(tk, n)
          const t = tables.find((x) => key(x) === tk)
          if (n === 0 && t) work.push({analyze: t})
          return
        }
        const p = w.part
        const id = `${key(p.table)}#${p.index}`
        const label = `${p.table.schema}.${p.table.name}${p.count > 1 ? ` [${p.index + 1}/${p.count}]` : ''}`
        rep.part({id, label, state: 'start', bytes: 0, rows: 0, estBytes: p.estBytes})
        let prevBytes = 0
        await c.query('BEGIN')
        try {
          const whole = p.count === 1
          if (whole) await c.query(`TRUNCATE ONLY ${qualified(p.table)}`)
          const r = await copyPartDirect(
            readers[slotIdx]!,
            c,
            p.table,
            p.range,
            whole,
            (b) => {
              // Rows are known when the part ends (the COPY command tag); bytes as they move.
              bytes += b - prevBytes
              prevBytes = b
              rep.part({id, label, state: 'progress', bytes: b, rows: 0, estBytes: p.estBytes})
              void progressWrite(label)
            },
            o.signal,
            {binary: binaryTables.has(tableKey(p.table)), hash: false},
          )
          bytes += r.rawBytes - prevBytes
          rows += r.rows
          await c.query('COMMIT')
          rep.part({id, label, state: 'done', bytes: r.rawBytes, rows: r.rows, estBytes: p.estBytes})
          const left = partsLeft.get(key(p.table))! - 1
          partsLeft.set(key(p.table), left)
          if (left === 0) {
            tablesDone++
            const sts = early.get(tableKey(p.table)) ?? []
            earlyLeft.set(key(p.table), sts.length)
            for (const st of sts) work.push({ddl: st})
            if (!sts.length) work.push({analyze: p.table})
          }
          await progressWrite(label)
        } catch (err) {
          await c.query('ROLLBACK').catch(() => {})
          throw err
        }
      },
      o.signal,
    )
    await progressWrite(null, true)

    rep.phase('sequences')
    const sequences = await readSequences(main, o.selection.schemas)
    // The snapshot is no longer needed: close the readers and the slot's connection (the slot stays).
    for (const c of readers.splice(0)) await c.end().catch(() => {})
    await slot.conn.end().catch(() => {})
    for (const s of sequences) {
      const exists = await control.query(`SELECT to_regclass($1) IS NOT NULL AS ok`, [qualified(s)])
      if (exists.rows[0].ok) await control.query(`SELECT pg_catalog.setval($1::regclass, $2::bigint, $3)`, [qualified(s), s.lastValue, s.isCalled])
    }

    post.statements = post.statements.filter((st) => !earlyDone.has(st.id))
    rep.phase('post-data', `${post.statements.length} statements (${earlyDone.size} index builds done during the copy)`, {items: post.statements.length})
    await runPostData(o.target, null, post, o.parallel, loaders, rep, o.signal)

    rep.phase('analyze')
    const toAnalyze = tables.filter((t) => !analyzed.has(key(t)))
    await runPool(toAnalyze, loaders.length || 1, async (t, i) => void (await (loaders[i] ?? control).query(`ANALYZE ${qualified(t)}`)), o.signal)

    // Hand over to native logical replication at the slot's position.
    rep.phase('catch-up')
    await setInitState(control, o.nodeId, 'catching_up')
    await writeProgress(control, o.nodeId, {phase: 'catching_up', tables_completed: tables.length, current_table: null, overall_percent: 90})
    createdSubscription = await createSubscription(control, {name: names.subscription, source: o.source, publication: names.publication, slot: names.slot})
    const lagBytes = await waitForCatchUp(control, src, names.slot, names.subscription, maxLag, o.catchupTimeoutMs ?? 10 * 60_000, o.signal, async (lag) => {
      await writeProgress(control, o.nodeId, {lag_bytes: lag, overall_percent: overallPercent('catching_up', 1, lag, maxLag)}).catch(() => {})
    })

    await setInitState(control, o.nodeId, 'synchronized', {completed: true})
    const seconds = (Date.now() - started) / 1000
    await control.query(`UPDATE steep_repl.nodes SET last_sync_throughput_bytes_sec = $2, last_sync_at = now() WHERE node_id = $1`, [o.nodeId, bytes / Math.max(0.001, seconds)])
    await writeProgress(control, o.nodeId, {phase: 'complete', overall_percent: 100, lag_bytes: lagBytes, eta_seconds: 0, created_tables: null})
    rep.phase('done')
    return {
      nodeId: o.nodeId,
      fromNodeId: o.fromNodeId,
      state: 'synchronized',
      lsn: slot.lsn,
      slot: names.slot,
      publication: names.publication,
      subscription: names.subscription,
      tables: tables.length,
      parts: parts.length,
      rows,
      bytes,
      createdTables: createdTables.length,
      sequences: sequences.length,
      lagBytes,
      seconds: Math.round(seconds * 10) / 10,
      phaseSeconds,
    }
  } catch (err) {
    const reason = o.signal?.aborted ? `cancelled: ${redact((err as Error).message)}` : redact((err as Error).message)
    await control.query('ROLLBACK').catch(() => {})
    for (const c of readers) await c.end().catch(() => {})
    for (const c of loaders) await c.query('ROLLBACK').catch(() => {})
    if (slot) await slot.conn.end().catch(() => {})
    if (stateTouched) {
      await cleanupInit(control, src, {subscription: createdSubscription ? names.subscription : null, slot: slot ? names.slot : null, publication: createdPublication ? names.publication : null, tables: [...createdTables, ...createdOther]}).catch((e) =>
        log(`cleanup after the failed init was incomplete: ${redact((e as Error).message)}`),
      )
      await control.query(`DELETE FROM steep_repl.init_slots WHERE slot_name = $1`, [names.slot]).catch(() => {})
      await setInitState(control, o.nodeId, 'failed').catch(() => {})
      await writeProgress(control, o.nodeId, {phase: 'failed', error_message: reason}).catch(() => {})
    }
    throw err
  } finally {
    for (const c of readers) await c.end().catch(() => {})
    for (const c of loaders) await c.end().catch(() => {})
    await src.end().catch(() => {})
    await control.end().catch(() => {})
  }
}

/**
 * A non-table object that an init created on the target, as recorded in init_progress.created_tables
 * beside the tables ({schema, name}): with the statement that drops it.
 */
export interface CreatedObject {
  schema: string
  name: string
  kind: string
  drop: string
}

/**
 * Removes what an init created: the subscription on the target (its slot detached first), the slot
 * and publication on the source, the tables the init created on the target, then the other objects
 * it created (views, sequences, functions, types, schemas: `tables` entries with a `drop`), in the
 * reverse order of their creation, each DROP … IF EXISTS without CASCADE (objectsDropped counts those
 * now gone, some with their tables) — one that something else now depends on is left, and not counted.
 */
export async function cleanupInit(
  target: pg.Client,
  source: pg.Client | null,
  what: {subscription: string | null; slot: string | null; publication: string | null; tables: Array<{schema: string; name: string; drop?: string}>},
): Promise<{subscriptionDropped: boolean; slotDropped: boolean; publicationDropped: boolean; tablesDropped: number; objectsDropped: number}> {
  let subscriptionDropped = false
  if (what.subscription) subscriptionDropped = await dropSubscriptionKeepSlot(target, what.subscription)
  let slotDropped = false
  let publicationDropped = false
  if (source) ({slotDropped, publicationDropped} = await dropSlotAndPublication(source, what.slot, what.publication))
  let tablesDropped = 0
  const tables = what.tables.filter((t) => !t.drop)
  if (tables.length) {
    const existing = await existingOnTarget(target, tables)
    const list = tables.filter((t) => existing.has(key(t)))
    if (list.length) {
      await target.query(`DROP TABLE IF EXISTS ${list.map((t) => qualified(t)).join(', ')} CASCADE`)
      tablesDropped = list.length
    }
  }
  let objectsDropped = 0
  for (const o of what.tables.filter((t) => t.drop).reverse()) {
    // Its own transaction each: a refused drop (2BP01, a dependent object) leaves the others to go.
    try {
      await target.query(o.drop!)
      objectsDropped++
    } catch (err) {
      if ((err as {code?: string}).code !== '2BP01') throw err
    }
  }
  return {subscriptionDropped, slotDropped, publicationDropped, tablesDropped, objectsDropped}
}
