import {describe, expect, it} from 'vitest'
import {earlyStatements, otherTableFirst} from '../../src/lib/snapshot/apply.js'
import {WorkQueue} from '../../src/lib/snapshot/work-queue.js'

const tick = (ms = 1) => new Promise((r) => setTimeout(r, ms))

describe('WorkQueue', () => {
  it('runs what finished items enqueue, on at most `limit` workers, with idle workers waiting', async () => {
    const q = new WorkQueue<string>(['a', 'b'])
    const done: string[] = []
    let running = 0
    let peak = 0
    const slots = new Set<number>()
    await q.run(3, async (item, slot) => {
      slots.add(slot)
      running++
      peak = Math.max(peak, running)
      await tick(item === 'a' ? 20 : 1)
      // 'a' finishes last and only then enqueues more: the idle workers must still be there.
      if (item === 'a') q.push('a1', 'a2', 'a3')
      if (item === 'a2') q.push('a2x')
      done.push(item)
      running--
    })
    expect(done.sort()).toEqual(['a', 'a1', 'a2', 'a2x', 'a3', 'b'])
    expect(peak).toBeLessThanOrEqual(3)
    expect(peak).toBeGreaterThanOrEqual(2)
    expect([...slots].every((s) => s >= 0 && s < 3)).toBe(true)
  })

  it('lets `pick` choose the next item from what the other workers run', async () => {
    // Two workers; each takes the first item of a letter nobody else is running when there is one.
    const q = new WorkQueue<string>(['a1', 'a2', 'a3', 'b1', 'b2'], (queued, running) => {
      const i = queued.findIndex((x) => !running.some((r) => r[0] === x[0]))
      return i < 0 ? 0 : i
    })
    const order: string[] = []
    await q.run(2, async (item) => {
      order.push(item)
      await tick(5)
    })
    // a1 and b1 start together, then a2 with b2, then a3: never two a's at once while b's wait.
    expect(order.slice(0, 2).sort()).toEqual(['a1', 'b1'])
    expect(order.slice(2, 4).sort()).toEqual(['a2', 'b2'])
    expect(order[4]).toBe('a3')
  })

  it('ends at once on an empty queue', async () => {
    await new WorkQueue<number>().run(4, async () => {
      throw new Error('never called')
    })
  })

  it('stops starting items after a failure and rethrows it', async () => {
    const q = new WorkQueue<number>([1, 2, 3, 4, 5, 6])
    const started: number[] = []
    await expect(
      q.run(2, async (n) => {
        started.push(n)
        await tick()
        if (n === 2) throw new Error('boom 2')
      }),
    ).rejects.toThrow('boom 2')
    expect(started.length).toBeLessThanOrEqual(3)
  })

  it('stops on abort with a cancellation', async () => {
    const ac = new AbortController()
    const q = new WorkQueue<number>([1, 2, 3])
    await expect(
      q.run(1, async () => {
        ac.abort()
      }, ac.signal),
    ).rejects.toThrow(/cancel/)
  })
})

describe('earlyStatements', () => {
  it('takes the wave-1 statements of a table that depend on nothing else in the plan', () => {
    const st = (id: string, wave: number, table: string | null, dependsOn: string[] = []) => ({
      id, kind: 'INDEX', wave, schema: 'public', name: id, table: table ? {schema: 'public', name: table} : null, sql: '', dependsOn,
    })
    const plan = {
      settings: [],
      statements: [st('i1', 1, 't'), st('i2', 1, 't', ['outside-the-plan']), st('i3', 1, 't', ['i1']), st('pk', 2, 't', ['i1']), st('i4', 1, 'u'), st('x', 1, null)],
    }
    const early = earlyStatements(plan as never)
    expect([...early.keys()].length).toBe(2)
    expect(early.get('public\u0000t')!.map((s) => s.id)).toEqual(['i1', 'i2'])
    expect(early.get('public\u0000u')!.map((s) => s.id)).toEqual(['i4'])
  })
})

describe('otherTableFirst (apply: the next part of a table no connection is loading)', () => {
  const table = (name: string) => ({schema: 'public', name}) as never
  const part = (t: string, i: number) => ({part: {t: table(t), p: {index: i} as never}}) as never
  it('takes the first part of another table, else the first item', () => {
    const queued = [part('big', 2), part('big', 3), part('wide', 1), {analyze: table('small')} as never]
    expect(otherTableFirst(queued, [])).toBe(0)
    expect(otherTableFirst(queued, [part('big', 1)])).toBe(2)
    // Only parts of tables being loaded, and not parts: index builds and ANALYZE are always free to go.
    expect(otherTableFirst(queued, [part('big', 1), part('wide', 0)])).toBe(3)
    expect(otherTableFirst(queued.slice(0, 2), [part('big', 1)])).toBe(0)
  })
})
