import {describe, expect, it} from 'vitest'
import {type HealthFacts, judge} from '../../src/lib/health/report.js'

const healthy: HealthFacts = {
  serverVersion: '18.1',
  serverVersionNum: 180001,
  inRecovery: false,
  tls: null,
  walLevel: 'logical',
  maxReplicationSlots: 10,
  maxWalSenders: 10,
  maxWalSizeBytes: 1024 ** 3,
  role: 'postgres',
  superuser: true,
  replication: true,
  canCreateInDatabase: true,
  canAlterSystemMaxWalSize: true,
  schemaInstalled: true,
  schemaReadable: true,
  schemaVersion: 1,
  expectedSchemaVersion: 1,
  slots: [],
  queue: {pending: 0, running: 0, failedLastDay: 0},
}

const failing = (r: ReturnType<typeof judge>) => r.checks.filter((c) => c.status === 'fail').map((c) => c.name)

describe('judge', () => {
  it('is healthy when everything is in order', () => {
    const r = judge(healthy)
    expect(r.healthy).toBe(true)
    expect(r.server.major).toBe(18)
  })

  it.each<[string, Partial<HealthFacts>, string]>([
    ['old server', {serverVersion: '14.9', serverVersionNum: 140009}, 'server version'],
    ['schema missing', {schemaInstalled: false, schemaVersion: 0, queue: null}, 'steep_repl schema'],
    ['schema behind', {schemaVersion: 0}, 'steep_repl schema'],
    ['schema ahead', {schemaVersion: 5}, 'steep_repl schema'],
    ['schema not readable', {schemaReadable: false}, 'steep_repl schema'],
    ['wal_level replica', {walLevel: 'replica'}, 'wal_level'],
    ['no slots', {maxReplicationSlots: 0}, 'replication capacity'],
    ['no privileges', {superuser: false, replication: false, canCreateInDatabase: false}, 'privileges'],
    ['lost slot', {slots: [{slot_name: 's', slot_type: 'logical', plugin: 'pgoutput', active: false, wal_status: 'lost', retained_bytes: 0}]}, 'slot s'],
  ])('%s is unhealthy', (_name, patch, check) => {
    const r = judge({...healthy, ...patch})
    expect(r.healthy).toBe(false)
    expect(failing(r)).toContain(check)
  })

  it('warns (still healthy) about an idle slot holding much WAL and recent failed jobs', () => {
    const r = judge({
      ...healthy,
      slots: [{slot_name: 'old', slot_type: 'logical', plugin: 'pgoutput', active: false, wal_status: 'extended', retained_bytes: 5 * 1024 ** 3}],
      queue: {pending: 1, running: 0, failedLastDay: 2},
    })
    expect(r.healthy).toBe(true)
    expect(r.checks.filter((c) => c.status === 'warn').map((c) => c.name)).toEqual(['slot old', 'job queue'])
  })

  it('accepts a non-superuser with REPLICATION and CREATE', () => {
    expect(judge({...healthy, superuser: false, canAlterSystemMaxWalSize: false}).healthy).toBe(true)
  })
})
