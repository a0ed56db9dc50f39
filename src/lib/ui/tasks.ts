// listr2 task bars for a job on a terminal: one task per phase (its title carries a text bar with
// bytes, rows, rate and ETA), one subtask per item (table, part) as items appear. Driven from
// progress payloads rather than from task functions: each task waits for its phase or item to end.

import {Listr, type ListrTaskWrapper} from 'listr2'
import type {ItemProgress, PhaseProgress, ProgressPayload} from '../../direct/progress-schema.js'
import {applyPayload, emptyView, itemTitle, phaseTitle, type JobView} from './progress-format.js'

interface Deferred {
  promise: Promise<void>
  resolve(): void
  reject(err: Error): void
  settled: boolean
}

function deferred(): Deferred {
  let resolve!: () => void
  let reject!: (e: Error) => void
  const promise = new Promise<void>((res, rej) => {
    resolve = res
    reject = rej
  })
  promise.catch(() => {})
  const d: Deferred = {
    promise,
    settled: false,
    resolve: () => {
      if (!d.settled) {
        d.settled = true
        resolve()
      }
    },
    reject: (e) => {
      if (!d.settled) {
        d.settled = true
        reject(e)
      }
    },
  }
  return d
}

type AnyTask = ListrTaskWrapper<unknown, any, any>
type SubListr = Listr<unknown, any, any>

interface PhaseHandle {
  name: string
  started: Deferred
  ended: Deferred
  skipped: boolean
  task?: AnyTask
  sub?: SubListr
  items: Map<string, {ended: Deferred; task?: AnyTask; last: ItemProgress}>
}

export class ListrJobView {
  private readonly view: JobView = emptyView()
  private readonly phases = new Map<string, PhaseHandle>()
  private root?: Listr<unknown, 'default', 'simple'>
  private running?: Promise<unknown>

  constructor(
    private readonly title: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  private phaseHandle(name: string): PhaseHandle {
    let h = this.phases.get(name)
    if (h) return h
    h = {name, started: deferred(), ended: deferred(), skipped: false, items: new Map()}
    this.phases.set(name, h)
    const handle = h
    const task = {
      title: name,
      task: async (_ctx: unknown, t: AnyTask) => {
        handle.task = t
        await handle.started.promise
        if (handle.skipped) {
          t.skip(`${name} skipped`)
          return
        }
        this.retitle(handle)
        // A hidden (title-less) subtask keeps the phase open; item subtasks are added beside it.
        const sub = t.newListr([{task: () => handle.ended.promise}], {concurrent: true, exitOnError: false})
        handle.sub = sub
        for (const it of this.view.items.values()) if (it.phase === name && !handle.items.has(it.key)) this.addItem(handle, it)
        return sub
      },
    }
    if (!this.root) {
      this.root = new Listr<unknown, 'default', 'simple'>([task], {
        concurrent: false,
        exitOnError: true,
        registerSignalListeners: false,
        rendererOptions: {collapseSubtasks: false, showErrorMessage: true, timer: undefined},
      })
    } else {
      this.root.add(task)
    }
    return h
  }

  private retitle(h: PhaseHandle): void {
    const ph = this.view.phases.find((p) => p.name === h.name)
    if (h.task && ph) h.task.title = phaseTitle(ph, this.view.last, 24)
  }

  private addItem(h: PhaseHandle, it: ItemProgress): void {
    const entry = {ended: deferred(), last: it} as {ended: Deferred; task?: AnyTask; last: ItemProgress}
    h.items.set(it.key, entry)
    const listr = h.sub
    if (!listr) return
    listr.add({
      title: itemTitle(it),
      task: async (_c: unknown, t: AnyTask) => {
        entry.task = t
        t.title = itemTitle(entry.last)
        await entry.ended.promise
        t.title = itemTitle(entry.last)
        if (entry.last.state === 'failed') throw new Error(itemTitle(entry.last))
        if (entry.last.state === 'skipped') t.skip(itemTitle(entry.last))
      },
    })
    // Listr runs only the tasks it had when it started; run the new one ourselves (listr2 9).
    const added = listr.tasks.at(-1)
    const runTask = (listr as unknown as {runTask?: (t: unknown) => Promise<void>}).runTask
    if (added && typeof runTask === 'function') void runTask.call(listr, added).catch(() => {})
  }

  /** Starts rendering (on the first payload). */
  update(p: ProgressPayload): void {
    applyPayload(this.view, p)
    for (const ph of p.phases) this.phaseHandle(ph.name)
    if (!this.running && this.root) {
      this.stream.write(`${this.title}\n`)
      this.running = this.root.run().catch(() => {})
    }
    for (const ph of p.phases) this.syncPhase(ph)
    for (const it of p.items) {
      const h = this.phases.get(it.phase)
      if (!h) continue
      const known = h.items.get(it.key)
      if (!known && h.sub) this.addItem(h, it)
      const entry = h.items.get(it.key)
      if (!entry) continue
      entry.last = it
      if (entry.task) entry.task.title = itemTitle(it)
      if (it.state !== 'running') entry.ended.resolve()
    }
  }

  private syncPhase(ph: PhaseProgress): void {
    const h = this.phaseHandle(ph.name)
    if (ph.state === 'skipped') {
      h.skipped = true
      h.started.resolve()
      return
    }
    if (ph.state !== 'pending') h.started.resolve()
    this.retitle(h)
    if (ph.state === 'done') {
      for (const i of h.items.values()) i.ended.resolve()
      h.ended.resolve()
    } else if (ph.state === 'failed') {
      for (const i of h.items.values()) i.ended.resolve()
      h.ended.reject(new Error(`${ph.name} failed`))
    }
  }

  /** Ends the display: phases not reached are failed (failed/cancelled job) or left as they are. */
  async end(status: string, error?: string | null): Promise<void> {
    for (const h of this.phases.values()) {
      for (const i of h.items.values()) i.ended.resolve()
      if (status === 'complete') {
        h.started.resolve()
        h.ended.resolve()
      } else {
        const e = new Error(error ?? status)
        if (!h.started.settled) {
          h.skipped = true
          h.started.resolve()
        }
        h.ended.reject(e)
      }
    }
    await this.running
  }
}
