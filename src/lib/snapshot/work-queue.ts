// A bounded pool over a queue that grows while it runs: finishing one item may enqueue others (the
// last part of a table enqueues that table's index builds, an index build its ANALYZE). Unlike
// runPool, an idle worker waits while others are still busy, because they may add work; the pool
// ends when the queue is empty and nothing is in flight. Each item is told its worker slot (so it
// uses that slot's connection); after a failure or an abort no new item starts. An optional `pick`
// chooses which queued item an idle worker takes, seeing what the others are running.

import {CancelledError} from '../errors.js'

export class WorkQueue<T> {
  private readonly items: T[] = []
  private wake: (() => void) | undefined
  private wakeUp = new Promise<void>((r) => (this.wake = r))

  /**
   * @param pick index of the queued item an idle worker takes next, given the items the other
   *   workers are running (default: the first).
   */
  constructor(
    initial: Iterable<T> = [],
    private readonly pick?: (queued: readonly T[], running: readonly T[]) => number,
  ) {
    this.items.push(...initial)
  }

  push(...items: T[]): void {
    this.items.push(...items)
    this.signal()
  }

  get size(): number {
    return this.items.length
  }

  private signal(): void {
    const wake = this.wake
    this.wakeUp = new Promise<void>((r) => (this.wake = r))
    wake?.()
  }

  async run(limit: number, work: (item: T, slot: number) => Promise<void>, abort?: AbortSignal): Promise<void> {
    let busy = 0
    const running = new Set<T>()
    let failed: {err: unknown} | undefined
    const worker = async (slot: number): Promise<void> => {
      for (;;) {
        if (failed) return
        if (abort?.aborted) throw new CancelledError('cancelled')
        const at = this.items.length > 1 && this.pick ? this.pick(this.items, [...running]) : 0
        const item = this.items.splice(at >= 0 && at < this.items.length ? at : 0, 1)[0]
        if (item === undefined) {
          if (busy === 0) {
            this.signal() // let the other idle workers see the end too
            return
          }
          await this.wakeUp
          continue
        }
        busy++
        running.add(item)
        try {
          await work(item, slot)
        } catch (err) {
          failed ??= {err}
          this.signal()
          throw err
        } finally {
          busy--
          running.delete(item)
          this.signal()
        }
      }
    }
    const results = await Promise.allSettled(Array.from({length: Math.max(1, limit)}, (_, i) => worker(i)))
    if (failed) throw failed.err
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined
    if (rejected) throw rejected.reason
  }
}
