// The progress state of one job execution, as its handler reports it (phases, items, bytes, rows),
// turned into protocol payloads: overall percent from weighted phases, rates over a sliding window,
// ETA, and the throttle that decides when the next payload is due. Pure: the clock is injected.

import type {ItemProgress, JobStatus, PhaseProgress, ProgressPayload, StepState} from './progress-schema.js'

export interface PhaseSpec {
  name: string
  /** Share of the whole job (default 1); e.g. data 80, indexes 15, finish 5. */
  weight?: number
}

export interface Totals {
  bytes?: number | null
  rows?: number | null
  items?: number | null
}

export interface Amounts {
  bytes?: number
  rows?: number
}

export interface ThrottleOptions {
  /** No two payloads closer than this (ms): at most 1000/minIntervalMs per second. */
  minIntervalMs: number
  /** While nothing changes, a payload at least this often (ms) so rates decay visibly. */
  idleIntervalMs: number
  /** Window of the rate (ms). */
  rateWindowMs: number
  /**
   * The first payload waits this long after the start (ms): a job that ends sooner publishes only
   * its final state, so short jobs cost one statement less.
   */
  firstDelayMs: number
}

export const DEFAULT_THROTTLE: ThrottleOptions = {minIntervalMs: 200, idleIntervalMs: 2000, rateWindowMs: 5000, firstDelayMs: 100}

interface PhaseState extends PhaseProgress {
  weight: number
}

interface ItemState extends ItemProgress {
  dirty: boolean
}

const nonNeg = (n: number | undefined | null): number => (n && n > 0 && Number.isFinite(n) ? Math.floor(n) : 0)
const optTotal = (n: number | undefined | null): number | null => (n === undefined || n === null || !Number.isFinite(n) || n < 0 ? null : Math.floor(n))

export class ProgressTracker {
  private readonly phases: PhaseState[] = []
  private readonly items = new Map<string, ItemState>()
  private current: PhaseState | undefined
  private itemsDoneTotal = 0
  private seq = 0
  private lastPublishAt = -Infinity
  private urgent = true
  private dirty = true
  private msg: string | null = null
  private currentItem: string | null = null
  private readonly samples: Array<{t: number; bytes: number; rows: number}> = []
  private readonly startedAt: number

  constructor(
    readonly job: string,
    readonly op: string,
    readonly attempt: number,
    private readonly now: () => number = Date.now,
    readonly throttle: ThrottleOptions = DEFAULT_THROTTLE,
  ) {
    this.startedAt = now()
  }

  /** Declares the phases up front so watchers can show what is still to come. Unknown later phases are appended. */
  plan(phases: Array<string | PhaseSpec>): void {
    for (const p of phases) {
      const spec = typeof p === 'string' ? {name: p} : p
      if (!this.phases.some((x) => x.name === spec.name)) this.phases.push(this.newPhase(spec.name, spec.weight))
    }
    this.touch(true)
  }

  private newPhase(name: string, weight = 1): PhaseState {
    return {name, weight: weight > 0 ? weight : 0, state: 'pending', bytes: 0, bytesTotal: null, rows: 0, rowsTotal: null, itemsDone: 0, itemsTotal: null, percent: null}
  }

  /** Starts a phase (the running one, if any, ends as done). */
  startPhase(name: string, totals: Totals = {}): void {
    if (this.current && this.current.name !== name && this.current.state === 'running') this.endPhase('done')
    let ph = this.phases.find((p) => p.name === name)
    if (!ph) {
      ph = this.newPhase(name)
      this.phases.push(ph)
    }
    ph.state = 'running'
    this.current = ph
    this.currentItem = null
    this.setTotals(totals)
    this.touch(true)
  }

  /** Ends the running phase. */
  endPhase(state: Extract<StepState, 'done' | 'failed' | 'skipped'> = 'done'): void {
    const ph = this.current
    if (!ph) return
    ph.state = state
    if (state === 'done') ph.percent = 100
    for (const it of this.items.values()) {
      if (it.phase === ph.name && it.state === 'running') this.closeItem(it, state === 'done' ? 'done' : state, null)
    }
    this.current = undefined
    this.currentItem = null
    this.touch(true)
  }

