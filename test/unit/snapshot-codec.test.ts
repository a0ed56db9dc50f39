import {execFileSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {Readable, Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {crc32 as zlibCrc32, gzipSync} from 'node:zlib'
import {afterAll, describe, expect, it} from 'vitest'
import {checkLevel, COMPRESSIONS, type Compression, createCompressor, createDecompressor, EXTENSION, Lz4FrameScanner} from '../../src/lib/snapshot/codec.js'

/** Text-like data (compressible) with random parts, split into uneven chunks. */
function sample(bytes: number): Buffer[] {
  const out: Buffer[] = []
  let n = 0
  let i = 0
  while (n < bytes) {
    const line = Buffer.from(`${i}\tname ${i % 97}\t${randomBytes(8).toString('hex')}\t2026-11-22 ${i % 24}:00:00+00\n`)
    out.push(line)
    n += line.length
    i++
  }
  const all = Buffer.concat(out)
  const chunks: Buffer[] = []
  for (let p = 0, k = 1; p < all.length; k = (k * 7919) % 100_003) {
    chunks.push(all.subarray(p, p + k + 1))
    p += k + 1
  }
  return chunks
}

async function collect(chunks: Buffer[], stream: NodeJS.ReadWriteStream): Promise<Buffer> {
  const parts: Buffer[] = []
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      parts.push(c)
      cb()
    },
  })
  await pipeline(Readable.from(chunks), stream, sink)
  return Buffer.concat(parts)
}

const tool: Record<Compression, string | null> = {none: null, gzip: 'gzip', lz4: 'lz4', zstd: 'zstd'}

