// Byte-level plumbing shared by generate and apply: a pass-through meter that counts bytes and COPY
// rows and hashes what goes through, and file writes that appear under their final name only when
// complete. Everything is a stream with backpressure: memory does not grow with the table.

import {createHash, type Hash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {open, rename, rm} from 'node:fs/promises'
import {Transform, type TransformCallback, Writable} from 'node:stream'

/** Counts and hashes the bytes that pass (rows come from the COPY command tag, see copy.ts). */
export class Meter extends Transform {
  bytes = 0
  private readonly hash: Hash = createHash('sha256')
  private digestHex?: string

  constructor(
    private readonly onChunk?: (bytes: number) => void,
    /** false: count only (the hash is not needed, e.g. node init's direct copy). */
    private readonly hashing = true,
  ) {
    super()
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length
    if (this.hashing) this.hash.update(chunk)
    this.onChunk?.(this.bytes)
    cb(null, chunk)
  }

  /** Hex SHA-256 of everything that passed (call after the stream finished). */
  digest(): string {
    this.digestHex ??= this.hash.digest('hex')
    return this.digestHex
  }
}

/**
 * A file sink that writes to `<path>.partial`, fsyncs, and renames to `<path>` on success; on
 * failure the partial file is removed. A reader never sees a half-written file under the real name.
 */
export class AtomicFileSink extends Writable {
  private fh?: import('node:fs/promises').FileHandle
  readonly partial: string

  constructor(readonly path: string) {
    super({highWaterMark: 1024 * 1024})
    this.partial = `${path}.partial`
  }

  override _construct(cb: (err?: Error | null) => void): void {
    open(this.partial, 'w', 0o644).then((fh) => {
      this.fh = fh
      cb()
    }, cb)
  }

  override _write(chunk: Buffer, _e: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.fh!.write(chunk).then(() => cb(), cb)
  }

  override _writev(chunks: Array<{chunk: Buffer}>, cb: (err?: Error | null) => void): void {
    this.fh!.writev(chunks.map((c) => c.chunk)).then(() => cb(), cb)
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.fh!.sync()
      .then(() => this.fh!.close())
      .then(() => {
        this.fh = undefined
        return rename(this.partial, this.path)
      })
      .then(() => cb(), cb)
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const close = this.fh ? this.fh.close().catch(() => {}) : Promise.resolve()
    close
      .then(() => (err ? rm(this.partial, {force: true}) : undefined))
      .then(
        () => cb(err),
        () => cb(err),
      )
  }
}

/** SHA-256 and size of a file, streamed. */
export async function hashFile(path: string): Promise<{sha256: string; bytes: number}> {
  const hash = createHash('sha256')
  let bytes = 0
  for await (const chunk of createReadStream(path, {highWaterMark: 1024 * 1024})) {
    hash.update(chunk as Buffer)
    bytes += (chunk as Buffer).length
  }
  return {sha256: hash.digest('hex'), bytes}
}