  /** Marks a planned phase as skipped (not run at all). */
  skipPhase(name: string): void {
    const ph = this.phases.find((p) => p.name === name)
    if (ph && ph.state === 'pending') {
      ph.state = 'skipped'
      this.touch(true)
    }
  }

  setTotals(t: Totals): void {
    const ph = this.ensurePhase()
    if (t.bytes !== undefined) ph.bytesTotal = optTotal(t.bytes)
    if (t.rows !== undefined) ph.rowsTotal = optTotal(t.rows)
    if (t.items !== undefined) ph.itemsTotal = optTotal(t.items)
    this.touch(false)
  }

  private ensurePhase(): PhaseState {
    if (!this.current) this.startPhase(this.phases.find((p) => p.state === 'pending')?.name ?? 'run')
    return this.current!
  }

  startItem(key: string, opts: {label?: string; bytesTotal?: number | null; rowsTotal?: number | null} = {}): void {
    const ph = this.ensurePhase()
    const it: ItemState = {
      key,
      phase: ph.name,
      label: opts.label ?? key,
      state: 'running',
      bytes: 0,
      bytesTotal: optTotal(opts.bytesTotal),
      rows: 0,
      rowsTotal: optTotal(opts.rowsTotal),
      error: null,
      dirty: true,
    }
    this.items.set(key, it)
    this.currentItem = it.label
    this.touch(false)
  }

  /** Adds moved bytes/rows to the running phase and, when given, to one item. */
  advance(a: Amounts, itemKey?: string): void {
    const ph = this.ensurePhase()
    const b = nonNeg(a.bytes)
    const r = nonNeg(a.rows)
    ph.bytes += b
    ph.rows += r
    if (itemKey !== undefined) {
      const it = this.items.get(itemKey)
      if (it) {
        it.bytes += b
        it.rows += r
        it.dirty = true
        this.currentItem = it.label
      }
    }
    if (b || r) this.touch(false)
  }

  finishItem(key: string, state: Extract<StepState, 'done' | 'failed' | 'skipped'> = 'done', error: string | null = null): void {
    const it = this.items.get(key)
    if (!it || it.state !== 'running') return
    this.closeItem(it, state, error)
    this.touch(false)
  }

  private closeItem(it: ItemState, state: StepState, error: string | null): void {
    it.state = state
    it.error = error
    it.dirty = true
    const ph = this.phases.find((p) => p.name === it.phase)
    if (ph) ph.itemsDone++
    this.itemsDoneTotal++
  }

  message(text: string | null): void {
    this.msg = text
    this.touch(false)
  }

  private touch(urgent: boolean): void {
    this.dirty = true
    if (urgent) this.urgent = true
  }

  /** Milliseconds until the next payload is due; null when nothing needs sending. */
  dueIn(at = this.now()): number | null {
    if (this.seq === 0) return Math.max(0, this.startedAt + this.throttle.firstDelayMs - at)
    const since = at - this.lastPublishAt
    if (this.urgent) return 0
    if (!this.dirty) return Math.max(0, this.throttle.idleIntervalMs - since)
    return Math.max(0, this.throttle.minIntervalMs - since)
  }

  private sample(t: number, bytes: number, rows: number): {rate: number | null; rowRate: number | null} {
    this.samples.push({t, bytes, rows})
    while (this.samples.length > 2 && this.samples[1]!.t <= t - this.throttle.rateWindowMs) this.samples.shift()
    const first = this.samples[0]!
    const dt = (t - first.t) / 1000
    if (dt < 0.25) return {rate: null, rowRate: null}
    return {rate: (bytes - first.bytes) / dt, rowRate: (rows - first.rows) / dt}
  }

  /** How many payloads were built so far (0: nobody has seen this execution's progress yet). */
  get published(): number {
    return this.seq
  }

