import {describe, expect, it} from 'vitest'
import {prepareParams, reinitParams} from '../../src/lib/node/jobs.js'

describe('node job params', () => {
  it('node_reinit takes exactly one of full, tables or schema', () => {
    const base = {nodeId: 'n2', source: 'node:n1'}
    expect(reinitParams.safeParse({...base, tables: ['public.t']}).success).toBe(true)
    expect(reinitParams.safeParse({...base, schema: 'sales'}).success).toBe(true)
    expect(reinitParams.safeParse({...base, full: true}).success).toBe(true)
    expect(reinitParams.safeParse(base).success).toBe(false)
    expect(reinitParams.safeParse({...base, full: true, tables: ['public.t']}).success).toBe(false)
    expect(reinitParams.safeParse({...base, schema: 's', tables: ['public.t']}).success).toBe(false)
    expect(reinitParams.parse({...base, full: true}).timeoutSeconds).toBe(600)
  })
  it('node_prepare needs an absolute output path and a snapshot id, and refuses unknown keys', () => {
    const base = {nodeId: 'db2', fromNodeId: 'db1', source: 'node:db1', snapshotId: 'snap_20260101_000000_abcd1234', output: '/backups/seed'}
    expect(prepareParams.parse(base)).toMatchObject({parallel: 4, compression: 'zstd', tables: []})
    expect(prepareParams.safeParse({...base, output: 'relative/dir'}).success).toBe(false)
    expect(prepareParams.safeParse({...base, snapshotId: 'bad id'}).success).toBe(false)
    expect(prepareParams.safeParse({...base, password: 'x'}).success).toBe(false)
    expect(prepareParams.safeParse({...base, nodeId: 'bad id!'}).success).toBe(false)
  })
})
