import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {runCli} from '../helpers/cli.js'
import {dropDatabase, freshDatabase, sql, startTestServer} from '../helpers/pg.js'
import type {ServerHandle} from '../helpers/servers.js'

describe('health', () => {
  let db: string
  beforeAll(async () => {
    db = await freshDatabase('health')
  })
  afterAll(async () => {
    await dropDatabase(db)
  })

  it('is unhealthy (exit 1) while the schema is missing and says what to run', async () => {
    const r = await runCli(['health', '-d', db])
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/steep_repl schema\s+FAIL\s+not installed/)
    expect(r.stdout).toMatch(/steep-repl install/)
  })

  it('is healthy (exit 0) once installed, and --json gives one document', async () => {
    expect((await runCli(['install', '-d', db])).code).toBe(0)
    const r = await runCli(['health', '-d', db, '--json'])
    expect(r.code).toBe(0)
    const report = r.json()
    expect(report.healthy).toBe(true)
    expect(report.server.walLevel).toBe('logical')
    expect(report.schema).toMatchObject({installed: true})
    expect(report.queue).toEqual({pending: 0, running: 0, failedLastDay: 0})
    expect(report.checks.map((c: {name: string}) => c.name)).toEqual(
      expect.arrayContaining(['server version', 'steep_repl schema', 'wal_level', 'replication capacity', 'privileges', 'job queue']),
    )
  })

  it('reports replication slots and the WAL they retain, and queue depth', async () => {
    const slot = `health_${Date.now()}`
    await sql(db, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot])
    try {
      await sql(db, `INSERT INTO steep_repl.work_queue (operation) VALUES ('noop'), ('noop')`)
      const r = await runCli(['health', '-d', db, '--json'])
      const report = r.json()
      const s = report.slots.find((x: {slot_name: string}) => x.slot_name === slot)
      expect(s).toMatchObject({slot_type: 'logical', plugin: 'pgoutput', active: false})
      expect(typeof s.retained_bytes).toBe('number')
      expect(report.queue.pending).toBe(2)
    } finally {
      await sql(db, `SELECT pg_drop_replication_slot($1)`, [slot])
      await sql(db, `DELETE FROM steep_repl.work_queue`)
    }
  })

  it('reports a role without the needed privileges', async () => {
    const role = `weak_${Date.now()}`
    await sql(db, `CREATE ROLE ${role} LOGIN PASSWORD 'weak-pass-123'`)
    try {
      const u = new URL(db)
      u.username = role
      u.password = 'weak-pass-123'
      const r = await runCli(['health', '-d', u.toString(), '--json'])
      expect(r.code).toBe(1)
      const priv = r.json().checks.find((c: {name: string}) => c.name === 'privileges')
      expect(priv.status).toBe('fail')
      expect(priv.detail).toMatch(/REPLICATION/)
    } finally {
      await sql(db, `DROP ROLE ${role}`)
    }
  })
})

describe('health on a server with wal_level=replica', () => {
  let server: ServerHandle
  beforeAll(async () => {
    server = await startTestServer({settings: {wal_level: 'replica'}})
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('fails the wal_level check with the fix', async () => {
    await runCli(['install', '-d', server.url()])
    const r = await runCli(['health', '-d', server.url()])
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/wal_level\s+FAIL\s+replica/)
    expect(r.stdout).toMatch(/ALTER SYSTEM SET wal_level = 'logical'/)
  })
})
