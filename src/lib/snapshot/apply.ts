// snapshot apply, the engine: verify, then the sections in pg_restore's order (pre-data, data with
// N parallel COPY, post-data, sequences, ANALYZE), then optionally the subscription that hands
// over to native logical replication at the snapshot's slot. Per-part state lives in the target
// (steep_repl.snapshot_apply_parts, written in the same transaction as the part's rows), so
// --resume after a crash continues exactly where the committed work ends.

import {readFile} from 'node:fs/promises'
import path from 'node:path'
import pg from 'pg'
import {openClient} from '../connection/connect.js'
import {conninfoOf} from '../connection/ref.js'
import type {ConnParams} from '../connection/resolve.js'
import {StateError, UsageError} from '../errors.js'
import {failpoint} from '../failpoint.js'
import {install} from '../install/migrations.js'
import {requireReplicaSessions, requireSubscriptionRights} from '../privileges.js'
import {AutovacuumGuard} from './autovacuum-guard.js'
import {tableKey} from './catalog.js'
import {copyFileToTable, FileChangedError, qualified} from './copy.js'
import type {Reporter} from './generate.js'
import {type Manifest, type ManifestTable, tableFormat} from './manifest.js'
import {ManifestError, readManifest, verifyFiles} from './manifest-io.js'
import {runPool} from './pool.js'
import {WorkQueue} from './work-queue.js'
import {openSession} from './source.js'
import type {PostDataPlan} from './ddl.js'
import {setSequenceQuery} from '../schema/index.js'

export interface ApplyOptions {
  target: ConnParams
  input: string
  parallel: number
  verify: boolean
  resume: boolean
  /**
   * Drop the snapshot's objects on the target first (IF EXISTS, dependents first, no CASCADE), in
   * the transaction that then creates them again, forgetting any earlier apply of this snapshot.
   * With resume too (a job's retry of a --clean apply): resume if this apply had started, else clean.
   */
  clean?: boolean
  /** Create the subscription from this source (the snapshot must have kept its slot). */
  subscribeFrom?: ConnParams
  subscriptionName?: string
  reporter?: Reporter
  signal?: AbortSignal
}

export interface ApplyResult {
  snapshotId: string
  tables: number
  parts: number
  partsSkipped: number
  rows: number
  subscription: string | null
  lsn: string
}

type Phase = 'pre-data' | 'data' | 'post-data' | 'sequences' | 'analyze' | 'subscribe' | 'done'
const ORDER: Phase[] = ['pre-data', 'data', 'post-data', 'sequences', 'analyze', 'subscribe', 'done']

/** Tables of the manifest that already exist on the target (a fresh apply refuses to touch them). */
async function existingTables(client: pg.Client, m: Manifest): Promise<string[]> {
  if (!m.tables.length) return []
  const r = await client.query<{n: string}>(
    `SELECT n.nspname || '.' || c.relname AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
    [m.tables.map((t) => t.schema), m.tables.map((t) => t.name)],
  )
  return r.rows.map((x) => x.n)
}

/**
 * apply --clean, inside the pre-data transaction: forget an earlier apply of this snapshot and drop
 * the snapshot's objects. Something of the target's own that depends on them stops it (nothing is
 * dropped with CASCADE), and the transaction leaves the target as it was.
 */
async function cleanTarget(control: pg.Client, dir: string, m: Manifest): Promise<void> {
  await control.query(`DELETE FROM steep_repl.snapshot_apply_parts WHERE snapshot_id = $1`, [m.snapshotId])
  await control.query(`DELETE FROM steep_repl.snapshot_apply WHERE snapshot_id = $1`, [m.snapshotId])
  const sql = await readFile(path.join(dir, m.schemaFiles.clean!.file), 'utf8')
  try {
    await control.query(sql)
  } catch (err) {
    if ((err as {code?: string}).code === '2BP01') {
      const detail = (err as {detail?: string}).detail
      throw new StateError(`--clean cannot drop the snapshot's objects on the target: ${(err as Error).message}${detail ? ` (${detail.replace(/\n/g, '; ')})` : ''}`, {
        hint: 'Objects that are not in the snapshot depend on them; drop those first. Nothing was changed.',
      })
    }
    throw err
  }
}

