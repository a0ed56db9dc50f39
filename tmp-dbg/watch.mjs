// polls pg_stat_activity every ~2 ms, prints transitions (ms since start) until killed
import pg from 'pg'
import {readFileSync} from 'node:fs'
const url = readFileSync('/tmp/av-url', 'utf8').replace(/\/onebig$/, '/postgres')
const c = new pg.Client({connectionString: url, password: readFileSync('/tmp/av-pw', 'utf8')})
await c.connect()
const t0 = Number(process.argv[2] || Date.now())
const seen = new Map()
process.on('SIGTERM', () => process.exit(0))
for (;;) {
  const r = await c.query(`SELECT pid, backend_type, state, left(query, 60) AS q, backend_start FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND (application_name LIKE 'steep%' OR application_name LIKE 'pg_dump%' OR backend_type = 'walsender')`)
  const now = Date.now() - t0
  for (const x of r.rows) {
    const k = `${x.state}|${x.q}`
    if (seen.get(x.pid) !== k) { seen.set(x.pid, k); console.log(now, x.pid, x.backend_type, x.state, x.q.replace(/\s+/g, ' ')) }
  }
}
