// Compression of snapshot data files as streams with backpressure: none, gzip (zlib), zstd
// (zstd-napi, native streaming) and lz4 (lz4-napi, LZ4 frame format). Every file is readable by the
// standard command-line tools (`gzip -d`, `zstd -d`, `lz4 -d`): lz4 output is a sequence of
// independent LZ4 frames of at most LZ4_CHUNK input bytes each, which the format allows and the
// tools decode as one stream; memory stays bounded by the chunk size.

import {Transform, type TransformCallback} from 'node:stream'
import {createDeflateRaw, createGunzip, type DeflateRaw} from 'node:zlib'
import {UsageError} from '../errors.js'

export const COMPRESSIONS = ['none', 'gzip', 'lz4', 'zstd'] as const
export type Compression = (typeof COMPRESSIONS)[number]

export const EXTENSION: Record<Compression, string> = {none: '', gzip: '.gz', lz4: '.lz4', zstd: '.zst'}

/** Valid --level range and default per codec. */
export const LEVELS: Record<Compression, {min: number; max: number; default: number}> = {
  none: {min: 0, max: 0, default: 0},
  gzip: {min: 1, max: 9, default: 1},
  lz4: {min: 1, max: 1, default: 1},
  zstd: {min: 1, max: 19, default: 3},
}

export function checkLevel(compression: Compression, level: number | undefined): number {
  const r = LEVELS[compression]
  if (level === undefined) return r.default
  if (!Number.isInteger(level) || level < r.min || level > r.max) {
    throw new UsageError(
      r.min === r.max
        ? `--level does not apply to ${compression} (only ${r.default})`
        : `--level ${level} is out of range for ${compression}: use ${r.min} to ${r.max}`,
    )
  }
  return level
}

const LZ4_CHUNK = 4 * 1024 * 1024

export async function createCompressor(compression: Compression, level?: number): Promise<Transform> {
  const lvl = checkLevel(compression, level)
  switch (compression) {
    case 'none':
      return new Transform({transform: (chunk, _e, cb) => cb(null, chunk)})
    case 'gzip':
      return new GzipCompressor(lvl, await loadCrc32())
    case 'zstd': {
      const {CompressStream} = await import('zstd-napi')
      // The frame's content checksum: decompression checks itself (the part's dataSha256 is
      // optional, see copyPartToFile), as gzip's CRC-32 does.
      return new CompressStream({compressionLevel: lvl, checksumFlag: true}) as unknown as Transform
    }
    case 'lz4':
      return new Lz4FrameCompressor(await import('lz4-napi'))
  }
}

export async function createDecompressor(compression: Compression): Promise<Transform> {
  switch (compression) {
    case 'none':
      return new Transform({transform: (chunk, _e, cb) => cb(null, chunk)})
    case 'gzip':
      // Concatenated gzip members are decoded too; a truncated file is an error.
      return createGunzip({chunkSize: 256 * 1024})
    case 'zstd': {
      const {DecompressStream} = await import('zstd-napi')
      return new DecompressStream() as unknown as Transform
    }
    case 'lz4':
      return new Lz4FrameDecompressor(await import('lz4-napi'))
  }
}

type Crc32 = (data: Buffer, initial: number) => number

/** @node-rs/crc32 (SIMD); zlib's own (Node.js ≥ 20.15) where its binary is not there for the platform. */
async function loadCrc32(): Promise<Crc32> {
  try {
    const {crc32} = await import('@node-rs/crc32')
    return crc32
  } catch {
    const {crc32} = await import('node:zlib')
    return crc32
  }
}

/**
 * gzip (RFC 1952) as its three parts: a header, zlib's raw deflate (on the thread pool, as
 * createGzip's), and a trailer with the CRC-32 and the length of the input, computed here.
 *
 * Why not createGzip: zlib computes that CRC-32 itself, ~3-5 GB/s, 13% of zlib's CPU at level 1
 * on the bench database (25% on pgbench_accounts, which deflates at 1.4 GB/s); @node-rs/crc32 does
 * it at ~10 GB/s. The bytes are the same as createGzip's: deflate's output does not depend on how
 * its input is cut while nothing is flushed, and the header has zlib's fields (no name, mtime 0,
 * the level's XFL, OS 3).
 */
class GzipCompressor extends Transform {
  private crc = 0
  private size = 0
  private readonly deflate: DeflateRaw

  constructor(
    level: number,
    private readonly crc32: Crc32,
  ) {
    super()
    this.deflate = createDeflateRaw({level, chunkSize: 256 * 1024})
    // Its output goes on as it comes; the input side waits for each chunk to be deflated (below),
    // and Transform holds the next one while this side is above its high-water mark.
    this.deflate.on('data', (d: Buffer) => this.push(d))
    this.deflate.on('error', (err) => this.destroy(err))
    // XFL as zlib sets it: 2 = best compression, 4 = fastest.
    this.push(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, level === 9 ? 2 : level === 1 ? 4 : 0, 3]))
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.crc = this.crc32(chunk, this.crc)
    this.size = (this.size + chunk.length) % 2 ** 32 // ISIZE: the length modulo 2^32
    this.deflate.write(chunk, (err) => cb(err))
  }

  override _flush(cb: TransformCallback): void {
    this.deflate.once('end', () => {
      const trailer = Buffer.alloc(8)
      trailer.writeUInt32LE(this.crc >>> 0, 0)
      trailer.writeUInt32LE(this.size, 4)
      cb(null, trailer)
    })
    this.deflate.end()
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.deflate.destroy()
    cb(err)
  }
}