async function setPhase(c: pg.Client, id: string, phase: Phase): Promise<void> {
  await c.query(
    `UPDATE steep_repl.snapshot_apply SET phase = $2, updated_at = now(), completed_at = CASE WHEN $2 = 'done' THEN now() END WHERE snapshot_id = $1`,
    [id, phase],
  )
}

export async function applySnapshot(o: ApplyOptions): Promise<ApplyResult> {
  if (!Number.isInteger(o.parallel) || o.parallel < 1 || o.parallel > 64) throw new UsageError('--parallel must be between 1 and 64')
  const dir = path.resolve(o.input)
  const rep = o.reporter
  const m = await readManifest(dir)
  if (o.clean && !m.schemaFiles.clean) {
    throw new UsageError('this snapshot has no schema/clean.sql (it was written by an older version): --clean cannot know what to drop', {
      hint: 'Drop the tables on the target yourself, or generate the snapshot again.',
    })
  }
  if (o.subscribeFrom && (!m.slot || !m.publication)) {
    throw new UsageError('this snapshot was generated with --no-slot: there is no slot to subscribe from', {
      hint: 'Generate it again with a kept slot (the default) to seed a replica.',
    })
  }
  // Files verified here are not hashed again while loading (their identity is checked instead).
  let verified = new Map<string, string>()
  if (o.verify) {
    rep?.phase('verify', 'checking sizes and checksums')
    const v = await verifyFiles(dir, m, o.parallel)
    verified = v.identities
    if (!v.ok) {
      throw new ManifestError(`snapshot verification failed; the target was not touched: ${v.problems.map((p) => `${p.file}: ${p.problem} (${p.detail})`).join('; ')}`)
    }
    await failpoint('apply:verify', o.signal)
  }

  const control = await openClient(o.target, {applicationName: 'steep-repl apply'})
  control.on('error', () => {})
  const loaders: pg.Client[] = []
  try {
    // Before anything changes on the target: a role that could not finish is refused here.
    await requireReplicaSessions(control, 'snapshot apply')
    if (o.subscribeFrom) await requireSubscriptionRights(control)
    await install(control)
    const state = await control.query<{phase: Phase; manifest_checksum: string}>(
      `SELECT phase, manifest_checksum FROM steep_repl.snapshot_apply WHERE snapshot_id = $1`,
      [m.snapshotId],
    )
    let phase: Phase
    if (state.rows.length && (!o.clean || o.resume)) {
      if (!o.resume) {
        const ph = state.rows[0]!.phase
        throw new StateError(
          ph === 'done'
            ? `snapshot ${m.snapshotId} is already applied to this database`
            : `an apply of snapshot ${m.snapshotId} stopped in phase ${ph} on this database; continue it with --resume`,
        )
      }
      if (state.rows[0]!.manifest_checksum !== m.checksum) throw new StateError('the snapshot directory changed since the apply started; refusing to resume')
      phase = state.rows[0]!.phase
    } else if (!o.clean) {
      const existing = await existingTables(control, m)
      if (existing.length) {
        throw new StateError(`the target already has ${existing.length} of the snapshot's tables (${existing.slice(0, 5).join(', ')}${existing.length > 5 ? ', …' : ''})`, {
          hint: 'Apply into an empty database, drop those tables first, or pass --clean to replace them.',
        })
      }
      phase = 'pre-data'
    } else {
      phase = 'pre-data'
    }
    const at = (p: Phase) => ORDER.indexOf(phase) <= ORDER.indexOf(p)

    if (at('pre-data')) {
      rep?.phase('pre-data')
      const sql = await readFile(path.join(dir, m.schemaFiles.preData.file), 'utf8')
      await control.query('BEGIN')
      if (o.clean) await cleanTarget(control, dir, m)
      await control.query(`INSERT INTO steep_repl.snapshot_apply (snapshot_id, manifest_checksum) VALUES ($1, $2)`, [m.snapshotId, m.checksum])
      await control.query(sql)
      await setPhase(control, m.snapshotId, 'data')
      await control.query('COMMIT')
      phase = 'data'
    }

    let partsSkipped = 0
    let rows = 0
    const plan = JSON.parse(await readFile(path.join(dir, m.schemaFiles.postDataPlan.file), 'utf8')) as PostDataPlan
    const analyzed = new Set<string>()
    if (at('data')) {
      rep?.phase('data', `${m.tables.length} tables`, {bytes: m.totals.rawBytes, rows: m.totals.rows, items: m.totals.parts})
      const doneFiles = new Set(
        (await control.query<{file: string}>(`SELECT file FROM steep_repl.snapshot_apply_parts WHERE snapshot_id = $1`, [m.snapshotId])).rows.map((r) => r.file),
      )
      const work = m.tables
        .flatMap((t) => t.parts.map((p) => ({t, p})))
        .filter(({p}) => {
          if (doneFiles.has(p.file)) partsSkipped++
          return !doneFiles.has(p.file)
        })
        .sort((a, b) => b.p.rawBytes - a.p.rawBytes)
      const early = earlyStatements(plan)
      // Largest first, but an idle connection takes the first part of a table no other connection is
      // loading when there is one: two COPYs into one table contend for its extension lock (on
      // PostgreSQL 15 they load pgbench_accounts only ~1.3x faster than one), two tables do not.
      const queue = new WorkQueue<DataWork>(work.map((w) => ({part: w})), otherTableFirst)
      const partsLeft = new Map(m.tables.map((t) => [tableKey(t), t.parts.filter((p) => !doneFiles.has(p.file)).length]))
      const ddlLeft = new Map<string, number>()
      // A table's rows are all in: its own index builds next (those not done by an earlier run),
      // then its ANALYZE, on the same connections while other tables still load (as pg_restore
      // builds a table's indexes as soon as its data is restored).
      const guard = new AutovacuumGuard(control)
      const tableLoaded = async (t: ManifestTable) => {
        await guard.release(tableKey(t))
        const sts = (early.get(tableKey(t)) ?? []).filter((st) => !doneFiles.has(`ddl:${st.id}`))
        ddlLeft.set(tableKey(t), sts.length)
        if (sts.length) queue.push(...sts.map((st) => ({ddl: st, table: t})))
        else queue.push({analyze: t})
      }
      // Tables a previous run finished loading but whose builds may not have happened.
      for (const t of m.tables) if (partsLeft.get(tableKey(t)) === 0 && t.parts.length > 0) await tableLoaded(t)
      for (let i = 0; i < Math.max(1, Math.min(o.parallel, queue.size)); i++) {
        const c = await openSession(o.target, 'steep-repl apply')
        await c.query(plan.settings.join('\n'))
        // Index builds use what the server allows per connection.
        await c.query(`SET maintenance_work_mem = '256MB'`).catch(() => {})
        // Loading is not replicated onward and does not fire the user's triggers.
        await c.query(`SET session_replication_role = replica`)
        loaders.push(c)
      }
      // Autovacuum stays off the tables loaded part by part until each is complete (a whole table's
      // TRUNCATE keeps it off during its own load).
      await guard.start(m.tables.filter((t) => t.parts.length > 1 && partsLeft.get(tableKey(t))! > 0).map((t) => ({key: tableKey(t), table: t})))
      await queue.run(
        loaders.length,
        async (w, slot) => {
          const c = loaders[slot]!
          if ('analyze' in w) {
            await c.query(`ANALYZE ${qualified(w.analyze)}`)
            analyzed.add(tableKey(w.analyze))
            return
          }
          if ('ddl' in w) {
            await runPostDataStatement(c, m.snapshotId, w.ddl, rep)
            const left = ddlLeft.get(tableKey(w.table))! - 1
            ddlLeft.set(tableKey(w.table), left)
            if (left === 0) queue.push({analyze: w.table})
            return
          }
          const {t, p} = w.part
          const label = `${t.schema}.${t.name}${t.parts.length > 1 ? ` [${p.index + 1}/${t.parts.length}]` : ''}`
          rep?.part({id: p.file, label, state: 'start', bytes: 0, rows: 0, estBytes: p.rawBytes})
          await c.query('BEGIN')
          try {
            // A whole table is emptied in the same transaction, which also lets COPY FREEZE skip the
            // later vacuum; a split table's parts only add their own rows.
            const whole = t.parts.length === 1
            if (whole) await c.query(`TRUNCATE ONLY ${qualified(t)}`)
            const r = await copyFileToTable(
              c,
              t,
              path.join(dir, p.file),
              m.compression.algorithm,
              whole,
              {
                onProgress: (bytes) => rep?.part({id: p.file, label, state: 'progress', bytes, rows: 0, estBytes: p.rawBytes}),
                signal: o.signal,
                verifiedIdentity: verified.get(p.file),
                binary: tableFormat(t) === 'binary',
                dataChecksum: p.dataSha256 !== null,
              },
            ).catch((err: unknown) => {
              if (err instanceof FileChangedError) throw new ManifestError(`${err.message}; the part was rolled back`, {hint: 'Verify the snapshot again (snapshot verify) and re-run the apply with --resume.'})
              throw err
            })
            // A file not verified was hashed as it was read; a verified one was checked unchanged.
            const hashed = !verified.has(p.file)
            const dataDiffers = p.dataSha256 !== null && r.dataSha256 !== p.dataSha256
            if ((hashed && (r.sha256 !== p.sha256 || dataDiffers)) || r.rows !== p.rows || r.rawBytes !== p.rawBytes) {
              throw new ManifestError(`${p.file} does not match the manifest (changed after verification?); the part was rolled back`)
            }
            await c.query(
              `INSERT INTO steep_repl.snapshot_apply_parts (snapshot_id, file, rows, raw_bytes, data_sha256) VALUES ($1, $2, $3, $4, $5)`,
              [m.snapshotId, p.file, r.rows, r.rawBytes, p.dataSha256 ?? ''],
            )
            await c.query('COMMIT')
            rows += r.rows
            rep?.part({id: p.file, label, state: 'done', bytes: r.rawBytes, rows: r.rows, estBytes: p.rawBytes})
          } catch (err) {
            await c.query('ROLLBACK').catch(() => {})
            throw err
          }
          const left = partsLeft.get(tableKey(t))! - 1
          partsLeft.set(tableKey(t), left)
          if (left === 0) await tableLoaded(t)
        },
        o.signal,
      ).finally(() => guard.end().catch(() => {}))
      await setPhase(control, m.snapshotId, 'post-data')
      phase = 'post-data'
    }

    if (at('post-data')) {
      rep?.phase('post-data', `${plan.statements.length} statements`, {items: plan.statements.length})
      await runPostData(o.target, m.snapshotId, plan, o.parallel, loaders, rep, o.signal)
      await setPhase(control, m.snapshotId, 'sequences')
      phase = 'sequences'
    }

    if (at('sequences')) {
      rep?.phase('sequences')
      await control.query('BEGIN')
      for (const s of m.sequences) {
        await control.query(setSequenceQuery(s))
      }
      await setPhase(control, m.snapshotId, 'analyze')
      await control.query('COMMIT')
      phase = 'analyze'
    }

    if (at('analyze')) {
      rep?.phase('analyze')
      const todo = m.tables.filter((t) => !analyzed.has(tableKey(t)))
      const conns = loaders.length ? loaders : [control]
      await runPool(todo, conns.length, async (t, slot) => void (await conns[slot]!.query(`ANALYZE ${qualified(t)}`)), o.signal)
      await setPhase(control, m.snapshotId, 'subscribe')
      phase = 'subscribe'
    }

    let subscription: string | null = null
    if (at('subscribe')) {
      if (o.subscribeFrom) {
        rep?.phase('subscribe')
        subscription = o.subscriptionName ?? `steep_sub_${m.snapshotId.toLowerCase()}`
        await createSubscription(control, {name: subscription, source: o.subscribeFrom, publication: m.publication!, slot: m.slot!.name})
      }
      await setPhase(control, m.snapshotId, 'done')
    }
    rep?.phase('done')
    return {
      snapshotId: m.snapshotId,
      tables: m.tables.length,
      parts: m.tables.reduce((s, t) => s + t.parts.length, 0),
      partsSkipped,
      rows,
      subscription,
      lsn: m.lsn,
    }
  } catch (err) {
    await control.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    for (const c of loaders) await c.end().catch(() => {})
    await control.end().catch(() => {})
  }
}

