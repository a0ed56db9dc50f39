// merge run as a job: the job record on node A, and steep_repl.start_merge queueing a merge that a
// worker runs with a peer named in its own config file (no password in the queue).

import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {resolveConnection} from '../../src/lib/connection/resolve.js'
import {Worker} from '../../src/direct/worker.js'
import {runCli} from '../helpers/cli.js'
import {dropDatabase, sql} from '../helpers/pg.js'
import {installSchema, SIMPLE_A, SIMPLE_B, SIMPLE_SCHEMA, twoNodes} from './merge-fixtures.js'

const dbs: string[] = []
afterAll(async () => {
  await Promise.all(dbs.map((d) => dropDatabase(d)))
})

describe('merge as a job', () => {
  it('merge run --direct records a job on node A and converges the nodes', async () => {
    const n = await twoNodes(SIMPLE_SCHEMA, SIMPLE_A, SIMPLE_B, 'mjob')
    dbs.push(n.a, n.b)
    await installSchema(n.a)
    const r = await runCli(['merge', 'run', '--node-a', n.a, '--node-b', n.b, '--tables', 'users', '--strategy', 'prefer-node-a', '--direct', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const j = r.json()
    expect(j.jobId).toBeTruthy()
    const [job] = await sql(n.a, `SELECT operation, status, params FROM steep_repl.work_queue WHERE id = $1`, [j.jobId])
    expect(job).toMatchObject({operation: 'merge_run', status: 'complete'})
    expect(JSON.stringify(job.params)).not.toContain(new URL(n.b).password)
    const q = `SELECT id, name FROM users ORDER BY id`
    expect(await sql(n.b, q)).toEqual(await sql(n.a, q))
  })

  it('steep_repl.start_merge queues a merge a worker runs against a peer from its config', async () => {
    const n = await twoNodes(SIMPLE_SCHEMA, SIMPLE_A, SIMPLE_B, 'mjobsql')
    dbs.push(n.a, n.b)
    await installSchema(n.a)
    await expect(sql(n.a, `SELECT steep_repl.start_merge('peer', ARRAY['users'], 'sideways')`)).rejects.toThrow(/unknown strategy/)
    await expect(sql(n.a, `SELECT steep_repl.start_merge('peer', ARRAY['nosuch'])`)).rejects.toThrow(/does not exist/)
    const [{id}] = await sql(n.a, `SELECT steep_repl.start_merge('peer', ARRAY['users'], 'prefer-node-b') AS id`)
    const [queued] = await sql(n.a, `SELECT id::text, params FROM steep_repl.work_queue WHERE operation = 'merge_run'`)
    expect(queued.params).toMatchObject({nodeB: 'peer', mergeId: id, strategy: 'prefer-node-b', tables: [{schema: 'public', name: 'users'}]})
    const b = new URL(n.b)
    const cfg = path.join(mkdtempSync(path.join(tmpdir(), 'steep-mjob-')), 'config.yaml')
    writeFileSync(cfg, `connections:\n  peer:\n    host: ${b.hostname}\n    port: ${b.port}\n    user: ${b.username}\n    dbname: ${b.pathname.slice(1)}\n    password_env: STEEP_TEST_PEER_PW\n`)
    process.env.STEEP_TEST_PEER_PW = decodeURIComponent(b.password)
    const worker = new Worker({db: resolveConnection({db: n.a}), operations: ['merge_run'], version: 'test', pollMs: 200, configPath: cfg, onEvent: () => {}})
    await worker.start()
    try {
      const [done] = await sql(n.a, `SELECT status, error_message FROM steep_repl.wait_job($1, 60)`, [queued.id])
      expect(done).toMatchObject({status: 'complete', error_message: null})
    } finally {
      await worker.stop()
      delete process.env.STEEP_TEST_PEER_PW
    }
    const [merge] = await sql(n.a, `SELECT status FROM steep_repl.merges WHERE merge_id = $1`, [id])
    expect(merge).toBeTruthy()
    const q = `SELECT id, name FROM users ORDER BY id`
    expect(await sql(n.a, q)).toEqual(await sql(n.b, q))
  })
})