  /**
   * Builds the next payload (and records that it was published). `slim`: without the phase and item
   * lists (the totals, percent, status and error stay) — the final document of a job that ended
   * before its first payload was due, where nobody saw the phases and the row only needs the outcome.
   */
  snapshot(status: JobStatus = 'running', extra: {error?: string | null; slim?: boolean} = {}): ProgressPayload {
    const t = this.now()
    const bytes = this.phases.reduce((s, p) => s + p.bytes, 0)
    const rows = this.phases.reduce((s, p) => s + p.rows, 0)
    const {rate, rowRate} = this.sample(t, bytes, rows)
    for (const ph of this.phases) ph.percent = phasePercent(ph)
    const sumTotal = (k: 'bytesTotal' | 'rowsTotal' | 'itemsTotal'): number | null =>
      this.phases.some((p) => p[k] !== null) ? this.phases.reduce((s, p) => s + (p[k] ?? 0), 0) : null
    let percent = overallPercent(this.phases)
    if (status === 'complete') percent = 100
    const ph = this.current
    let eta: number | null = null
    if (ph && status === 'running') {
      if (ph.bytesTotal !== null && rate && rate > 0) eta = Math.max(0, (ph.bytesTotal - ph.bytes) / rate)
      else if (ph.rowsTotal !== null && rowRate && rowRate > 0) eta = Math.max(0, (ph.rowsTotal - ph.rows) / rowRate)
    }
    const items: ItemProgress[] = []
    if (extra.slim) this.items.clear()
    for (const it of this.items.values()) {
      if (it.state === 'running' || it.dirty) {
        const {dirty: _dirty, ...plain} = it
        items.push(plain)
      }
      it.dirty = false
      if (it.state !== 'running') this.items.delete(it.key)
    }
    this.seq++
    this.lastPublishAt = t
    this.urgent = false
    this.dirty = false
    return {
      v: 1,
      job: this.job,
      op: this.op,
      seq: this.seq,
      attempt: this.attempt,
      at: t,
      status,
      phase: ph?.name ?? null,
      percent: percent === null ? null : round(percent, 1),
      item: ph ? this.currentItem : null,
      itemsDone: this.itemsDoneTotal,
      itemsTotal: sumTotal('itemsTotal'),
      rows,
      rowsTotal: sumTotal('rowsTotal'),
      bytes,
      bytesTotal: sumTotal('bytesTotal'),
      rate: rate === null ? null : round(Math.max(0, rate), 0),
      rowRate: rowRate === null ? null : round(Math.max(0, rowRate), 0),
      eta: eta === null ? null : round(eta, 0),
      // Never negative, even if the wall clock was set back meanwhile (the schema refuses it).
      elapsed: round(Math.max(0, t - this.startedAt) / 1000, 1),
      message: this.msg,
      error: extra.error ?? null,
      phases: extra.slim ? [] : this.phases.map(({weight: _w, ...p}) => ({...p})),
      items,
      itemsOmitted: 0,
    }
  }
}

const round = (n: number, digits: number): number => {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

function fraction(done: number, total: number | null): number | null {
  if (total === null) return null
  if (total === 0) return 1
  return Math.min(1, done / total)
}

/** 0..100 for one phase, from bytes, else rows, else items; null when no total is known. */
export function phasePercent(ph: Pick<PhaseProgress, 'state' | 'bytes' | 'bytesTotal' | 'rows' | 'rowsTotal' | 'itemsDone' | 'itemsTotal'>): number | null {
  if (ph.state === 'done' || ph.state === 'skipped') return 100
  if (ph.state === 'pending') return 0
  const f = fraction(ph.bytes, ph.bytesTotal) ?? fraction(ph.rows, ph.rowsTotal) ?? fraction(ph.itemsDone, ph.itemsTotal)
  return f === null ? null : round(f * 100, 1)
}

/** Weighted mean of the phases' fractions; a running phase without totals counts as 0. */
export function overallPercent(phases: Array<Pick<PhaseProgress, 'state' | 'bytes' | 'bytesTotal' | 'rows' | 'rowsTotal' | 'itemsDone' | 'itemsTotal'> & {weight: number}>): number | null {
  const total = phases.reduce((s, p) => s + p.weight, 0)
  if (phases.length === 0 || total <= 0) return null
  let sum = 0
  for (const p of phases) sum += p.weight * ((phasePercent(p) ?? 0) / 100)
  return Math.min(100, (sum / total) * 100)
}