type Lz4 = typeof import('lz4-napi')

class Lz4FrameCompressor extends Transform {
  private pending: Buffer[] = []
  private size = 0
  constructor(private readonly lz4: Lz4) {
    super()
  }

  private async flushChunk(): Promise<void> {
    if (this.size === 0) return
    const input = Buffer.concat(this.pending, this.size)
    this.pending = []
    this.size = 0
    // With its content checksum, as zstd's frames (createCompressor).
    this.push(await this.lz4.compressFrame(input, {contentChecksum: true}))
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.pending.push(chunk)
    this.size += chunk.length
    if (this.size < LZ4_CHUNK) return cb()
    this.flushChunk().then(() => cb(), cb)
  }

  override _flush(cb: TransformCallback): void {
    this.flushChunk().then(() => cb(), cb)
  }
}

const LZ4_MAGIC = 0x184d2204
const isSkippable = (magic: number) => (magic & 0xfffffff0) >>> 0 === 0x184d2a50

/**
 * Finds LZ4 frame boundaries in a byte stream that arrives in chunks, without copying the chunks
 * until a whole frame is there: it walks block headers by absolute offset and keeps its place
 * between calls, so each byte is looked at once.
 */
export class Lz4FrameScanner {
  private chunks: Buffer[] = []
  private total = 0
  // Scan state of the frame at the head of the buffer.
  private pos = 0 // absolute offset of the next thing to read within the frame
  private stage: 'start' | 'blocks' | 'done' = 'start'
  private blockChecksum = false
  private contentChecksum = false
  private end = 0

  push(chunk: Buffer): void {
    this.chunks.push(chunk)
    this.total += chunk.length
  }

  get buffered(): number {
    return this.total
  }

  private u32(off: number): number {
    const b = Buffer.alloc(4)
    let i = 0
    let base = 0
    for (const c of this.chunks) {
      while (i < 4 && off + i < base + c.length) {
        b[i] = c[off + i - base]!
        i++
      }
      if (i === 4) break
      base += c.length
    }
    return b.readUInt32LE(0)
  }

  private byte(off: number): number {
    let base = 0
    for (const c of this.chunks) {
      if (off < base + c.length) return c[off - base]!
      base += c.length
    }
    throw new Error('offset beyond buffer')
  }

  /** The next complete frame (skippable frames are dropped), or undefined when more input is needed. */
  next(): Buffer | undefined {
    for (;;) {
      if (this.stage === 'start') {
        if (this.total < 7) return undefined
        const magic = this.u32(0)
        if (isSkippable(magic)) {
          if (this.total < 8) return undefined
          this.end = 8 + this.u32(4)
          this.stage = 'done'
        } else {
          if (magic !== LZ4_MAGIC) throw new Error('not an LZ4 frame (bad magic number): the file is corrupt or not lz4')
          const flg = this.byte(4)
          if (flg >> 6 !== 1) throw new Error('unsupported LZ4 frame version')
          this.blockChecksum = (flg & 0x10) !== 0
          this.contentChecksum = (flg & 0x04) !== 0
          this.pos = 4 + 2 + ((flg & 0x08) !== 0 ? 8 : 0) + ((flg & 0x01) !== 0 ? 4 : 0) + 1
          this.stage = 'blocks'
        }
      }
      if (this.stage === 'blocks') {
        for (;;) {
          if (this.total < this.pos + 4) return undefined
          const raw = this.u32(this.pos)
          this.pos += 4
          if (raw === 0) break
          this.pos += (raw & 0x7fffffff) + (this.blockChecksum ? 4 : 0)
        }
        this.end = this.pos + (this.contentChecksum ? 4 : 0)
        this.stage = 'done'
      }
      if (this.total < this.end) return undefined
      const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.total)
      const frame = all.subarray(0, this.end)
      const rest = all.subarray(this.end)
      this.chunks = rest.length ? [rest] : []
      this.total = rest.length
      this.stage = 'start'
      this.pos = 0
      if (isSkippable(frame.readUInt32LE(0))) continue
      return frame
    }
  }
}

class Lz4FrameDecompressor extends Transform {
  private scanner = new Lz4FrameScanner()
  constructor(private readonly lz4: Lz4) {
    super()
  }

  private async drain(): Promise<void> {
    for (let frame = this.scanner.next(); frame; frame = this.scanner.next()) this.push(await this.lz4.decompressFrame(frame))
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.scanner.push(chunk)
    this.drain().then(() => cb(), cb)
  }

  override _flush(cb: TransformCallback): void {
    if (this.scanner.buffered > 0) return cb(new Error('truncated LZ4 stream: the file ends inside a frame'))
    cb()
  }
}
