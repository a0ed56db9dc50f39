// The executor without a database: the queue writes are recorded in memory. Covers the handler's
// signal (made on first use, aborted by stop() before or after that), the hook that tells a worker
// the handler has settled before the outcome is written, and the outcome written once.

import {describe, expect, it} from 'vitest'
import {z} from 'zod'
import {type ExecEnv, JobExecution} from '../../src/direct/executor.js'
import type {FinishInput, Lease} from '../../src/direct/queue.js'
import {decodeProgress} from '../../src/direct/progress-schema.js'
import type {AnyOperationKind, JobContext} from '../../src/direct/registry.js'

function kind(handler: (ctx: JobContext<{n?: number}>) => Promise<unknown>): AnyOperationKind {
  return {name: 'unit_probe', summary: 'unit test', params: z.object({n: z.number().optional()}).strict(), handler: handler as AnyOperationKind['handler']}
}

function env(events: string[]) {
  const finished: Array<{lease: Lease; f: FinishInput}> = []
  const e: ExecEnv = {
    queue: {query: (async () => ({rows: []})) as never},
    db: {} as never,
    owner: 'unit',
    executor: 'worker',
    resolveConnection: async () => ({}) as never,
    log: (m) => events.push(`log ${m}`),
    claimedLeaseSeconds: 30,
    finish: async (lease, f) => {
      events.push(`finish ${f.status}`)
      finished.push({lease, f})
      return true
    },
    onHandlerSettled: () => events.push('settled'),
  }
  return {e, finished}
}

const row = (params: unknown = {}) => ({id: '41', operation: 'unit_probe', params: params as Record<string, unknown>, priority: 0, attempts: 1, max_attempts: 3})

describe('JobExecution', () => {
  it('completes: the handler settles before the outcome is written, once, with a slim final document', async () => {
    const events: string[] = []
    const {e, finished} = env(events)
    const exec = new JobExecution(
      kind(async (ctx) => {
        events.push('handler')
        return {n: ctx.params.n}
      }),
      row({n: 3}),
      e,
    )
    expect(exec.handlerSettled).toBe(false)
    const out = await exec.run()
    expect(exec.handlerSettled).toBe(true)
    expect(out).toEqual({kind: 'complete', result: {n: 3}})
    expect(events).toEqual(['handler', 'settled', 'finish complete'])
    expect(finished).toHaveLength(1)
    expect(finished[0]!.lease).toEqual({id: '41', owner: 'unit', attempt: 1})
    const doc = decodeProgress(finished[0]!.f.progress)
    expect(doc.ok && doc.payload).toMatchObject({job: '41', status: 'complete', percent: 100, phases: []})
  })

  it('aborts the signal the handler holds when stopped while it runs', async () => {
    const events: string[] = []
    const {e} = env(events)
    const exec = new JobExecution(
      kind(async (ctx) => {
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), {once: true}))
        ctx.checkpoint()
        return 'not reached'
      }),
      row(),
      e,
    )
    const running = exec.run()
    await new Promise((r) => setTimeout(r, 20))
    exec.stop('cancel')
    expect(await running).toEqual({kind: 'cancelled', error: 'cancelled by request'})
    expect(events).toEqual(['settled', 'finish cancelled'])
  })

  it('a stop requested before the handler first reads its signal: the signal is already aborted, checkpoint throws', async () => {
    const events: string[] = []
    const {e} = env(events)
    let sawAborted: boolean | undefined
    const exec = new JobExecution(
      kind(async (ctx) => {
        await new Promise((r) => setTimeout(r, 30))
        sawAborted = ctx.signal.aborted
        ctx.checkpoint()
        return 'not reached'
      }),
      row(),
      e,
    )
    const running = exec.run()
    exec.stop('timeout', 'timed out after 1s')
    expect(await running).toEqual({kind: 'cancelled', error: 'timed out after 1s'})
    expect(sawAborted).toBe(true)
    expect(exec.stopReason?.kind).toBe('timeout')
  })

  it('params that no longer validate fail the job without running the handler (the hook still fires)', async () => {
    const events: string[] = []
    const {e, finished} = env(events)
    let ran = false
    const out = await new JobExecution(
      kind(async () => {
        ran = true
      }),
      row({n: 'x'}),
      e,
    ).run()
    expect(ran).toBe(false)
    expect(out).toMatchObject({kind: 'failed', error: expect.stringMatching(/^invalid params: .*n/)})
    expect(events).toEqual(['settled', 'finish failed'])
    expect(finished[0]!.f.error).toMatch(/invalid params/)
  })
})
