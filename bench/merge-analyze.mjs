#!/usr/bin/env node
// merge analyze on a 1M-row table held by two servers with 0.1% of the rows differing (a third
// changed, a third only on A, a third only on B), next to full transfers measured in the same run:
// the upstream-style comparison (upstream's row hash, hashtextextended(row::text, 0), and its key
// as jsonb, for every row of both nodes, shipped to the client and joined there — upstream joined on
// node A through dblink), and the same full transfer with this tool's cheaper row hash (the block
// hashing's own gain, hash cost aside); and next to one hashing scan of the table on each node (the
// least any hash compare must read). Prints figures; asserts nothing. Needs `npm run build`.
// ROWS=… to change the size.
import {cpus} from 'node:os'
import {performance} from 'node:perf_hooks'
import pg from 'pg'

const dist = (p) => new URL(`../dist/lib/${p}`, import.meta.url).href
const {EmbeddedServer} = await import(dist('embedded/server.js'))
const {analyzeOverlap, openPair, prepareTables} = await import(dist('merge/analyze.js'))
const {parseTableList} = await import(dist('merge/tables.js'))
const {fullKeyHashSql, rowHashExpr, fromTable} = await import(dist('merge/sql.js'))
const {resolveConnection} = await import(dist('connection/resolve.js'))

const ROWS = Number(process.env.ROWS ?? 1_000_000)
const RUNS = Number(process.env.RUNS ?? 3)
const major = Number(process.env.PG_MAJOR ?? 18)

const schema = `CREATE TABLE public.orders (
  id bigint PRIMARY KEY, customer_id int NOT NULL, email text NOT NULL, status text NOT NULL,
  amount numeric(12,2) NOT NULL, note text, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)`
const load = `INSERT INTO public.orders
  SELECT g, g % 50000, 'customer' || (g % 50000) || '@example.com', (ARRAY['new','paid','shipped','closed'])[1 + g % 4],
         (g % 100000) / 100.0, 'order note number ' || g || ' with some text', timestamptz '2024-01-01' + g * interval '1 second',
         timestamptz '2024-06-01' + g * interval '1 second'
    FROM generate_series(1, ${ROWS}) g`
// 0.1% of the rows, scattered: ids whose hash falls in a bucket.
const pick = (k) => `(hashint8(id) & 1023) = ${k}`
const diffB = `UPDATE public.orders SET status = 'disputed', updated_at = updated_at + interval '1 day' WHERE ${pick(1)} AND id % 3 = 0;
  DELETE FROM public.orders WHERE ${pick(1)} AND id % 3 = 1;
  INSERT INTO public.orders SELECT id + ${ROWS * 10}, customer_id, email, status, amount, note, created_at, updated_at FROM public.orders WHERE ${pick(1)} AND id % 3 = 2`

