// The registry through the SQL API and the commands: upsert, order, heartbeat health, the state
// machine trigger, remove refused while a node is a source.

import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {runCli} from '../helpers/cli.js'
import {dropDatabase, freshDatabase, sql} from '../helpers/pg.js'

describe('node registry', () => {
  let db: string
  beforeAll(async () => {
    db = await freshDatabase('nodereg')
  })
  afterAll(async () => {
    await dropDatabase(db)
  })

  it('register (installing the schema), upsert, list by priority then id, --json', async () => {
    let r = await runCli(['node', 'register', 'b', '--host', 'h2', '--port', '5433', '--priority', '80', '-d', db, '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.json()).toMatchObject({nodeId: 'b', host: 'h2', port: 5433, priority: 80, initState: 'uninitialized', isHealthy: false})
    await sql(db, `SELECT steep_repl.register_node('a', 'Node A', 'h1', 5432, 80)`)
    await sql(db, `SELECT steep_repl.register_node('c', 'Node C', 'h3', 5432, 90)`)
    // Upsert keeps the row and changes the address.
    await sql(db, `SELECT steep_repl.register_node('c', 'Node C', 'h3b', 6000, 90)`)
    r = await runCli(['node', 'list', '-d', db, '--json'])
    expect(r.code).toBe(0)
    const nodes = r.json().nodes as Array<{nodeId: string; host: string; port: number}>
    expect(nodes.map((n) => n.nodeId)).toEqual(['c', 'a', 'b'])
    expect(nodes[0]).toMatchObject({host: 'h3b', port: 6000})
    r = await runCli(['node', 'register', 'bad', '--host', 'h', '--priority', '101', '-d', db])
    expect(r.code).toBe(2)
  })

  it('heartbeat makes a node healthy; node_status reports is_healthy from the age', async () => {
    let r = await runCli(['node', 'heartbeat', 'a', '-d', db, '--json'])
    expect(r.code, r.stderr).toBe(0)
    const rows = await sql(db, `SELECT node_id, is_healthy FROM steep_repl.node_status() ORDER BY node_id`)
    expect(rows).toEqual([
      {node_id: 'a', is_healthy: true},
      {node_id: 'b', is_healthy: false},
      {node_id: 'c', is_healthy: false},
    ])
    await sql(db, `UPDATE steep_repl.nodes SET last_seen = now() - interval '5 minutes' WHERE node_id = 'a'`)
    expect((await sql(db, `SELECT is_healthy FROM steep_repl.node_status('a')`))[0].is_healthy).toBe(false)
    r = await runCli(['node', 'heartbeat', 'nosuch', '-d', db])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/node nosuch is not registered/)
    r = await runCli(['node', 'status', 'a', '-d', db, '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.json()).toMatchObject({nodes: [{nodeId: 'a', isHealthy: false}], replication: {subscriptions: [], slots: []}})
  })

  it('refuses invalid init state transitions', async () => {
    await expect(sql(db, `UPDATE steep_repl.nodes SET init_state = 'synchronized' WHERE node_id = 'b'`)).rejects.toThrow(/invalid state transition from uninitialized to synchronized/)
    for (const s of ['preparing', 'copying', 'catching_up', 'synchronized']) await sql(db, `UPDATE steep_repl.nodes SET init_state = $1 WHERE node_id = 'b'`, [s])
    await expect(sql(db, `UPDATE steep_repl.nodes SET init_state = 'copying' WHERE node_id = 'b'`)).rejects.toThrow(/invalid state transition/)
  })

  it('remove is refused while the node is a source, unless --force', async () => {
    await sql(db, `UPDATE steep_repl.nodes SET init_source_node = 'a' WHERE node_id = 'b'`)
    let r = await runCli(['node', 'remove', 'a', '-d', db])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/node a is a replication source: node\(s\) b were initialized from it/)
    r = await runCli(['node', 'remove', 'a', '-d', db, '--force', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.json()).toMatchObject({removed: true, detached: ['b']})
    expect(await sql(db, `SELECT node_id, init_source_node FROM steep_repl.nodes ORDER BY node_id`)).toEqual([
      {node_id: 'b', init_source_node: null},
      {node_id: 'c', init_source_node: null},
    ])
    r = await runCli(['node', 'remove', 'a', '-d', db])
    expect(r.code).toBe(1)
  })
})
