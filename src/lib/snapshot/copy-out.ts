// `COPY … TO STDOUT` as a Readable of the COPY data, parsed straight off the connection's socket.
//
// Why not pg-copy-streams' copy-to: it runs every protocol message (one per row) through a generic
// buffer list (several allocations and a copy per row) and leaves hashing and counting to further
// Transforms. Row-sized messages make that the client's main CPU cost, and on a machine whose cores
// are busy with the server's COPY backends the client's CPU per byte sets the snapshot's speed.
// Here each socket chunk is compacted in place: the 5-byte message headers are squeezed out by
// moving each row's bytes left (copyWithin, no allocation), and the compacted chunk is hashed,
// counted and pushed as one buffer.
//
// Protocol (simple query): CopyOutResponse, CopyData*, CopyDone, then CommandComplete and
// ReadyForQuery, which go back to node-postgres with whatever else the socket had read, as does an
// ErrorResponse at any point. NoticeResponse/ParameterStatus/NotificationResponse may arrive in
// between; they are skipped, as pg-copy-streams does.

import {createHash, type Hash} from 'node:crypto'
import {Readable} from 'node:stream'
import type pg from 'pg'

const COPY_DATA = 0x64 // 'd'
const COPY_DONE = 0x63 // 'c'
const ERROR = 0x45 // 'E'

/** The parts of node-postgres' Connection this stream drives (not in its published types). */
interface Connection {
  stream: import('node:net').Socket
  query(text: string): void
}

export interface CopyOutOptions {
  /** Compute the SHA-256 of the COPY data (digest() after the end). */
  hash?: boolean
  /** Called after each chunk with the bytes so far. */
  onBytes?: (bytes: number) => void
  /**
   * Hand data on in pieces of at least this many bytes (the last one may be smaller), gathered from
   * the socket's reads (~64 KiB each), at the cost of one copy of each piece. zlib at level 1 spent
   * 15-20% more CPU on 64 KiB pieces than on 1 MiB ones (pgbench_accounts and a numeric/timestamptz
   * table); the hash and write(2) also pay per call.
   */
  minChunk?: number
}

export class CopyOutStream extends Readable implements pg.Submittable {
  /** Rows, from the COPY command tag (set once node-postgres has read it, i.e. after 'end'). */
  rowCount = 0
  bytes = 0
  private readonly hash?: Hash
  private digestHex?: string
  private connection?: Connection
  private pgOnData?: (chunk: Buffer) => void
  private readonly onData = (chunk: Buffer) => this.parse(chunk)
  private done = false
  private complete = false
  // Parser state carried between socket chunks.
  private code = 0
  private remaining = 0
  private readonly header = Buffer.alloc(5)
  private headerBytes = 0
  // Compacted pieces not handed on yet (minChunk).
  private pending: Buffer[] = []
  private pendingBytes = 0

  constructor(
    readonly text: string,
    private readonly opts: CopyOutOptions = {},
  ) {
    super({highWaterMark: 1024 * 1024})
    if (opts.hash) this.hash = createHash('sha256')
  }

  /** Called by node-postgres when the query reaches the connection. */
  submit(connection: unknown): void {
    const conn = connection as Connection
    this.connection = conn
    const socket = conn.stream
    // Take the socket from node-postgres' parser until CopyDone (or an error) is seen.
    const listeners = socket.listeners('data') as Array<(chunk: Buffer) => void>
    if (listeners.length !== 1) throw new Error(`COPY out: expected one data listener on the connection, found ${listeners.length}`)
    const pgOnData = listeners[0]!
    this.pgOnData = pgOnData
    // 'data' hands over each socket read as it is; read() in paused mode would concatenate the
    // chunks buffered meanwhile into a new buffer (a copy and an allocation per call).
    socket.removeListener('data', pgOnData)
    socket.on('data', this.onData)
    conn.query(this.text)
  }

  override _read(): void {
    if (!this.done) this.connection?.stream.resume()
  }

