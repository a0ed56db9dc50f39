// A TCP or Unix socket whose reads can be taken over by a consumer that supplies the buffer each
// read(2) fills (net.Socket's `onread` option).
//
// Why: a COPY … TO STDOUT streams the whole table through the client. Read the usual way, every
// read allocates a fresh 64 KiB buffer that the COPY parser then copies again into the piece it
// hands on; that is a second copy of every byte, and the allocations (a gigabyte per gigabyte
// copied) are what sets off most of V8's young-generation collections, ~one per 32 MB ("external
// memory pressure"), on the main thread that also reads the socket. Taken over, the kernel writes
// the COPY data straight into the consumer's gathering buffer, up to its free space per read.
//
// Not taken over, the socket behaves as any other: each read is copied out into a buffer of its own
// and emitted as 'data' (node-postgres' parser may keep a buffer across reads, so it never gets one
// that is reused). A TLS connection wraps the socket and reads through its own buffers: the
// take-over is for plaintext (and Unix-socket) connections only, see CopyOutStream.

import net from 'node:net'

/** A consumer of the socket's reads (see DirectReadSocket.takeReads). */
export interface ReadSink {
  /** The buffer the next read fills from its start; called after each read. */
  nextBuffer(): Buffer
  /**
   * `n` bytes were read into the start of `buf`: the last nextBuffer(), or another buffer (the
   * socket's own, for the read already set up when the sink took over). false pauses the socket
   * until resume().
   */
  onRead(buf: Buffer, n: number): boolean
}

const OWN_BUFFER_BYTES = 64 * 1024

export class DirectReadSocket extends net.Socket {
  private sink: ReadSink | undefined

  constructor() {
    const own = Buffer.allocUnsafe(OWN_BUFFER_BYTES)
    // The callbacks run only once connected, after the constructor has returned.
    const self: {socket?: DirectReadSocket} = {}
    // `onread` is taken by the constructor too (Node.js 20), though typed for connect() only.
    const onread: net.OnReadOpts = {
      buffer: () => self.socket!.sink?.nextBuffer() ?? own,
      callback: (n: number, buf: Uint8Array) => self.socket!.delivered(buf as Buffer, n),
    }
    super({onread} as net.SocketConstructorOpts)
    self.socket = this
  }

  /** Reads go to `sink` from the next one on, until releaseReads(). */
  takeReads(sink: ReadSink): void {
    this.sink = sink
  }

  /** Reads are emitted as 'data' again; `rest` (bytes the sink read but does not own) first. */
  releaseReads(rest?: Buffer): void {
    this.sink = undefined
    if (rest?.length) this.emit('data', Buffer.from(rest))
  }

  private delivered(buf: Buffer, n: number): boolean {
    if (this.sink) return this.sink.onRead(buf, n)
    this.emit('data', Buffer.from(buf.subarray(0, n)))
    return true
  }
}