/**
 * Post-data, wave by wave (index builds, then constraints attached USING INDEX, partition index
 * attaches, then foreign keys, triggers and the rest), the statements of a wave in parallel on
 * `parallel` connections, each once the statements it depends on are done. Each statement commits
 * with its state row, so --resume skips exactly the ones that finished (snapshotId null: no state
 * rows, as node init runs it once).
 */
export async function runPostData(
  target: ConnParams,
  snapshotId: string | null,
  plan: PostDataPlan,
  parallel: number,
  pool: pg.Client[],
  rep: Reporter | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  const conns = [...pool]
  while (conns.length < Math.max(1, parallel)) {
    const c = await openClient(target, {applicationName: 'steep-repl apply'})
    c.on('error', () => {})
    pool.push(c)
    conns.push(c)
  }
  for (const c of conns) {
    await c.query(`RESET session_replication_role`)
    await c.query(plan.settings.join('\n'))
    // Index builds use what the server allows per connection.
    await c.query(`SET maintenance_work_mem = '256MB'`).catch(() => {})
  }
  const doneRows = snapshotId
    ? (await conns[0]!.query<{file: string}>(`SELECT file FROM steep_repl.snapshot_apply_parts WHERE snapshot_id = $1 AND file LIKE 'ddl:%'`, [snapshotId])).rows
    : []
  const done = new Set(doneRows.map((r) => r.file.slice(4)))
  const all = new Set(plan.statements.map((s) => s.id))
  for (let wave = 1; wave <= 4; wave++) {
    const todo = plan.statements.filter((s) => Math.min(Math.max(s.wave, 1), 4) === wave && !done.has(s.id))
    const waiting = new Map<string, Promise<void>>()
    const finished = new Map<string, () => void>()
    for (const s of todo) waiting.set(s.id, new Promise<void>((res) => finished.set(s.id, res)))
    await runPool(
      todo,
      conns.length,
      async (s, slot) => {
        // Dependencies inside this wave that are not done yet (earlier waves are complete).
        for (const d of s.dependsOn) if (all.has(d) && !done.has(d) && waiting.has(d)) await waiting.get(d)
        await runPostDataStatement(conns[slot]!, snapshotId, s, rep)
        done.add(s.id)
        finished.get(s.id)!()
      },
      signal,
    )
  }
}

