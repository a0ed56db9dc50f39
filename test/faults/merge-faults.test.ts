// Fault catalogue, merge run: the CLI killed with SIGKILL while it writes. Each table's writes on a
// node are one transaction (docs/merge.md), so every table on every node must be either untouched or
// fully merged — never half — and a second run must finish the rest and leave both nodes equal.

import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {runCli} from '../helpers/cli.js'
import {dropDatabase, freshDatabase, shared} from '../helpers/pg.js'
import {checksums, killCli, spawnCli, twoSidedMergeTables, waitWriting} from './harness.js'

const TABLES = ['public.t1', 'public.t2', 'public.t3']
const N = 30_000 // rows per table on each node; half of them on both, 1 in 10 of those differing

describe('fault catalogue: merge run', {timeout: 120_000}, () => {
  let a: string
  let b: string
  let beforeA: Record<string, string>
  let beforeB: Record<string, string>
  let merged: string

  beforeAll(async () => {
    ;[a, b] = await Promise.all([freshDatabase('fault_merge_a'), freshDatabase('fault_merge_b')])
    // prefer-node-a: both nodes end with ids 1..1.5N and v = id.
    ;({beforeA, beforeB, merged} = await twoSidedMergeTables(a, b, TABLES, N))
  }, 120_000)

  afterAll(async () => {
    await Promise.all([a && dropDatabase(a), b && dropDatabase(b)])
  })

  it('merge run killed with SIGKILL mid-write: each table on each node is untouched or fully merged; a second run converges', async () => {
    const dbB = decodeURIComponent(new URL(b).pathname.slice(1))
    const run = spawnCli(['merge', 'run', '--node-a', a, '--node-b', b, '--tables', TABLES.join(','), '--strategy', 'prefer-node-a', '--direct', '--batch-rows', '500'])
    // A transaction on node B that has written: a table's writes are under way, not committed.
    await waitWriting(shared().url, dbB, 90_000)
    await killCli(run)

    const [afterA, afterB] = [await checksums(a, TABLES), await checksums(b, TABLES)]
    for (const t of TABLES) {
      expect([beforeA[t], merged], `node A ${t}`).toContain(afterA[t])
      expect([beforeB[t], merged], `node B ${t}`).toContain(afterB[t])
    }
    // The kill landed mid-write: at least one table on B was not (yet) merged.
    expect(TABLES.some((t) => afterB[t] === beforeB[t])).toBe(true)

    const again = await runCli(['merge', 'run', '--node-a', a, '--node-b', b, '--tables', TABLES.join(','), '--strategy', 'prefer-node-a', '--direct'], {timeoutMs: 110_000})
    expect(again.code, again.stderr).toBe(0)
    const all = Object.fromEntries(TABLES.map((t) => [t, merged]))
    expect(await checksums(a, TABLES)).toEqual(all)
    expect(await checksums(b, TABLES)).toEqual(all)
  })
})
