// The COPY-out parser (src/lib/snapshot/copy-out.ts) against a real server: its bytes must equal
// what pg-copy-streams (the reference implementation) yields for the same COPY, on rows small and
// large (messages split across socket reads), with notices in between, on errors mid-stream, and the
// connection must stay usable afterwards. Every case runs on both kinds of connection: a plain
// socket read through its 'data' events (as over TLS), and a DirectReadSocket whose reads land in
// the parser's own buffer.

import {createHash} from 'node:crypto'
import {Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import pg from 'pg'
import copyStreams from 'pg-copy-streams'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {DirectReadSocket} from '../../src/lib/connection/direct-read-socket.js'
import {CopyOutStream} from '../../src/lib/snapshot/copy-out.js'
import {adminClient, dropDatabase, freshDatabase, sql} from '../helpers/pg.js'

let url: string

/** Everything a Readable yields: its bytes' SHA-256, length and the number of chunks. */
async function drain(stream: NodeJS.ReadableStream, slow = false): Promise<{sha: string; bytes: number; chunks: number}> {
  const h = createHash('sha256')
  let bytes = 0
  let chunks = 0
  await pipeline(
    stream,
    new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _e, cb) {
        h.update(chunk)
        bytes += chunk.length
        chunks++
        // A slow consumer makes the stream stop reading the socket (backpressure).
        if (slow && chunks % 50 === 0) setTimeout(cb, 5)
        else cb()
      },
    }),
  )
  return {sha: h.digest('hex'), bytes, chunks}
}

async function reference(text: string) {
  const c = await adminClient(url)
  try {
    const s = c.query(copyStreams.to(text))
    const r = await drain(s)
    return {...r, rows: s.rowCount}
  } finally {
    await c.end()
  }
}

beforeAll(async () => {
  url = await freshDatabase('copyout')
  await sql(
    url,
    `CREATE TABLE small AS SELECT i AS id, 'row ' || i AS t FROM generate_series(1, 200000) i;
     CREATE TABLE big AS SELECT i AS id, repeat(md5(i::text), 40000 + i) AS t FROM generate_series(1, 12) i;
     CREATE TABLE empty (id int);
     CREATE FUNCTION noisy(i int) RETURNS int LANGUAGE plpgsql AS $$
       BEGIN IF i % 1000 = 0 THEN RAISE NOTICE 'at %', i; END IF; RETURN i; END $$;`,
  )
})

afterAll(async () => {
  if (url) await dropDatabase(url)
})

const SOCKETS = {
  'a plain socket': () => adminClient(url),
  'a DirectReadSocket': async () => {
    const c = new pg.Client({connectionString: url, stream: () => new DirectReadSocket()})
    await c.connect()
    c.on('error', () => {})
    return c
  },
}