type PlanStatement = PostDataPlan['statements'][number]

/** One post-data statement in its own transaction with its state row (snapshotId null: none). */
async function runPostDataStatement(c: pg.Client, snapshotId: string | null, s: PlanStatement, rep: Reporter | undefined): Promise<void> {
  const label = `${s.kind} ${s.schema ? s.schema + '.' : ''}${s.name}`
  rep?.part({id: `ddl:${s.id}`, label, state: 'start', bytes: 0, rows: 0, estBytes: 0})
  await c.query('BEGIN')
  try {
    await c.query(s.sql)
    if (snapshotId) {
      await c.query(`INSERT INTO steep_repl.snapshot_apply_parts (snapshot_id, file, rows, raw_bytes, data_sha256) VALUES ($1, $2, 0, 0, '')`, [
        snapshotId,
        `ddl:${s.id}`,
      ])
    }
    await c.query('COMMIT')
  } catch (err) {
    await c.query('ROLLBACK').catch(() => {})
    ;(err as Error).message = `post-data ${label}: ${(err as Error).message}`
    throw err
  }
  rep?.part({id: `ddl:${s.id}`, label, state: 'done', bytes: 0, rows: 0, estBytes: 0})
}

/**
 * The statements that can run as soon as one table's rows are loaded: its wave-1 statements (index
 * builds) that depend on nothing else in the plan, by table.
 */
