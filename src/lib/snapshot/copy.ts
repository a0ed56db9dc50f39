// Moving one table part: out of the source into a compressed, hashed file (generate), and from
// such a file into the target (apply), or straight from a source to a target connection (node
// init). COPY's text format round-trips every type through its own I/O functions; the binary format,
// for the tables whose column types allow it (binaryCopyTables in catalog.ts), skips them.

import {type BigIntStats, close, createReadStream, fstat, open} from 'node:fs'
import {promisify} from 'node:util'
import {pipeline} from 'node:stream/promises'
import pg from 'pg'
import copyStreams from 'pg-copy-streams'
import {type Compression, createCompressor, createDecompressor} from './codec.js'
import {CopyOutStream} from './copy-out.js'
import {type PartRange, rangeWhere} from './plan.js'
import {fileIdentity} from './manifest-io.js'
import {reserveGcHeadroom} from '../gc-headroom.js'
import {AtomicFileSink, Meter} from './streams.js'

const q = pg.escapeIdentifier

export interface TableRef {
  schema: string
  name: string
  columns: string[]
}

export const qualified = (t: {schema: string; name: string}) => `${q(t.schema)}.${q(t.name)}`
// A table without columns (CREATE TABLE t ()) still has rows; COPY takes no empty column list.
const columnList = (cols: string[]) => (cols.length ? ` (${cols.map(q).join(', ')})` : '')

/** The COPY … TO STDOUT statement for a part (plain COPY for a whole table: the fastest path). */
export function copyOutSql(t: TableRef, range: PartRange, binary = false): string {
  const fmt = binary ? ' WITH (FORMAT binary)' : ''
  if (range.kind === 'all') return `COPY ${qualified(t)}${columnList(t.columns)} TO STDOUT${fmt}`
  return `COPY (SELECT ${t.columns.map(q).join(', ')} FROM ONLY ${qualified(t)} WHERE ${rangeWhere(range, q)}) TO STDOUT${fmt}`
}

export function copyInSql(t: TableRef, freeze: boolean, binary = false): string {
  const opts = [freeze ? 'FREEZE' : '', binary ? 'FORMAT binary' : ''].filter(Boolean)
  return `COPY ${qualified(t)}${columnList(t.columns)} FROM STDIN${opts.length ? ` WITH (${opts.join(', ')})` : ''}`
}

export interface PartOutResult {
  rows: number
  rawBytes: number
  fileBytes: number
  sha256: string
  /** SHA-256 of the COPY data; null for a compressed file written without dataChecksum. */
  dataSha256: string | null
  /** The file fsynced and under its name: await before relying on it (see AtomicFileSink). */
  sealed: Promise<void>
}

export interface PartOutOptions {
  onProgress?: (rawBytes: number) => void
  signal?: AbortSignal
  /** COPY's binary format (binaryCopyTables in catalog.ts). */
  binary?: boolean
  /**
   * Also hash the COPY data of a compressed file (dataSha256). Without compression the file is the
   * COPY data and its hash is both checksums, for free. With compression it is a second SHA-256 over
   * every byte before the compressor, ~15% of the CLI's CPU at gzip level 1, and not needed for
   * integrity: the file's SHA-256 covers the bytes stored and the codec's own check (gzip's CRC-32,
   * the zstd and lz4 content checksums, all on) covers their decompression.
   */
  dataChecksum?: boolean
}

/**
 * Whether a part's COPY data gets a SHA-256 of its own (dataSha256), in generate and in apply
 * alike: always without compression (the file is the data, one hash serves both), with it only
 * when asked (PartOutOptions.dataChecksum).
 */
const hashesCopyData = (compression: Compression, dataChecksum: boolean | undefined) => compression === 'none' || Boolean(dataChecksum)

/**
 * COPY a part of a table into `file` through the compressor. onProgress gets the raw bytes so far.
 * The file appears under its name only when complete.
 */
export async function copyPartToFile(
  client: pg.Client,
  t: TableRef,
  range: PartRange,
  file: string,
  compression: Compression,
  level: number | undefined,
  opts: PartOutOptions = {},
): Promise<PartOutResult> {
  const {onProgress, signal, binary = false} = opts
  const hashData = hashesCopyData(compression, opts.dataChecksum)
  // The client's CPU is the scarce resource next to the server's COPY: the COPY data is parsed,
  // counted and hashed in one pass (copy-out.ts), rows come from the COPY command tag, and without
  // compression the file is the COPY data, so one hash serves both checksums.
  const source = client.query(new CopyOutStream(copyOutSql(t, range, binary), {hash: hashData, onBytes: onProgress}))
  reserveGcHeadroom() // once per process, while the server starts on the COPY
  // The fsync (~40 ms per 64 MB here) runs while the connection copies its next part.
  const sink = new AtomicFileSink(file, {deferSync: true})
  if (compression === 'none') {
    await pipeline(source, sink, {signal})
    const sha = source.digest()
    return {rows: source.rowCount, rawBytes: source.bytes, fileBytes: source.bytes, sha256: sha, dataSha256: sha, sealed: sink.sealed}
  }
  const stored = new Meter()
  await pipeline(source, await createCompressor(compression, level), stored, sink, {signal})
  return {rows: source.rowCount, rawBytes: source.bytes, fileBytes: stored.bytes, sha256: stored.digest(), dataSha256: hashData ? source.digest() : null, sealed: sink.sealed}
}