const servers = [new EmbeddedServer({major}), new EmbeddedServer({major})]
await Promise.all(servers.map((s) => s.start()))
try {
  const urls = servers.map((s) => s.url('postgres'))
  const t0 = performance.now()
  await Promise.all(urls.map(async (u, i) => {
    const c = new pg.Client({connectionString: u})
    await c.connect()
    await c.query(schema)
    await c.query(load)
    if (i === 1) await c.query(diffB)
    await c.query('VACUUM ANALYZE public.orders')
    await c.end()
  }))
  const setup = (performance.now() - t0) / 1000
  const conn = urls.map((u) => resolveConnection({db: u, env: {}}))
  const tables = parseTableList('public.orders')

  // Facts: table size, true differences.
  const pair = await openPair(conn[0], conn[1])
  const [prepared] = await prepareTables(pair, tables)
  const size = Number((await pair.a.client.query(`SELECT pg_table_size('public.orders') AS s`)).rows[0].s)
  const hashScan = `SELECT count(*) AS n, bit_xor(${rowHashExpr(prepared.sql)}) AS h FROM ${fromTable(prepared.sql)}`
  const countScan = `SELECT count(*) AS n FROM ${fromTable(prepared.sql)}`

  async function both(text) {
    const t = performance.now()
    await Promise.all([pair.a.client.query(text), pair.b.client.query(text)])
    return (performance.now() - t) / 1000
  }
  // Every key and row hash of both nodes to the client, joined there: upstream's expressions
  // (reference §8.3: steep_repl.row_hash(t.*) = hashtextextended(t::text, 0), the key as jsonb), or
  // this tool's row hash and key text.
  const upstreamSql = `SELECT jsonb_build_object('id', t.id)::text AS k0, hashtextextended(t::text, 0) AS h FROM ${fromTable(prepared.sql)}`
  async function fullTransfer(text) {
    const b0 = pair.a.bytesReceived() + pair.b.bytesReceived()
    const t = performance.now()
    const [ra, rb] = await Promise.all([pair.a.client.query(text), pair.b.client.query(text)])
    const mb = new Map(rb.rows.map((r) => [r.k0, r.h]))
    let match = 0, conflict = 0, aOnly = 0
    for (const r of ra.rows) {
      const h = mb.get(r.k0)
      if (h === undefined) aOnly++
      else if (h === r.h) match++
      else conflict++
      mb.delete(r.k0)
    }
    return {seconds: (performance.now() - t) / 1000, bytes: pair.a.bytesReceived() + pair.b.bytesReceived() - b0, match, conflict, aOnly, bOnly: mb.size}
  }

  await both(hashScan) // warm the caches
  const med = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]
  const scans = [], counts = [], fulls = [], ups = [], ours = []
  let full, up, res
  for (let i = 0; i < RUNS; i++) {
    counts.push(await both(countScan))
    scans.push(await both(hashScan))
    up = await fullTransfer(upstreamSql)
    ups.push(up.seconds)
    full = await fullTransfer(fullKeyHashSql(prepared.sql))
    fulls.push(full.seconds)
    res = await analyzeOverlap({nodeA: conn[0], nodeB: conn[1], tables})
    ours.push(res.seconds)
  }
  await pair.close()
  const t = res.tables[0]
  const mib = (b) => `${(b / 1048576).toFixed(2)} MiB`
  console.log(`merge analyze benchmark: ${ROWS} rows per node, PostgreSQL ${major}, node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; setup ${setup.toFixed(1)} s; median of ${RUNS} runs`)
  console.log(`table size (pg_table_size, node A): ${mib(size)}`)
  const same = (x) => t.conflict === x.conflict && t.aOnly === x.aOnly && t.bOnly === x.bOnly
  console.log(`differences: block-hash ${t.conflict} conflicts, ${t.aOnly} A-only, ${t.bOnly} B-only (of ${t.total}); full transfers ${up.conflict}/${up.aOnly}/${up.bOnly} and ${full.conflict}/${full.aOnly}/${full.bOnly} — ${same(up) && same(full) ? 'identical' : 'DIFFERENT'}`)
  console.log(`plain scan (count(*)) on both nodes at once:   ${med(counts).toFixed(3)} s`)
  console.log(`hashing scan on both nodes at once:            ${med(scans).toFixed(3)} s`)
  console.log(`merge analyze (block hashing):                 ${med(ours).toFixed(3)} s, ${mib(res.bytesReceived.total)} received (${((100 * res.bytesReceived.total) / size).toFixed(2)}% of the table), ${t.stats.statements} statements, ${t.stats.topBlocks} top blocks, ${t.stats.levels} levels, ${t.stats.leafRanges} leaves`)
  console.log(`upstream-style full transfer (its row hash):   ${med(ups).toFixed(3)} s, ${mib(up.bytes)} received`)
  console.log(`full transfer with this tool's row hash:       ${med(fulls).toFixed(3)} s, ${mib(full.bytes)} received`)
  console.log(`ratios: analyze / hashing scan = ${(med(ours) / med(scans)).toFixed(2)}× (target ≤ 2); upstream-style full transfer / analyze time = ${(med(ups) / med(ours)).toFixed(2)}× (target ≥ 3); same-hash full transfer / analyze = ${(med(fulls) / med(ours)).toFixed(2)}×; bytes upstream-style / analyze = ${(up.bytes / res.bytesReceived.total).toFixed(1)}×, same-hash / analyze = ${(full.bytes / res.bytesReceived.total).toFixed(1)}×; analyze bytes = ${((100 * res.bytesReceived.total) / size).toFixed(2)}% of the table (target ≤ 1%)`)
} finally {
  await Promise.all(servers.map((s) => s.stop()))
}