export function earlyStatements(plan: PostDataPlan): Map<string, PlanStatement[]> {
  const ids = new Set(plan.statements.map((st) => st.id))
  const early = new Map<string, PlanStatement[]>()
  for (const st of plan.statements) {
    if (st.wave !== 1 || !st.table || st.dependsOn.some((d) => ids.has(d))) continue
    const k = tableKey(st.table)
    early.set(k, [...(early.get(k) ?? []), st])
  }
  return early
}

type DataWork = {part: {t: ManifestTable; p: ManifestTable['parts'][number]}} | {ddl: PlanStatement; table: ManifestTable} | {analyze: ManifestTable}

/** The first queued item that is not a part of a table being loaded (else the first). */
export function otherTableFirst(queued: readonly DataWork[], running: readonly DataWork[]): number {
  const loading = new Set(running.flatMap((w) => ('part' in w ? [tableKey(w.part.t)] : [])))
  if (!loading.size) return 0
  const i = queued.findIndex((w) => !('part' in w) || !loading.has(tableKey(w.part.t)))
  return i < 0 ? 0 : i
}

/**
 * CREATE SUBSCRIPTION that takes over an existing slot at its position: create_slot = false,
 * copy_data = false, origin = none on 16+ (so changes a peer applied are not sent back). Nothing
 * when a subscription of that name exists. Used by snapshot apply --subscribe and node init/link.
 */
