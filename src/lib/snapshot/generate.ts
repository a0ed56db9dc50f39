// snapshot generate, the engine: everything between "here is a source and a directory" and "here
// is a sealed manifest". Commands and the job layer call this; it reports progress through a
// Reporter and stops at the next part boundary when the signal aborts.

import {createHash, randomBytes} from 'node:crypto'
import {constants} from 'node:fs'
import {access, mkdir, readdir, rm} from 'node:fs/promises'
import path from 'node:path'
import type pg from 'pg'
import {openClient} from '../connection/connect.js'
import type {ConnParams} from '../connection/resolve.js'
import {StateError, UsageError} from '../errors.js'
import {type Compression, checkLevel, EXTENSION} from './codec.js'
import {binaryCopyTables, listDataTables, publicationTables, readKeyBounds, readSequences, type Selection, selectTables, tableKey} from './catalog.js'
import {copyPartToFile} from './copy.js'
import {dataFileName, type DataFormat, FORMAT, FORMAT_VERSION, type Manifest, MANIFEST_FILE, type ManifestTable, newSnapshotId, sealManifest} from './manifest.js'
import {type Part, planParts, type SplitBy} from './plan.js'
import {checkSlotName, createPublication, type ExportedSlot, exportSlotOn, importSnapshot, openReplicationConnection, openSession} from './source.js'
import {AtomicFileSink} from './streams.js'
import {dropSlotAndPublication} from './cleanup.js'
import {requirePublishable} from '../privileges.js'
import {lockSnapshotRelations, snapshotDdl} from './ddl.js'
import {runPool} from './pool.js'
import {armed, failpoint} from '../failpoint.js'

export interface Reporter {
  /**
   * A phase starts (generate: prepare, schema, data, sequences, manifest; apply: verify, pre-data,
   * data, post-data, sequences, analyze, subscribe); 'done' ends the last one.
   */
  phase(name: string, detail?: string, totals?: {bytes?: number; rows?: number; items?: number}): void
  /** One part: totals known at start, then bytes/rows as they move. */
  part(event: {id: string; label: string; state: 'start' | 'progress' | 'done'; bytes: number; rows: number; estBytes: number}): void
}

export interface GenerateOptions {
  source: ConnParams
  output: string
  parallel: number
  compression: Compression
  level?: number
  selection: Selection
  /** Keep the slot (and a publication) for a subscriber; otherwise a temporary slot. */
  keepSlot: boolean
  slotName?: string
  publicationName?: string
  splitLargerThan?: number
  /**
   * How split tables are cut: 'pages' (default), ctid page ranges, each part a TID range scan of
   * its own pages; 'key', ranges of a single-column integer primary key (tables without one fall
   * back to pages), each part an index range scan. Measured on PostgreSQL 15, pgbench_accounts
   * scale 50: the server spends ~45% more CPU per row on a key range part (0.48 s against 0.32 s
   * for the same 1/11 of the table), and on two busy cores that is the snapshot's speed.
   */
  splitBy?: SplitBy
  /**
   * 'auto' (default): COPY's binary format for the tables whose column types allow it
   * (binaryCopyTables), text for the rest; 'text': text for every table.
   */
  dataFormat?: DataFormatChoice
  /**
   * Record each compressed part's dataSha256 (the SHA-256 of its COPY data) too: a second hash of
   * every byte, off by default (see copyPartToFile). Uncompressed parts always have it.
   */
  dataChecksum?: boolean
  nodeId?: string | null
  force?: boolean
  snapshotId?: string
  reporter?: Reporter
  signal?: AbortSignal
  toolVersion: string
}

export const DATA_FORMAT_CHOICES = ['auto', 'text'] as const
export type DataFormatChoice = (typeof DATA_FORMAT_CHOICES)[number]

export interface GenerateResult {
  snapshotId: string
  output: string
  manifest: Manifest
}

// What a snapshot directory holds, and the manifest's temporary name (a run killed while it wrote
// the manifest leaves it; --force and a retry of the job replace it like the rest).
const KNOWN_ENTRIES = new Set([MANIFEST_FILE, `${MANIFEST_FILE}.partial`, 'schema', 'data'])

