// `COPY … TO STDOUT` as a Readable of the COPY data, parsed straight off the connection's socket.
//
// Why not pg-copy-streams' copy-to: it runs every protocol message (one per row) through a generic
// buffer list (several allocations and a copy per row) and leaves hashing and counting to further
// Transforms. Row-sized messages make that the client's main CPU cost, and on a machine whose cores
// are busy with the server's COPY backends the client's CPU per byte sets the snapshot's speed.
//
// Here the socket's bytes land in a gathering buffer (~1 MiB): read there directly by the kernel
// when the connection's socket lets us supply its read buffers (DirectReadSocket, plaintext), else
// copied there from each socket read. The 5-byte message headers are squeezed out in place by
// moving each row's bytes left (copyWithin, no allocation), and a full buffer is hashed, counted and
// pushed as one piece: zlib at level 1 spent 15-20% more CPU on 64 KiB pieces than on 1 MiB ones
// (pgbench_accounts and a numeric/timestamptz table); the hash and write(2) also pay per call.
//
// Protocol (simple query): CopyOutResponse, CopyData*, CopyDone, then CommandComplete and
// ReadyForQuery, which go back to node-postgres with whatever else the socket had read, as does an
// ErrorResponse at any point. NoticeResponse/ParameterStatus/NotificationResponse may arrive in
// between; they are skipped, as pg-copy-streams does.

import {createHash, type Hash} from 'node:crypto'
import {Readable} from 'node:stream'
import type pg from 'pg'
import {DirectReadSocket, type ReadSink} from '../connection/direct-read-socket.js'

const COPY_DATA = 0x64 // 'd'
const COPY_DONE = 0x63 // 'c'
const ERROR = 0x45 // 'E'

/**
 * Pieces handed on are at least this big (the last may be smaller); see the top of the file. Against
 * ~64 KiB pieces on the bench database, six alternating generates each: gzip level 1 7.6 → 7.3 s
 * (median), uncompressed 5.24 → 5.06 s, system CPU down by a fifth in both.
 */
const PIECE_BYTES = 1024 * 1024
/** A gathering buffer is handed on once less than this is free: the least room a read gets. */
const READ_ROOM = 64 * 1024
/**
 * Reads of a DirectReadSocket smaller than this mean the data arrives slower than it is read: the
 * socket then rests for BATCH_MS while the kernel queues more, so the next read takes it at once.
 * Read as soon as it is readable, a COPY came in ~33 KB per read (25,000 reads for the bench
 * database), each with its epoll wake-up, its read(2), its ACK and a call into JavaScript; batched,
 * ~180 KB per read, the CLI's CPU 13% lower at gzip level 1 (3.51 -> 3.06 s, six alternating
 * rounds), the server's unchanged. The kernel's receive buffer holds what arrives meanwhile (1 ms
 * is ~0.2 MB at this rate); data that arrives slowly is still all read, one batch per BATCH_MS.
 */
const READ_BATCH = 256 * 1024
const BATCH_MS = 1

/** The parts of node-postgres' Connection this stream drives (not in its published types). */
interface Connection {
  stream: import('node:net').Socket
  query(text: string): void
}

export interface CopyOutOptions {
  /** Compute the SHA-256 of the COPY data (digest() after the end). */
  hash?: boolean
  /** Called after each piece with the bytes so far. */
  onBytes?: (bytes: number) => void
  /** Hand data on in pieces of at least this many bytes (default 1 MiB; the last may be smaller). */
  minChunk?: number
}

export class CopyOutStream extends Readable implements pg.Submittable, ReadSink {
  /** Rows, from the COPY command tag (set once node-postgres has read it, i.e. after 'end'). */
  rowCount = 0
  bytes = 0
  private readonly hash?: Hash
  private digestHex?: string
  private connection?: Connection
  /** The socket's reads come to onRead directly (DirectReadSocket) … */
  private direct?: DirectReadSocket
  /** … or through its 'data' event, taken from node-postgres' parser until the end. */
  private pgOnData?: (chunk: Buffer) => void
  private readonly onData = (chunk: Buffer) => {
    if (!this.onRead(chunk, chunk.length)) this.connection!.stream.pause()
  }
  private done = false
  /** Reading is paused because the consumer is full (backpressure)… */
  private blocked = false
  /** … or for a batch to gather in the kernel (DirectReadSocket only). */
  private resting?: NodeJS.Timeout
  private complete = false
  // Parser state carried between reads.
  private code = 0
  private remaining = 0
  private readonly header = Buffer.alloc(5)
  private headerBytes = 0
  // The gathering buffer: COPY data (headers squeezed out) in [0, fill).
  private readonly capacity: number
  private gather = Buffer.alloc(0)
  private fill = 0
  /** The buffer the socket reads into next (nextBuffer), to tell an in-place read from a copy. */
  private given?: Buffer

  constructor(
    readonly text: string,
    private readonly opts: CopyOutOptions = {},
  ) {
    super({highWaterMark: 1024 * 1024})
    if (opts.hash) this.hash = createHash('sha256')
    this.capacity = (opts.minChunk ?? PIECE_BYTES) + READ_ROOM
  }

  /** Called by node-postgres when the query reaches the connection. */
  submit(connection: unknown): void {
    const conn = connection as Connection
    this.connection = conn
    this.gather = Buffer.allocUnsafeSlow(this.capacity)
    const socket = conn.stream
    if (socket instanceof DirectReadSocket) {
      this.direct = socket
      socket.takeReads(this)
    } else {
      const listeners = socket.listeners('data') as Array<(chunk: Buffer) => void>
      if (listeners.length !== 1) throw new Error(`COPY out: expected one data listener on the connection, found ${listeners.length}`)
      this.pgOnData = listeners[0]!
      // 'data' hands over each socket read as it is; read() in paused mode would concatenate the
      // chunks buffered meanwhile into a new buffer (a copy and an allocation per call).
      socket.removeListener('data', this.pgOnData)
      socket.on('data', this.onData)
    }
    conn.query(this.text)
  }

