import {describe, expect, it} from 'vitest'
import {canTransition, healthOf, INIT_STATES, initNames, overallPercent, sanitizeName, TRANSITIONS} from '../../src/lib/node/state.js'

describe('init state machine', () => {
  it('allows the init path and refuses skipping steps', () => {
    const path = ['uninitialized', 'preparing', 'copying', 'catching_up', 'synchronized'] as const
    for (let i = 1; i < path.length; i++) expect(canTransition(path[i - 1]!, path[i]!)).toBe(true)
    expect(canTransition('uninitialized', 'synchronized')).toBe(false)
    expect(canTransition('uninitialized', 'copying')).toBe(false)
    expect(canTransition('copying', 'synchronized')).toBe(false)
    expect(canTransition('synchronized', 'copying')).toBe(false)
    expect(canTransition('failed', 'synchronized')).toBe(false)
  })
  it('lets every running state fail, and a failed node start again', () => {
    for (const s of ['preparing', 'copying', 'catching_up', 'reinitializing'] as const) expect(canTransition(s, 'failed')).toBe(true)
    expect(canTransition('failed', 'preparing')).toBe(true)
    expect(canTransition('failed', 'uninitialized')).toBe(true)
  })
  it('only names known states', () => {
    for (const [from, tos] of Object.entries(TRANSITIONS)) {
      expect(INIT_STATES).toContain(from)
      for (const t of tos) expect(INIT_STATES).toContain(t)
    }
  })
})

describe('names and health', () => {
  it('sanitizes ids like upstream and keeps names within 63 characters', () => {
    expect(sanitizeName('Node-A.1')).toBe('node_a_1')
    expect(initNames('db2', 'db1')).toEqual({subscription: 'steep_sub_db2_from_db1', slot: 'steep_sub_db2_from_db1', publication: 'steep_pub_db1_to_db2'})
    const long = initNames('x'.repeat(60), 'y'.repeat(60))
    expect(long.slot.length).toBeLessThanOrEqual(63)
    expect(long.publication.length).toBeLessThanOrEqual(63)
  })
  it('judges health from the age of last_seen and the status', () => {
    const now = new Date('2026-01-01T00:01:00Z')
    expect(healthOf({status: 'healthy', lastSeen: new Date('2026-01-01T00:00:50Z'), now, maxAgeSeconds: 30}).healthy).toBe(true)
    expect(healthOf({status: 'healthy', lastSeen: new Date('2026-01-01T00:00:00Z'), now, maxAgeSeconds: 30})).toEqual({healthy: false, reason: 'last seen 60s ago (more than 30s)'})
    expect(healthOf({status: 'unknown', lastSeen: null, now, maxAgeSeconds: 30}).healthy).toBe(false)
    expect(healthOf({status: 'offline', lastSeen: now, now, maxAgeSeconds: 30}).healthy).toBe(false)
  })
  it('computes the overall percent by phase', () => {
    expect(overallPercent('preparing', 0, null, 1)).toBe(0)
    expect(overallPercent('copying', 0.5, null, 1)).toBe(45)
    expect(overallPercent('catching_up', 1, 10, 100)).toBe(100)
    const far = overallPercent('catching_up', 1, 1 << 30, 1 << 20)
    expect(far).toBeGreaterThanOrEqual(90)
    expect(far).toBeLessThan(100)
    expect(overallPercent('complete', 0, null, 1)).toBe(100)
  })
})
