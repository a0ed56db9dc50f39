import {describe, expect, it} from 'vitest'
import {listMigrations, planInstall, renderPlanSql} from '../../src/lib/install/migrations.js'
import {SchemaMismatchError} from '../../src/lib/errors.js'

describe('migrations', () => {
  const all = listMigrations()

  it('start at 1, ascend strictly, each with a checksum', () => {
    expect(all[0]?.version).toBe(1)
    all.forEach((m, i) => {
      if (i > 0) expect(m.version).toBeGreaterThan(all[i - 1]!.version)
      expect(m.checksum).toMatch(/^[0-9a-f]{64}$/)
    })
  })

  it('plans everything on an empty database and nothing when up to date', () => {
    expect(planInstall({installed: false, version: 0, applied: []}).pending).toHaveLength(all.length)
    const applied = all.map((m) => ({version: m.version, name: m.name, checksum: m.checksum, applied_at: new Date()}))
    const plan = planInstall({installed: true, version: all.at(-1)!.version, applied})
    expect(plan.pending).toHaveLength(0)
    expect(plan.modified).toHaveLength(0)
    expect(renderPlanSql(plan, true)).toMatch(/up to date/)
  })

  it('reports a changed migration file and refuses a newer schema', () => {
    const applied = [{version: 1, name: all[0]!.name, checksum: 'x', applied_at: new Date()}]
    expect(planInstall({installed: true, version: 1, applied}).modified).toEqual([{version: 1, name: all[0]!.name}])
    expect(() => planInstall({installed: true, version: 999, applied: []})).toThrow(SchemaMismatchError)
  })

  it('renders dry-run SQL with the lock, the bootstrap and the version rows', () => {
    const sql = renderPlanSql(planInstall({installed: false, version: 0, applied: []}), false)
    expect(sql).toMatch(/pg_advisory_xact_lock/)
    expect(sql).toMatch(/CREATE SCHEMA IF NOT EXISTS steep_repl/)
    expect(sql).toMatch(/CREATE TABLE steep_repl.work_queue/)
    expect(sql).toMatch(/INSERT INTO steep_repl.schema_version/)
  })
})
