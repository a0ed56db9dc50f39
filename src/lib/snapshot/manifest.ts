// manifest.json of a snapshot directory: its zod schema, its own checksum, and the rules that keep
// every path it names inside the directory. Pure (no I/O): manifest-io.ts reads and writes it.
// The format is documented in docs/snapshot-format.md; change both together and bump FORMAT_VERSION
// for anything an older reader would misread.

import {createHash} from 'node:crypto'
import {z} from 'zod'
import {COMPRESSIONS} from './codec.js'

export const FORMAT = 'steep-repl-snapshot'
/**
 * Written by this version; still read: 1 (every table in COPY text, no per-table format) and 2
 * (every part with its dataSha256).
 */
export const FORMAT_VERSION = 3
export const READABLE_FORMAT_VERSIONS = [1, 2, 3] as const
export const MANIFEST_FILE = 'manifest.json'

/** Relative paths the manifest may name: fixed directories, plain file names, nothing else. */
const SAFE_PATH = /^(schema|data)\/[A-Za-z0-9][A-Za-z0-9._-]*$/

export function isSafeRelativePath(p: string): boolean {
  return SAFE_PATH.test(p) && !p.includes('..')
}

const sha256 = z.string().regex(/^[0-9a-f]{64}$/)
const filePath = z.string().refine(isSafeRelativePath, {message: 'path escapes the snapshot directory or is not a snapshot file name'})
const count = z.number().int().min(0)
const lsn = z.string().regex(/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i)

const fileEntry = z.object({file: filePath, bytes: count, sha256})

const rangeSchema = z.discriminatedUnion('kind', [
  z.object({kind: z.literal('all')}),
  z.object({kind: z.literal('key'), column: z.string(), from: z.string().regex(/^-?\d+$/).nullable(), to: z.string().regex(/^-?\d+$/).nullable()}),
  z.object({kind: z.literal('pages'), from: count.nullable(), to: count.nullable()}),
])

/** COPY formats a table's files may be in (see binaryCopyTables in catalog.ts for when binary is used). */
export const DATA_FORMATS = ['text', 'binary'] as const
export type DataFormat = (typeof DATA_FORMATS)[number]

/** The COPY format of a manifest table's files. */
export const tableFormat = (t: {format?: DataFormat}): DataFormat => t.format ?? 'text'

export const partSchema = z.object({
  index: count,
  range: rangeSchema,
  file: filePath,
  rows: count,
  /** Bytes of COPY data (in the table's format) before compression. */
  rawBytes: count,
  /** Bytes of the file as stored. */
  fileBytes: count,
  /** SHA-256 of the file as stored (verify reads only this). */
  sha256,
  /**
   * SHA-256 of the COPY data (compare with a target's COPY output in the same format, whatever the
   * compression); null for a compressed part written without --data-checksum (format version 3).
   */
  dataSha256: sha256.nullable(),
})

export const tableSchema = z.object({
  schema: z.string().min(1),
  name: z.string().min(1),
  /** Columns copied, in order (generated columns are not copied; the target computes them). */
  columns: z.array(z.string().min(1)),
  /** COPY format of the table's files; absent (format version 1) means text. */
  format: z.enum(DATA_FORMATS).optional(),
  rows: count,
  rawBytes: count,
  parts: z.array(partSchema).min(1),
})

export const sequenceSchema = z.object({
  schema: z.string().min(1),
  name: z.string().min(1),
  /** Decimal string: sequences are int8 and may exceed Number's precision. */
  lastValue: z.string().regex(/^-?\d+$/),
  /** false for a sequence never used since creation (or reset): the next nextval returns lastValue. */
  isCalled: z.boolean(),
})

export const manifestSchema = z
  .object({
    format: z.literal(FORMAT),
    formatVersion: z.literal(READABLE_FORMAT_VERSIONS),
    snapshotId: z.string().regex(/^[A-Za-z0-9_-]{1,100}$/),
    createdAt: z.string(),
    tool: z.object({name: z.string(), version: z.string()}),
    source: z.object({
      nodeId: z.string().nullable(),
      database: z.string(),
      serverVersion: z.string(),
      serverVersionNum: z.number().int(),
      systemIdentifier: z.string(),
    }),
    lsn,
    slot: z.object({name: z.string(), kept: z.boolean()}).nullable(),
    publication: z.string().nullable(),
    compression: z.object({algorithm: z.enum(COMPRESSIONS), level: z.number().int()}),
    // clean is optional: snapshots written before it existed cannot be applied with --clean.
    schemaFiles: z.object({preData: fileEntry, postData: fileEntry, postDataPlan: fileEntry, clean: fileEntry.optional()}),
    tables: z.array(tableSchema),
    sequences: z.array(sequenceSchema),
    totals: z.object({tables: count, parts: count, rows: count, rawBytes: count, fileBytes: count}),
    checksum: z.string().regex(/^sha256:[0-9a-f]{64}$/),
  })
  .strict()
  .superRefine((m, ctx) => {
    // A part without dataSha256 exists only since format 3, and only compressed (the hash of an
    // uncompressed file is its data's).
    if (m.formatVersion >= 3 && m.compression.algorithm !== 'none') return
    m.tables.forEach((t, ti) =>
      t.parts.forEach((p, pi) => {
        if (p.dataSha256 === null) {
          ctx.addIssue({code: z.ZodIssueCode.custom, path: ['tables', ti, 'parts', pi, 'dataSha256'], message: `null is allowed only in a compressed snapshot of format version 3 or later`})
        }
      }),
    )
  })