/** The output directory must be empty, or hold only a previous snapshot when --force is given. */
export async function prepareOutputDir(dir: string, force: boolean): Promise<void> {
  let entries: string[] = []
  try {
    entries = await readdir(dir)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOTDIR') throw new UsageError(`--output ${dir} is a file, not a directory`)
    if (code !== 'ENOENT') throw new UsageError(`cannot read --output ${dir}: ${code}`)
  }
  if (entries.length) {
    if (!force) throw new UsageError(`--output ${dir} is not empty`, {hint: 'Choose an empty directory, or pass --force to replace the snapshot in it.'})
    const foreign = entries.filter((e) => !KNOWN_ENTRIES.has(e))
    if (foreign.length) throw new UsageError(`--output ${dir} holds files that are not a snapshot (${foreign.slice(0, 3).join(', ')}); refusing to replace them even with --force`)
    for (const e of entries) await rm(path.join(dir, e), {recursive: true, force: true})
  }
  try {
    await mkdir(path.join(dir, 'schema'), {recursive: true})
    await mkdir(path.join(dir, 'data'), {recursive: true})
    await access(path.join(dir, 'data'), constants.W_OK)
  } catch (err) {
    throw new UsageError(`cannot create --output ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
}

async function checkSource(client: pg.Client): Promise<{serverVersion: string; serverVersionNum: number; database: string}> {
  const r = await client.query(`SELECT current_setting('wal_level') AS wal_level, current_setting('server_version') AS v,
      current_setting('server_version_num')::int AS n, current_database() AS db,
      (SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = current_user) AS can_replicate`)
  const row = r.rows[0]
  if (row.wal_level !== 'logical') {
    throw new StateError(`the source has wal_level = ${row.wal_level}; a consistent snapshot needs a logical replication slot`, {
      hint: "On the source: ALTER SYSTEM SET wal_level = 'logical'; then restart it.",
    })
  }
  if (!row.can_replicate) {
    throw new StateError('the source role can neither replicate nor is superuser', {hint: 'ALTER ROLE <role> REPLICATION; (as a superuser)'})
  }
  return {serverVersion: row.v, serverVersionNum: row.n, database: row.db}
}

/** Writes `text` under a temporary name, renamed when complete (pause: a test-only failpoint half-way). */
async function writeText(file: string, text: string, pause?: string): Promise<{bytes: number; sha256: string}> {
  const buf = Buffer.from(text)
  const sink = new AtomicFileSink(file)
  await new Promise<void>((resolve, reject) => {
    sink.on('error', reject)
    if (pause && armed(pause)) {
      const half = buf.length >> 1
      sink.write(buf.subarray(0, half), () => void failpoint(pause).then(() => sink.end(buf.subarray(half), () => resolve())))
    } else sink.end(buf, () => resolve())
  })
  return {bytes: buf.length, sha256: createHash('sha256').update(buf).digest('hex')}
}

export async function generateSnapshot(o: GenerateOptions): Promise<GenerateResult> {
  if (!Number.isInteger(o.parallel) || o.parallel < 1 || o.parallel > 64) throw new UsageError('--parallel must be between 1 and 64')
  const level = checkLevel(o.compression, o.level)
  const snapshotId = o.snapshotId ?? newSnapshotId(new Date(), randomBytes(4).toString('hex'))
  const slotName = checkSlotName(o.slotName ?? `steep_${snapshotId.toLowerCase()}`)
  const publicationName = o.keepSlot ? (o.publicationName ?? `steep_pub_${snapshotId.toLowerCase()}`) : null
  const rep = o.reporter
  const output = path.resolve(o.output)

  // Every connection is opened at once, before the checks: connecting (a fork and an
  // authentication on the server each) was most of generate's own set-up time when done one after
  // another. The checks still come first in what is reported: they await the control connection only.
  const applicationName = 'steep-repl snapshot'
  const controlConn = openClient(o.source, {applicationName})
  const replicationConn = openReplicationConnection(o.source)
  // N readers for the data and one for the DDL, later all in the slot's snapshot.
  const readerConns = Array.from({length: o.parallel + 1}, () => openSession(o.source, applicationName))
  // Settled (and closed) in the finally block whatever happens first.
  for (const p of [controlConn, replicationConn, ...readerConns]) p.catch(() => {})
  let control: pg.Client | undefined
  const readers: pg.Client[] = []
  let slot: ExportedSlot | undefined
  let createdPublication = false
  let preparedOutput = false
  let pendingDdl: Promise<unknown> | undefined
  let ok = false
  try {
    control = await controlConn
    control.on('error', () => {})
    rep?.phase('prepare')
    const server = await checkSource(control)
    await prepareOutputDir(output, Boolean(o.force))
    preparedOutput = true

    // The publication must exist before the slot's consistent point (see source.ts).
    if (publicationName) {
      await control.query('BEGIN ISOLATION LEVEL REPEATABLE READ')
      const candidates = selectTables(await listDataTables(control), o.selection)
      await requirePublishable(control, publicationTables(candidates), 'the publication of a kept slot; --no-slot needs only SELECT')
      await createPublication(control, publicationName, publicationTables(candidates))
      await control.query('COMMIT')
      createdPublication = true
    }
    slot = await exportSlotOn(await replicationConn, slotName, !o.keepSlot)
    const snapshotName = slot.snapshotName
    for (const c of await Promise.all(readerConns)) {
      await importSnapshot(c, snapshotName)
      readers.push(c)
    }
    const ddlReader = readers[o.parallel]!

    rep?.phase('schema')
    // Locks first, as pg_dump does: from here no DDL can change a selected table until the end.
    await lockSnapshotRelations(ddlReader, o.selection)
    await failpoint('generate:schema', o.signal)
    const tables = selectTables(await listDataTables(ddlReader), o.selection)
    if (o.splitBy === 'key') for (const t of tables) if (o.splitLargerThan && t.bytes > o.splitLargerThan) await readKeyBounds(ddlReader, t)
    const binary = (o.dataFormat ?? 'auto') === 'auto' ? await binaryCopyTables(ddlReader, tables) : new Set<string>()
    const formatOf = (t: {schema: string; name: string}): DataFormat => (binary.has(tableKey(t)) ? 'binary' : 'text')
    // The DDL is read and written while the data is copied (it is needed only for the manifest).
    const schemaFiles = (async () => {
      const ddl = await snapshotDdl(ddlReader, o.selection)
      return {
        preData: await writeText(path.join(output, 'schema', 'pre-data.sql'), ddl.preData),
        postData: await writeText(path.join(output, 'schema', 'post-data.sql'), ddl.postData),
        postDataPlan: await writeText(path.join(output, 'schema', 'post-data.json'), ddl.postDataPlan),
        clean: await writeText(path.join(output, 'schema', 'clean.sql'), ddl.clean),
      }
    })()
    schemaFiles.catch(() => {}) // awaited below; a data failure must not leave it unhandled
    pendingDdl = schemaFiles

    const parts = planParts(tables, {splitLargerThan: o.splitLargerThan, by: o.splitBy, connections: o.parallel})
    rep?.phase('data', `${tables.length} tables in ${parts.length} parts (sizes on disk)`, {
      bytes: Math.round(parts.reduce((s, p) => s + p.estBytes, 0)),
      rows: Math.round(tables.reduce((s, t) => s + t.rows, 0)),
      items: parts.length,
    })
    const tableIndex = new Map(tables.map((t, i) => [t, i]))
    const results = new Map<Part<(typeof tables)[number]>, Awaited<ReturnType<typeof copyPartToFile>> & {file: string}>()
    await runPool(
      parts,
      o.parallel,
      async (p, slotIdx) => {
        const file = dataFileName(tableIndex.get(p.table)!, p.index, EXTENSION[o.compression])
        const id = file
        const label = `${p.table.schema}.${p.table.name}${p.count > 1 ? ` [${p.index + 1}/${p.count}]` : ''}`
        rep?.part({id, label, state: 'start', bytes: 0, rows: 0, estBytes: p.estBytes})
        const r = await copyPartToFile(
          readers[slotIdx]!,
          p.table,
          p.range,
          path.join(output, file),
          o.compression,
          level,
          {
            onProgress: (bytes) => rep?.part({id, label, state: 'progress', bytes, rows: 0, estBytes: p.estBytes}),
            signal: o.signal,
            binary: formatOf(p.table) === 'binary',
            dataChecksum: o.dataChecksum,
          },
        )
        results.set(p, {...r, file})
        rep?.part({id, label, state: 'done', bytes: r.rawBytes, rows: r.rows, estBytes: p.estBytes})
      },
      o.signal,
    ).finally(() => Promise.allSettled([...results.values()].map((r) => r.sealed)))
    // Every data file fsynced and under its name before the manifest can name it.
    await Promise.all([...results.values()].map((r) => r.sealed))

    rep?.phase('sequences')
    const sequences = await readSequences(readers[0]!, o.selection.schemas)
    const {preData, postData, postDataPlan, clean} = await schemaFiles
    await failpoint('generate:sequences', o.signal)

    rep?.phase('manifest')
    const mtables: ManifestTable[] = tables.map((t) => {
      const tparts = parts
        .filter((p) => p.table === t)
        .sort((a, b) => a.index - b.index)
        .map((p) => {
          const r = results.get(p)!
          return {index: p.index, range: p.range, file: r.file, rows: r.rows, rawBytes: r.rawBytes, fileBytes: r.fileBytes, sha256: r.sha256, dataSha256: r.dataSha256}
        })
      return {schema: t.schema, name: t.name, columns: t.columns, format: formatOf(t), rows: tparts.reduce((s, p) => s + p.rows, 0), rawBytes: tparts.reduce((s, p) => s + p.rawBytes, 0), parts: tparts}
    })
    const allParts = mtables.flatMap((t) => t.parts)
    const manifest = sealManifest({
      format: FORMAT,
      formatVersion: FORMAT_VERSION,
      snapshotId,
      createdAt: new Date().toISOString(),
      tool: {name: 'steep-repl', version: o.toolVersion},
      source: {nodeId: o.nodeId ?? null, ...server, systemIdentifier: slot.systemId},
      lsn: slot.lsn,
      slot: o.keepSlot ? {name: slot.slotName, kept: true} : null,
      publication: publicationName,
      compression: {algorithm: o.compression, level},
      schemaFiles: {
        preData: {file: 'schema/pre-data.sql', ...preData},
        postData: {file: 'schema/post-data.sql', ...postData},
        postDataPlan: {file: 'schema/post-data.json', ...postDataPlan},
        clean: {file: 'schema/clean.sql', ...clean},
      },
      tables: mtables,
      sequences,
      totals: {
        tables: mtables.length,
        parts: allParts.length,
        rows: allParts.reduce((s, p) => s + p.rows, 0),
        rawBytes: allParts.reduce((s, p) => s + p.rawBytes, 0),
        fileBytes: allParts.reduce((s, p) => s + p.fileBytes, 0),
      },
    })
    await writeText(path.join(output, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n', 'generate:manifest')
    rep?.phase('done')
    ok = true
    return {snapshotId, output, manifest}
  } finally {
    // The DDL reader may still be reading: let it finish before its connection goes.
    await pendingDdl?.catch(() => {})
    // All at once: each end() waits for the server to close its socket (~5 ms apiece here).
    // Closing the replication connection releases the exported snapshot and drops a temporary slot.
    await Promise.all(
      [...readerConns, replicationConn].map(async (conn) => {
        const c = await conn.catch(() => undefined)
        await c?.end().catch(() => {})
      }),
    )
    if (!ok && control) {
      // No orphans: a kept slot and the publication made for it go when the snapshot failed.
      if (o.keepSlot && (slot || createdPublication)) {
        await dropSlotAndPublication(control, slot ? slotName : null, createdPublication ? publicationName : null).catch(() => {})
      }
      // Only what this run wrote: a directory refused by prepareOutputDir is left exactly as it was.
      if (preparedOutput) {
        await rm(path.join(output, 'data'), {recursive: true, force: true}).catch(() => {})
        await rm(path.join(output, 'schema'), {recursive: true, force: true}).catch(() => {})
      }
    }
    await control?.end().catch(() => {})
  }
}