  /** Hex SHA-256 of the COPY data (after the end; '' when hashing was off). */
  digest(): string {
    if (!this.hash) return ''
    this.digestHex ??= this.hash.digest('hex')
    return this.digestHex
  }

  /** Compact the CopyData payloads of `chunk` to its front and emit them; hand back the rest. */
  private parse(chunk: Buffer): void {
    const len = chunk.length
    let out = 0
    let pos = 0
    while (pos < len) {
      if (this.remaining > 0) {
        const n = this.remaining < len - pos ? this.remaining : len - pos
        if (this.code === COPY_DATA) {
          if (out !== pos) chunk.copyWithin(out, pos, pos + n)
          out += n
        }
        pos += n
        this.remaining -= n
        continue
      }
      let code: number
      let length: number
      if (this.headerBytes === 0 && len - pos >= 5) {
        code = chunk[pos]!
        if (code === ERROR) return this.handBack(chunk, out, chunk.subarray(pos), false)
        // Read by hand: readUInt32BE's checks cost as much as the rest of this loop at one row per
        // message (lengths are under 1 GB, so the shift stays positive).
        length = ((chunk[pos + 1]! << 24) | (chunk[pos + 2]! << 16) | (chunk[pos + 3]! << 8) | chunk[pos + 4]!) - 4
        pos += 5
      } else {
        // A header split across socket chunks.
        const n = Math.min(5 - this.headerBytes, len - pos)
        chunk.copy(this.header, this.headerBytes, pos, pos + n)
        this.headerBytes += n
        pos += n
        if (this.headerBytes < 5) break
        this.headerBytes = 0
        code = this.header[0]!
        if (code === ERROR) return this.handBack(chunk, out, Buffer.concat([this.header, chunk.subarray(pos)]), false)
        length = this.header.readUInt32BE(1) - 4
      }
      if (code === COPY_DONE) return this.handBack(chunk, out, chunk.subarray(pos + length), true)
      this.code = code
      this.remaining = length
    }
    // Backpressure: no more socket reads until the consumer asks (_read).
    if (out > 0 && !this.emitData(chunk.subarray(0, out))) this.connection!.stream.pause()
  }

  private emitData(data: Buffer, last = false): boolean {
    const min = this.opts.minChunk ?? 0
    if (min > 0) {
      this.pending.push(data)
      this.pendingBytes += data.length
      if (!last && this.pendingBytes < min) return true
      data = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes)
      this.pending = []
      this.pendingBytes = 0
      if (data.length === 0) return true
    }
    this.bytes += data.length
    this.hash?.update(data)
    this.opts.onBytes?.(this.bytes)
    return this.push(data)
  }

  /**
   * The COPY data is over (CopyDone) or failed (ErrorResponse): give the socket and the bytes after
   * it back to node-postgres, which reads CommandComplete/ErrorResponse and ReadyForQuery and calls
   * handleCommandComplete/handleError below.
   */
  private handBack(chunk: Buffer, out: number, rest: Buffer, complete: boolean): void {
    // `rest` lies after `out` in the chunk (or is a copy): emitting the front first is safe.
    if (out > 0 || this.pendingBytes > 0) this.emitData(chunk.subarray(0, out), true)
    this.done = true
    const socket = this.connection!.stream
    socket.removeListener('data', this.onData)
    socket.on('data', this.pgOnData!)
    this.complete = complete
    if (rest.length > 0) this.pgOnData!(rest)
    // Resume on the next tick: the handler above may have paused the socket for its own reasons.
    process.nextTick(() => socket.resume())
  }

  handleCommandComplete(msg: {text?: string}): void {
    const m = /^COPY (\d+)/.exec(msg?.text ?? '')
    if (m) this.rowCount = Number(m[1])
  }

  handleError(err: Error): void {
    this.destroy(err)
  }

  /** The end of the stream waits for this, so rowCount is known when a consumer sees 'end'. */
  handleReadyForQuery(): void {
    if (this.complete) this.push(null)
  }
}