export type Manifest = z.infer<typeof manifestSchema>
export type ManifestTable = z.infer<typeof tableSchema>
export type ManifestPart = z.infer<typeof partSchema>
export type ManifestSequence = z.infer<typeof sequenceSchema>

/** JSON with object keys sorted at every level and no whitespace: the bytes the checksum covers. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}

/** sha256:<hex> of the canonical JSON of the manifest without its checksum field. */
export function manifestChecksum(m: Omit<Manifest, 'checksum'> | Manifest): string {
  const {checksum: _ignored, ...rest} = m as Manifest
  return `sha256:${createHash('sha256').update(canonicalJson(rest)).digest('hex')}`
}

export function sealManifest(m: Omit<Manifest, 'checksum'>): Manifest {
  return {...m, checksum: manifestChecksum(m)}
}

export type ManifestProblem = {path: string; message: string}

/**
 * Validates a parsed manifest.json: shape, checksum, unique file names, totals. Returns the manifest
 * or the list of problems (each with the JSON path), never throws on bad input.
 */
export function checkManifest(raw: unknown): {ok: true; manifest: Manifest} | {ok: false; problems: ManifestProblem[]} {
  const parsed = manifestSchema.safeParse(raw)
  if (!parsed.success) {
    return {ok: false, problems: parsed.error.issues.map((i) => ({path: i.path.join('.') || '(top level)', message: i.message}))}
  }
  const m = parsed.data
  const problems: ManifestProblem[] = []
  if (manifestChecksum(m) !== m.checksum) problems.push({path: 'checksum', message: 'the manifest does not match its checksum (edited or damaged)'})
  const seen = new Set<string>([m.schemaFiles.preData.file, m.schemaFiles.postData.file, m.schemaFiles.postDataPlan.file, ...(m.schemaFiles.clean ? [m.schemaFiles.clean.file] : [])])
  m.tables.forEach((t, ti) =>
    t.parts.forEach((p, pi) => {
      if (seen.has(p.file)) problems.push({path: `tables.${ti}.parts.${pi}.file`, message: `file ${p.file} is named twice`})
      seen.add(p.file)
    }),
  )
  const parts = m.tables.flatMap((t) => t.parts)
  const totals = {
    tables: m.tables.length,
    parts: parts.length,
    rows: parts.reduce((s, p) => s + p.rows, 0),
    rawBytes: parts.reduce((s, p) => s + p.rawBytes, 0),
    fileBytes: parts.reduce((s, p) => s + p.fileBytes, 0),
  }
  for (const k of Object.keys(totals) as Array<keyof typeof totals>) {
    if (totals[k] !== m.totals[k]) problems.push({path: `totals.${k}`, message: `says ${m.totals[k]}, the entries add up to ${totals[k]}`})
  }
  return problems.length ? {ok: false, problems} : {ok: true, manifest: m}
}

/** snap_YYYYMMDD_HHMMSS_<8 hex> (upstream's shape, without its short-node-id panic). */
export function newSnapshotId(now: Date, randomHex: string): string {
  const p = (n: number) => String(n).padStart(2, '0')
  const stamp = `${now.getUTCFullYear()}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}_${p(now.getUTCHours())}${p(now.getUTCMinutes())}${p(now.getUTCSeconds())}`
  return `snap_${stamp}_${randomHex.slice(0, 8)}`
}

/** data/<table #>.<part #>.copy<ext>: positions, never names, so hostile identifiers cannot shape paths. */
export function dataFileName(tableIndex: number, partIndex: number, ext: string): string {
  return `data/${String(tableIndex).padStart(5, '0')}.${String(partIndex).padStart(4, '0')}.copy${ext}`
}
