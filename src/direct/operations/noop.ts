// `noop`: a job that does nothing for a while and reports progress as if it copied tables. For
// tests, demos and benchmarks of the job machinery: phases prepare/copy/finish, `items` items of
// `bytesPerItem` bytes each spread over `seconds`, cancellable at every tick, optionally failing.

import {setTimeout as sleep} from 'node:timers/promises'
import {z} from 'zod'
import {defineOperation} from '../registry.js'

export const noopParams = z
  .object({
    seconds: z.number().min(0).max(86_400).default(0),
    items: z.number().int().min(0).max(10_000).default(0),
    bytesPerItem: z.number().int().min(0).max(2 ** 40).default(1024 * 1024),
    rowsPerItem: z.number().int().min(0).max(2 ** 40).default(1000),
    /** Fail with this message (after the work). */
    fail: z.string().max(500).optional(),
    /** Fail only while the attempt number is at most this (to exercise retries). */
    failAttempts: z.number().int().min(1).max(100).optional(),
  })
  .strict()

export type NoopParams = z.infer<typeof noopParams>

export interface NoopResult {
  seconds: number
  items: number
  bytes: number
  rows: number
  attempt: number
}

const TICK_MS = 50

export const noop = defineOperation({
  name: 'noop',
  summary: 'Sleep for a while, reporting progress (tests and demos).',
  params: noopParams,
  title: (p) => `noop ${p.seconds}s${p.items ? `, ${p.items} items` : ''}`,
  async handler(ctx): Promise<NoopResult> {
    const p = ctx.params
    const {progress} = ctx
    progress.plan([
      {name: 'prepare', weight: 5},
      {name: 'copy', weight: 90},
      {name: 'finish', weight: 5},
    ])
    progress.phase('prepare')
    ctx.checkpoint()
    const items = p.items
    const totalMs = p.seconds * 1000
    progress.phase('copy', {items, bytes: items * p.bytesPerItem, rows: items * p.rowsPerItem})
    const started = Date.now()
    if (items === 0 && totalMs > 0) {
      while (Date.now() - started < totalMs) {
        ctx.checkpoint()
        await sleep(Math.min(TICK_MS, totalMs - (Date.now() - started)), undefined, {signal: ctx.signal}).catch(() => {})
      }
    }
    for (let i = 0; i < items; i++) {
      const key = `item_${i + 1}`
      progress.item(key, {label: `public.item_${i + 1}`, bytesTotal: p.bytesPerItem, rowsTotal: p.rowsPerItem})
      const itemEnd = started + (totalMs * (i + 1)) / items
      let bytesLeft = p.bytesPerItem
      let rowsLeft = p.rowsPerItem
      for (;;) {
        ctx.checkpoint()
        const now = Date.now()
        const ticksLeft = Math.max(1, Math.ceil((itemEnd - now) / TICK_MS))
        const b = Math.ceil(bytesLeft / ticksLeft)
        const r = Math.ceil(rowsLeft / ticksLeft)
        progress.add({bytes: b, rows: r}, key)
        bytesLeft -= b
        rowsLeft -= r
        if (bytesLeft <= 0 && rowsLeft <= 0) break
        await sleep(Math.max(0, Math.min(TICK_MS, itemEnd - now)), undefined, {signal: ctx.signal}).catch(() => {})
      }
      progress.itemDone(key)
    }
    progress.phase('finish')
    ctx.checkpoint()
    if (p.fail !== undefined && (p.failAttempts === undefined || ctx.job.attempt <= p.failAttempts)) throw new Error(p.fail)
    progress.endPhase('done')
    return {seconds: p.seconds, items, bytes: items * p.bytesPerItem, rows: items * p.rowsPerItem, attempt: ctx.job.attempt}
  },
})