  override _read(): void {
    this.blocked = false
    if (!this.done && !this.resting) this.connection?.stream.resume()
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    clearTimeout(this.resting)
    this.resting = undefined
    cb(err)
  }

  /** Hex SHA-256 of the COPY data (after the end; '' when hashing was off). */
  digest(): string {
    if (!this.hash) return ''
    this.digestHex ??= this.hash.digest('hex')
    return this.digestHex
  }

  /** ReadSink: the next read goes to the free end of the gathering buffer. */
  nextBuffer(): Buffer {
    this.given = this.gather.subarray(this.fill)
    return this.given
  }

  /** ReadSink: `n` bytes arrived at the start of `buf`. false: stop reading (backpressure). */
  onRead(buf: Buffer, n: number): boolean {
    let ok = true
    if (buf === this.given) {
      // Read in place: the bytes are at the gathering buffer's free end already.
      this.given = undefined
      const rest = this.parse(this.fill, this.fill + n)
      if (rest) return this.finish(rest)
      ok = this.makeRoom()
      if (ok && n < READ_BATCH) {
        this.resting = setTimeout(() => {
          this.resting = undefined
          if (!this.done && !this.blocked) this.direct!.resume()
        }, BATCH_MS)
        return false
      }
    } else {
      for (let off = 0; off < n; ) {
        const k = Math.min(this.gather.length - this.fill, n - off)
        const start = this.fill
        buf.copy(this.gather, start, off, off + k)
        off += k
        const rest = this.parse(start, start + k)
        if (rest) return this.finish(off < n ? Buffer.concat([rest, buf.subarray(off, n)]) : rest)
        ok = this.makeRoom() && ok
      }
    }
    if (!ok) this.blocked = true
    return ok
  }

  /**
   * Squeezes the CopyData payloads of gather[start, end) down to gather[fill, …) (rows only move
   * left). Returns the bytes after the COPY data (from CopyDone's end, or an ErrorResponse on) once
   * it is over, which belong to node-postgres.
   */
  private parse(start: number, end: number): Buffer | undefined {
    const g = this.gather
    let out = this.fill
    let pos = start
    while (pos < end) {
      if (this.remaining > 0) {
        const n = this.remaining < end - pos ? this.remaining : end - pos
        if (this.code === COPY_DATA) {
          if (out !== pos) g.copyWithin(out, pos, pos + n)
          out += n
        }
        pos += n
        this.remaining -= n
        continue
      }
      let code: number
      let length: number
      if (this.headerBytes === 0 && end - pos >= 5) {
        code = g[pos]!
        if (code === ERROR) {
          this.fill = out
          return g.subarray(pos, end)
        }
        // Read by hand: readUInt32BE's checks cost as much as the rest of this loop at one row per
        // message (lengths are under 1 GB, so the shift stays positive).
        length = ((g[pos + 1]! << 24) | (g[pos + 2]! << 16) | (g[pos + 3]! << 8) | g[pos + 4]!) - 4
        pos += 5
      } else {
        // A header split across reads.
        const n = Math.min(5 - this.headerBytes, end - pos)
        g.copy(this.header, this.headerBytes, pos, pos + n)
        this.headerBytes += n
        pos += n
        if (this.headerBytes < 5) break
        this.headerBytes = 0
        code = this.header[0]!
        if (code === ERROR) {
          this.fill = out
          return Buffer.concat([this.header, g.subarray(pos, end)])
        }
        length = this.header.readUInt32BE(1) - 4
      }
      if (code === COPY_DONE) {
        this.fill = out
        this.complete = true
        return g.subarray(pos + length, end)
      }
      this.code = code
      this.remaining = length
    }
    this.fill = out
    return undefined
  }

  /** Hands the gathered data on when a read would get too little room; false: backpressure. */
  private makeRoom(): boolean {
    return this.gather.length - this.fill < READ_ROOM ? this.handOn(false) : true
  }

  private handOn(last: boolean): boolean {
    if (this.fill === 0) return true
    const data = this.gather.subarray(0, this.fill)
    // A new buffer: the one handed on is the consumer's now (a compressor may hold it for a while).
    this.gather = last ? Buffer.alloc(0) : Buffer.allocUnsafeSlow(this.capacity)
    this.fill = 0
    this.bytes += data.length
    this.hash?.update(data)
    this.opts.onBytes?.(this.bytes)
    return this.push(data)
  }

  /**
   * The COPY data is over (CopyDone) or failed (ErrorResponse): give the socket and `rest` back to
   * node-postgres, which reads CommandComplete/ErrorResponse and ReadyForQuery and calls
   * handleCommandComplete/handleError below.
   */
  private finish(rest: Buffer): boolean {
    // `rest` lies after the data in the gathering buffer (or is a copy): handing the data on first
    // leaves it as it is.
    this.handOn(true)
    this.done = true
    const socket = this.connection!.stream
    if (this.direct) this.direct.releaseReads(rest)
    else {
      socket.removeListener('data', this.onData)
      socket.on('data', this.pgOnData!)
      if (rest.length > 0) this.pgOnData!(rest)
    }
    // Resume on the next tick: the handler above may have paused the socket for its own reasons.
    process.nextTick(() => socket.resume())
    return true
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