describe('codecs', () => {
  const input = sample(9 * 1024 * 1024) // more than two lz4 chunks
  const plain = Buffer.concat(input)
  // Scratch directories for the standard tools' files (~14 MB each), removed at the end.
  const dirs: string[] = []
  const scratch = () => {
    const d = mkdtempSync(path.join(tmpdir(), 'codec-'))
    dirs.push(d)
    return d
  }
  afterAll(() => {
    for (const d of dirs) rmSync(d, {recursive: true, force: true})
  })

  it.each(COMPRESSIONS)('%s round-trips, compresses, and the standard tool reads it', async (c) => {
    const packed = await collect(input, await createCompressor(c))
    if (c !== 'none') expect(packed.length).toBeLessThan(plain.length * 0.8)
    const back = await collect([packed], await createDecompressor(c))
    expect(back.equals(plain)).toBe(true)
    const t = tool[c]
    if (t && existsSync(`/usr/bin/${t}`)) {
      const dir = scratch()
      const f = path.join(dir, `x${EXTENSION[c]}`)
      writeFileSync(f, packed)
      execFileSync(t, ['-d', '-q', '-f', f, path.join(dir, 'x')].slice(0, t === 'lz4' ? 5 : 4), {stdio: 'pipe'})
      expect(readFileSync(path.join(dir, 'x')).equals(plain)).toBe(true)
    }
  })

  // gzip is written as header + raw deflate + trailer with a CRC-32 of its own (codec.ts): the bytes
  // must be those zlib's gzip writes for the same input, however it arrives in chunks.
  it.each([1, 6, 9])('gzip at level %i writes what zlib.gzipSync writes', async (level) => {
    const packed = await collect(input, await createCompressor('gzip', level))
    expect(packed.equals(gzipSync(plain, {level}))).toBe(true)
    expect((await collect([], await createCompressor('gzip', level))).equals(gzipSync(Buffer.alloc(0), {level}))).toBe(true)
  })

  it("gzip's fallback CRC-32 (zlib's, where @node-rs/crc32 has no binary) chains over chunks alike", async () => {
    const {crc32: simd} = await import('@node-rs/crc32')
    let a = 0
    let b = 0
    for (const c of input.slice(0, 5000)) {
      a = simd(c, a)
      b = zlibCrc32(c, b)
    }
    expect(a >>> 0).toBe(b)
    expect(b).toBe(zlibCrc32(Buffer.concat(input.slice(0, 5000))))
  })

  it.each(['lz4', 'zstd', 'gzip'] as const)('%s reads what the standard tool wrote', async (c) => {
    const t = tool[c]!
    if (!existsSync(`/usr/bin/${t}`)) return
    const dir = scratch()
    const f = path.join(dir, 'y')
    writeFileSync(f, plain)
    execFileSync(t, ['-q', '-f', f, f + EXTENSION[c]].slice(0, t === 'lz4' ? 4 : 3), {stdio: 'pipe'})
    const packed = readFileSync(f + EXTENSION[c])
    const back = await collect([packed.subarray(0, 1000), packed.subarray(1000)], await createDecompressor(c))
    expect(back.equals(plain)).toBe(true)
  })

  it.each(['lz4', 'zstd', 'gzip'] as const)('%s rejects a truncated file', async (c) => {
    const packed = await collect(input, await createCompressor(c))
    await expect(collect([packed.subarray(0, packed.length - 7)], await createDecompressor(c))).rejects.toThrow()
  })

  // Compressed parts need not carry the SHA-256 of their COPY data (copyPartToFile): each codec's own
  // checksum of the uncompressed bytes is written and checked. A bit flipped in it must fail.
  it.each([
    ['gzip', 8], // CRC-32, then the length
    ['zstd', 4], // the frame's content checksum ends the file
    ['lz4', 4], // the last frame's content checksum
  ] as const)('%s writes a checksum of the uncompressed bytes and checks it', async (c, fromEnd) => {
    const packed = await collect(input, await createCompressor(c))
    // The frames say they carry it (a flipped byte alone would also break an unchecked frame's data).
    if (c === 'zstd') expect(packed[4]! & 0x04).toBe(0x04) // Frame_Header_Descriptor: Content_Checksum_flag
    if (c === 'lz4') {
      const scanner = new Lz4FrameScanner()
      scanner.push(packed)
      let frames = 0
      for (let f = scanner.next(); f; f = scanner.next(), frames++) expect(f[4]! & 0x04).toBe(0x04) // FLG: C.Checksum
      expect(frames).toBeGreaterThan(1)
    }
    packed[packed.length - fromEnd]! ^= 0x01
    await expect(collect([packed], await createDecompressor(c))).rejects.toThrow()
  })

  it('lz4 rejects bytes that are not lz4', async () => {
    await expect(collect([Buffer.from('definitely not lz4 data')], await createDecompressor('lz4'))).rejects.toThrow(/not an LZ4 frame/)
  })

  it('the lz4 scanner finds frames split at any byte', () => {
    const s = new Lz4FrameScanner()
    const skippable = Buffer.alloc(12)
    skippable.writeUInt32LE(0x184d2a51, 0)
    skippable.writeUInt32LE(4, 4)
    // Minimal frame: magic, FLG(v01, indep), BD, HC, one uncompressed block "abc", end mark.
    const frame = Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82, 0x03, 0x00, 0x00, 0x80, 0x61, 0x62, 0x63, 0, 0, 0, 0])
    const stream = Buffer.concat([frame, skippable, frame])
    const frames: Buffer[] = []
    for (const b of stream) {
      s.push(Buffer.from([b]))
      for (let f = s.next(); f; f = s.next()) frames.push(f)
    }
    expect(frames).toEqual([frame, frame])
    expect(s.buffered).toBe(0)
  })

  it('checks --level per codec', () => {
    expect(checkLevel('zstd', undefined)).toBe(3)
    expect(checkLevel('gzip', 9)).toBe(9)
    expect(() => checkLevel('gzip', 10)).toThrow(/1 to 9/)
    expect(() => checkLevel('lz4', 5)).toThrow(/does not apply/)
  })
})
