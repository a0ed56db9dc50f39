// A small bounded worker pool: at most `limit` tasks at once, each told its worker slot (so it can
// use that slot's connection); no new task starts after one failed or the signal aborted.

import {CancelledError} from '../errors.js'

/** Runs tasks with at most `limit` at a time, each on its own worker slot; stops starting new ones on error. */
export async function runPool<T>(items: T[], limit: number, work: (item: T, slot: number) => Promise<void>, signal?: AbortSignal): Promise<void> {
  let next = 0
  let failed: unknown
  const worker = async (slot: number) => {
    while (failed === undefined && next < items.length) {
      if (signal?.aborted) throw new CancelledError('cancelled')
      const item = items[next++]!
      try {
        await work(item, slot)
      } catch (err) {
        failed ??= err
        throw err
      }
    }
  }
  const results = await Promise.allSettled(Array.from({length: Math.min(limit, items.length)}, (_, i) => worker(i)))
  if (failed !== undefined) throw failed
  const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined
  if (rejected) throw rejected.reason
}