export async function createSubscription(
  control: pg.Client,
  o: {name: string; source: ConnParams; publication: string; slot: string; enabled?: boolean},
): Promise<boolean> {
  const exists = await control.query(`SELECT 1 FROM pg_subscription WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`, [o.name])
  if (exists.rows.length) return false
  const v = (await control.query<{n: number}>(`SELECT current_setting('server_version_num')::int AS n`)).rows[0]!.n
  const withOpts = [`create_slot = false`, `slot_name = ${pg.escapeLiteral(o.slot)}`, `copy_data = false`]
  if (v >= 160000) withOpts.push(`origin = none`)
  if (o.enabled === false) withOpts.push(`enabled = false`)
  // CREATE SUBSCRIPTION cannot take parameters: literals are escaped with escapeLiteral.
  await control.query(
    `CREATE SUBSCRIPTION ${pg.escapeIdentifier(o.name)} CONNECTION ${pg.escapeLiteral(conninfoOf(o.source, true))} PUBLICATION ${pg.escapeIdentifier(o.publication)} WITH (${withOpts.join(', ')})`,
  )
  return true
}

/** Drops a subscription without touching its slot (the slot is dropped on the source separately). */
export async function dropSubscriptionKeepSlot(control: pg.Client, name: string): Promise<boolean> {
  const exists = await control.query(`SELECT 1 FROM pg_subscription WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`, [name])
  if (!exists.rows.length) return false
  const n = pg.escapeIdentifier(name)
  await control.query(`ALTER SUBSCRIPTION ${n} DISABLE`)
  await control.query(`ALTER SUBSCRIPTION ${n} SET (slot_name = NONE)`)
  await control.query(`DROP SUBSCRIPTION ${n}`)
  return true
}