export interface PartInResult {
  rows: number
  rawBytes: number
  /** SHA-256 of the file as read (compare with the manifest before committing); '' when not hashed. */
  sha256: string
  /** SHA-256 of the COPY data loaded; '' when not hashed. */
  dataSha256: string
}

export interface PartInOptions {
  onProgress?: (rawBytes: number) => void
  signal?: AbortSignal
  /** The file's identity when verification hashed it (below). */
  verifiedIdentity?: string
  /** COPY's binary format. */
  binary?: boolean
  /** Hash the decompressed COPY data too (when the manifest has its dataSha256). */
  dataChecksum?: boolean
}

const openFile = promisify(open)
const closeFile = promisify(close)
const fstatBig = (fd: number) => new Promise<BigIntStats>((resolve, reject) => fstat(fd, {bigint: true}, (err, st) => (err ? reject(err) : resolve(st))))

/** The file changed between its verification and its load (apply rolls the part back). */
export class FileChangedError extends Error {}

/**
 * COPY a part file into the target table (inside the caller's transaction).
 *
 * With `verifiedIdentity` (the file's identity when verification hashed it) the file is not hashed
 * again: the file opened must have that identity before and after its bytes are read, so what is
 * loaded is what was verified. Without it every byte is hashed on the way for the caller to compare
 * (the COPY data of a compressed file only with dataChecksum).
 */
export async function copyFileToTable(
  client: pg.Client,
  t: TableRef,
  file: string,
  compression: Compression,
  freeze: boolean,
  opts: PartInOptions = {},
): Promise<PartInResult> {
  const {onProgress, signal, verifiedIdentity, binary = false} = opts
  const hashing = verifiedIdentity === undefined
  const fd = await openFile(file, 'r')
  try {
    const unchanged = async (when: string) => {
      if (hashing) return
      if (fileIdentity(await fstatBig(fd)) !== verifiedIdentity) throw new FileChangedError(`${file} changed ${when}`)
    }
    await unchanged('after verification')
    const sink = client.query(copyStreams.from(copyInSql(t, freeze, binary)))
    reserveGcHeadroom()
    // zstd-napi's DecompressStream pushes all the output of one input chunk at once, ignoring
    // backpressure within it: small reads bound that burst (a 1 MiB read of pgbench's filler, which
    // compresses 160:1, made 160 MiB and the CLI's peak RSS 270 MB). zlib and our lz4 frames
    // respect backpressure on their own.
    const input = createReadStream(file, {fd, autoClose: false, highWaterMark: compression === 'zstd' ? 32 * 1024 : 1024 * 1024})
    const raw = new Meter(onProgress, hashing && hashesCopyData(compression, opts.dataChecksum))
    if (compression === 'none') {
      await pipeline(input, raw, sink, {signal})
      await unchanged('while it was loaded')
      return {rows: Number(sink.rowCount ?? 0), rawBytes: raw.bytes, sha256: raw.digest(), dataSha256: raw.digest()}
    }
    const stored = new Meter(undefined, hashing)
    await pipeline(input, stored, await createDecompressor(compression), raw, sink, {signal})
    await unchanged('while it was loaded')
    return {rows: Number(sink.rowCount ?? 0), rawBytes: raw.bytes, sha256: stored.digest(), dataSha256: raw.digest()}
  } finally {
    await closeFile(fd).catch(() => {})
  }
}

/**
 * COPY a part straight from a source connection into a target connection (node init). With
 * opts.binary (same major on both sides) the binary format skips text output and parsing; with
 * opts.hash false no digest is computed ('').
 */
export async function copyPartDirect(
  from: pg.Client,
  to: pg.Client,
  t: TableRef,
  range: PartRange,
  freeze: boolean,
  onProgress?: (rawBytes: number) => void,
  signal?: AbortSignal,
  opts: {binary?: boolean; hash?: boolean} = {},
): Promise<{rows: number; rawBytes: number; dataSha256: string}> {
  const hash = opts.hash ?? true
  const out = from.query(new CopyOutStream(copyOutSql(t, range, opts.binary), {hash, onBytes: onProgress}))
  reserveGcHeadroom()
  const sink = to.query(copyStreams.from(copyInSql(t, freeze, opts.binary)))
  await pipeline(out, sink, {signal})
  // Rows from the COPY FROM command tag (the only count in binary format).
  return {rows: Number(sink.rowCount ?? 0), rawBytes: out.bytes, dataSha256: out.digest()}
}