describe.each(Object.entries(SOCKETS))('CopyOutStream on %s', (kind, open) => {
  let client: pg.Client
  beforeAll(async () => {
    client = await open()
  })
  afterAll(async () => {
    await client?.end()
  })

  it('is on the kind of socket the case names', () => {
    const socket = (client as unknown as {connection: {stream: unknown}}).connection.stream
    expect(socket instanceof DirectReadSocket).toBe(kind === 'a DirectReadSocket')
  })

  for (const [name, text] of [
    ['many small rows', 'COPY small TO STDOUT'],
    ['rows larger than a socket read', 'COPY big TO STDOUT'],
    ['an empty table', 'COPY empty TO STDOUT'],
    ['notices between rows', 'COPY (SELECT noisy(id), t FROM small WHERE id <= 20000) TO STDOUT'],
    ['binary format', 'COPY small TO STDOUT WITH (FORMAT binary)'],
  ] as const) {
    it(`yields the same bytes and rows as pg-copy-streams: ${name}`, async () => {
      const ref = await reference(text)
      const s = client.query(new CopyOutStream(text, {hash: true}))
      const got = await drain(s)
      expect(got.sha).toBe(ref.sha)
      expect(got.bytes).toBe(ref.bytes)
      expect(s.bytes).toBe(ref.bytes)
      expect(s.digest()).toBe(ref.sha)
      expect(s.rowCount).toBe(ref.rows)
      // The connection is back in node-postgres' hands.
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{one: 1}])
    })
  }

  it('gathers pieces of at least minChunk bytes (the last may be smaller), same bytes, any row size', async () => {
    for (const text of ['COPY small TO STDOUT', 'COPY big TO STDOUT', 'COPY empty TO STDOUT', 'COPY small TO STDOUT WITH (FORMAT binary)']) {
      const ref = await reference(text)
      const sizes: number[] = []
      const s = client.query(new CopyOutStream(text, {hash: true, minChunk: 256 * 1024}))
      s.on('data', (c: Buffer) => sizes.push(c.length))
      const got = await drain(s, true)
      expect(got.sha).toBe(ref.sha)
      expect(s.digest()).toBe(ref.sha)
      expect(s.bytes).toBe(ref.bytes)
      expect(s.rowCount).toBe(ref.rows)
      expect(sizes.slice(0, -1).every((n) => n >= 256 * 1024)).toBe(true)
      expect(sizes.every((n) => n > 0)).toBe(true)
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{one: 1}])
    }
  })

  it('respects backpressure from a slow consumer and loses nothing', async () => {
    const ref = await reference('COPY small TO STDOUT')
    const progress: number[] = []
    const s = client.query(new CopyOutStream('COPY small TO STDOUT', {onBytes: (b) => progress.push(b)}))
    const got = await drain(s, true)
    expect(got.sha).toBe(ref.sha)
    expect(s.rowCount).toBe(200000)
    expect(s.digest()).toBe('')
    expect(progress.at(-1)).toBe(ref.bytes)
    expect(progress).toEqual([...progress].sort((a, b) => a - b))
  })

  it('fails with the server error on an error before any data, connection still usable', async () => {
    const s = client.query(new CopyOutStream('COPY no_such_table TO STDOUT'))
    await expect(drain(s)).rejects.toThrow(/no_such_table/)
    expect((await client.query('SELECT 2 AS two')).rows).toEqual([{two: 2}])
  })

  it('fails with the server error on an error mid-stream, connection still usable', async () => {
    const s = client.query(new CopyOutStream('COPY (SELECT 1 / (150000 - id), t FROM small) TO STDOUT'))
    await expect(drain(s)).rejects.toThrow(/division by zero/)
    expect(s.bytes).toBeGreaterThan(0)
    expect((await client.query('SELECT 3 AS three')).rows).toEqual([{three: 3}])
  })

  it('runs queued behind other queries on the same client', async () => {
    const first = client.query('SELECT pg_sleep(0.05)')
    const s = client.query(new CopyOutStream('COPY (SELECT id FROM small WHERE id <= 10) TO STDOUT'))
    const [, got] = await Promise.all([first, drain(s)])
    expect(got.bytes).toBe('1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n'.length)
    expect(s.rowCount).toBe(10)
  })

  it('leaves the socket to node-postgres afterwards, for results larger than a read', async () => {
    await drain(client.query(new CopyOutStream('COPY big TO STDOUT')))
    const r = await client.query<{id: number; t: string}>('SELECT id, t FROM big ORDER BY id')
    expect(r.rows.map((x) => x.t.length)).toEqual(Array.from({length: 12}, (_, i) => 32 * (40001 + i)))
    const many = await client.query<{n: string}>('SELECT count(*) AS n FROM (SELECT * FROM small) s')
    expect(many.rows[0]!.n).toBe('200000')
  })

  it('fails with the reason when its backend is terminated mid-COPY', async () => {
    const pid = (await client.query<{pid: number}>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid
    const s = client.query(new CopyOutStream('COPY (SELECT t, pg_sleep(CASE WHEN id = 5000 THEN 30 ELSE 0 END) FROM small) TO STDOUT'))
    // Its failure is taken as it happens (during the terminating query below).
    const failed = drain(s).then(
      () => new Error('the COPY succeeded'),
      (err: Error) => err,
    )
    await new Promise((r) => setTimeout(r, 300))
    await sql(url, 'SELECT pg_terminate_backend($1)', [pid])
    expect((await failed).message).toMatch(/terminating connection due to administrator command/)
    expect(s.bytes).toBeGreaterThan(0)
    // The next test needs a live client.
    await client.end().catch(() => {})
    client = await open()
  })
})
