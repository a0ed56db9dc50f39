// Shared by the jobs benchmarks: a database with the steep_repl schema, on STEEP_BENCH_URL or on a
// throwaway embedded PostgreSQL (stopped at the end). Needs `npm run build`.
import {cpus} from 'node:os'
import pg from 'pg'
import {withClient} from '../dist/lib/connection/connect.js'
import {resolveConnection} from '../dist/lib/connection/resolve.js'
import {startServer} from '../dist/lib/embedded/server.js'
import {install} from '../dist/lib/install/migrations.js'

export async function benchDatabase(name) {
  let server
  let url = process.env.STEEP_BENCH_URL
  if (!url) {
    server = await startServer({settings: {fsync: 'off', synchronous_commit: 'off'}})
    url = server.url()
  }
  const admin = new pg.Client({connectionString: url})
  await admin.connect()
  const dbname = `${name}_${process.pid}`
  await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(dbname)}`)
  const u = new URL(url)
  u.pathname = '/' + dbname
  const conn = resolveConnection({db: u.toString(), env: {}})
  await withClient(conn, (c) => install(c))
  const version = (await admin.query('SHOW server_version')).rows[0].server_version
  return {
    url: u.toString(),
    conn,
    version,
    async close() {
      await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(dbname)} WITH (FORCE)`).catch(() => {})
      await admin.end()
      await server?.stop()
    },
  }
}

export function machine() {
  return `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}`
}

export function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]
}
