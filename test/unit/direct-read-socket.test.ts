// DirectReadSocket (src/lib/connection/direct-read-socket.ts) over a local TCP server: every byte
// arrives once and in order, whether emitted as 'data' or read into a sink's own buffers, with a
// release in the middle of a read, and a sink's `false` pauses the socket until resume().

import net from 'node:net'
import {afterEach, describe, expect, it} from 'vitest'
import {DirectReadSocket, type ReadSink} from '../../src/lib/connection/direct-read-socket.js'

const payload = Buffer.alloc(4 * 1024 * 1024)
for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + (i >> 11)) % 251

let server: net.Server | undefined
afterEach(() => {
  server?.close()
  server = undefined
})

/** A server that sends the payload and ends. */
async function serve(): Promise<number> {
  server = net.createServer((c) => c.end(payload))
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve))
  return (server.address() as net.AddressInfo).port
}

describe('DirectReadSocket', () => {
  it("emits every byte as 'data', in buffers of its own, when nothing has taken its reads", async () => {
    const s = new DirectReadSocket()
    s.connect(await serve(), '127.0.0.1')
    const got: Buffer[] = []
    s.on('data', (d: Buffer) => got.push(d))
    await new Promise((r) => s.on('end', r))
    expect(Buffer.concat(got).equals(payload)).toBe(true)
    // Copies: no two chunks share memory (node-postgres may keep one across reads).
    expect(new Set(got.map((b) => b.buffer)).size).toBe(got.length)
    s.destroy()
  })

  it('reads into the buffers a sink supplies, pauses on false, and emits the rest after release', async () => {
    const port = await serve()
    const s = new DirectReadSocket()
    const viaData: Buffer[] = []
    s.on('data', (d: Buffer) => viaData.push(d))
    const taken: Buffer[] = []
    let takenBytes = 0
    let given: Buffer | undefined
    let inPlace = 0
    let pauses = 0
    const keep = 1.5 * 1024 * 1024
    s.takeReads({
      nextBuffer: () => (given = Buffer.alloc(200 * 1024)),
      onRead(buf, n) {
        if (buf === given) inPlace++
        const mine = Math.min(n, keep - takenBytes)
        taken.push(Buffer.from(buf.subarray(0, mine)))
        takenBytes += mine
        // Done mid-read, as a COPY ends: the bytes after it go back to the 'data' listeners.
        if (takenBytes === keep) {
          s.releaseReads(buf.subarray(mine, n))
          return true
        }
        if (taken.length % 3 === 0) {
          pauses++
          setTimeout(() => s.resume(), 5)
          return false
        }
        return true
      },
    } satisfies ReadSink)
    s.connect(port, '127.0.0.1')
    await new Promise((r) => s.on('end', r))
    expect(takenBytes).toBe(keep)
    expect(Buffer.concat([...taken, ...viaData]).equals(payload)).toBe(true)
    expect(inPlace).toBe(taken.length)
    expect(pauses).toBeGreaterThan(0)
    s.destroy()
  })
})
