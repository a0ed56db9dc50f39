// Progress display without I/O: the job view model fed by protocol payloads (phases and every item
// seen so far), text bars, rates, ETAs, and the plain lines written off a terminal — one line per
// meaningful change (a phase starts or ends, an item ends, every 10 % of the job, a new message).

import type {ItemProgress, PhaseProgress, ProgressPayload} from '../../direct/progress-schema.js'
import {formatBytes} from './output.js'

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return ''
  const s = Math.round(seconds)
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
}

export function formatCount(n: number): string {
  if (n < 1000) return String(n)
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`
  if (n < 1_000_000_000) return `${(n / 1_000_000).toFixed(n < 10_000_000 ? 1 : 0)}M`
  return `${(n / 1_000_000_000).toFixed(1)}G`
}

/** `[########------------]` for a fraction 0..1; a moving-free empty bar when unknown. */
export function textBar(fraction: number | null, width = 20): string {
  if (fraction === null || !Number.isFinite(fraction)) return `[${'·'.repeat(width)}]`
  const f = Math.min(1, Math.max(0, fraction))
  const full = Math.round(f * width)
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}]`
}

interface Counters {
  bytes: number
  bytesTotal: number | null
  rows: number
  rowsTotal: number | null
}

/** "1.2 GB / 2.6 GB, 1.2M rows" — what moved, against the totals when known. */
export function amounts(c: Counters): string {
  const parts: string[] = []
  if (c.bytes > 0 || c.bytesTotal) parts.push(c.bytesTotal ? `${formatBytes(c.bytes)} / ${formatBytes(c.bytesTotal)}` : formatBytes(c.bytes))
  if (c.rows > 0 || c.rowsTotal) parts.push(c.rowsTotal ? `${formatCount(c.rows)} / ${formatCount(c.rowsTotal)} rows` : `${formatCount(c.rows)} rows`)
  return parts.join(', ')
}

export function rateText(p: Pick<ProgressPayload, 'rate' | 'rowRate' | 'eta'>): string {
  const parts: string[] = []
  if (p.rate) parts.push(`${formatBytes(p.rate)}/s`)
  else if (p.rowRate) parts.push(`${formatCount(p.rowRate)} rows/s`)
  if (p.eta !== null && p.eta !== undefined) parts.push(`ETA ${formatDuration(p.eta)}`)
  return parts.join(', ')
}

const pct = (n: number | null): string => (n === null ? '' : `${n.toFixed(n < 10 && n > 0 ? 1 : 0)}%`)

/** The title of a phase task: name, bar, percent, amounts, and (running) rate and ETA. */
export function phaseTitle(ph: PhaseProgress, p: ProgressPayload | undefined, width = 20): string {
  const parts = [ph.name]
  if (ph.state === 'running') {
    parts.push(textBar(ph.percent === null ? null : ph.percent / 100, width))
    if (ph.percent !== null) parts.push(pct(ph.percent))
  }
  const a = amounts(ph)
  if (a) parts.push(a)
  if (ph.itemsTotal) parts.push(`${ph.itemsDone}/${ph.itemsTotal} items`)
  if (ph.state === 'running' && p && p.phase === ph.name) {
    const r = rateText(p)
    if (r) parts.push(r)
  }
  return parts.join('  ')
}

export function itemTitle(it: ItemProgress, width = 12): string {
  const parts = [it.label]
  if (it.state === 'running' && (it.bytesTotal || it.rowsTotal)) {
    const f = it.bytesTotal ? it.bytes / it.bytesTotal : it.rows / (it.rowsTotal || 1)
    parts.push(textBar(f, width), pct(Math.min(100, f * 100)))
  }
  const a = amounts(it)
  if (a) parts.push(a)
  if (it.error) parts.push(it.error)
  return parts.join('  ')
}

/** Everything a display knows about one job: phases in order, every item seen, per phase. */
export interface JobView {
  last?: ProgressPayload
  phases: PhaseProgress[]
  items: Map<string, ItemProgress>
}

export const emptyView = (): JobView => ({phases: [], items: new Map()})

/** Folds a payload into the view; returns what changed (phases and items whose state moved). */
export function applyPayload(view: JobView, p: ProgressPayload): {phases: Array<{before: PhaseProgress | undefined; after: PhaseProgress}>; items: Array<{before: ItemProgress | undefined; after: ItemProgress}>} {
  const phases = p.phases.map((after) => ({before: view.phases.find((x) => x.name === after.name), after}))
  const items = p.items.map((after) => ({before: view.items.get(after.key), after}))
  view.phases = p.phases
  for (const it of p.items) view.items.set(it.key, it)
  // A new attempt starts over.
  if (view.last && p.attempt > view.last.attempt) view.items = new Map(p.items.map((i) => [i.key, i]))
  view.last = p
  return {phases: phases.filter((c) => c.before?.state !== c.after.state), items: items.filter((c) => c.before?.state !== c.after.state)}
}

export interface PlainState {
  view: JobView
  bucket: number
  message: string | null
  status?: string
  attempt?: number
}

export const plainState = (): PlainState => ({view: emptyView(), bucket: -1, message: null})

/** The lines a non-interactive display prints for a payload (possibly none). */
export function plainLines(s: PlainState, p: ProgressPayload): string[] {
  const prefix = `job ${p.job} ${p.op}:`
  const out: string[] = []
  if (s.attempt !== undefined && p.attempt > s.attempt) out.push(`${prefix} attempt ${p.attempt} started`)
  s.attempt = p.attempt
  const changes = applyPayload(s.view, p)
  for (const c of changes.phases) if (c.after.state === 'running') out.push(`${prefix} ${c.after.name} started`)
  for (const c of changes.items) {
    if (c.after.state === 'done') out.push(`${prefix}   ${c.after.label} done${amountsSuffix(c.after)}`)
    else if (c.after.state === 'failed') out.push(`${prefix}   ${c.after.label} failed${c.after.error ? `: ${c.after.error}` : ''}`)
    else if (c.after.state === 'skipped') out.push(`${prefix}   ${c.after.label} skipped`)
  }
  for (const c of changes.phases) {
    if (c.after.state === 'done' && c.before) out.push(`${prefix} ${c.after.name} done${amountsSuffix(c.after)}`)
    else if (c.after.state === 'failed') out.push(`${prefix} ${c.after.name} failed`)
    else if (c.after.state === 'skipped') out.push(`${prefix} ${c.after.name} skipped`)
  }
  if (p.message && p.message !== s.message) out.push(`${prefix} ${p.message}`)
  s.message = p.message
  if (p.status === 'running' && p.percent !== null) {
    const bucket = Math.floor(p.percent / 10)
    if (bucket > s.bucket && bucket < 10) {
      s.bucket = bucket
      if (bucket > 0) {
        const extra = [amounts(p), rateText(p)].filter(Boolean).join(', ')
        out.push(`${prefix} ${bucket * 10}%${p.phase ? ` (${p.phase})` : ''}${extra ? ` ${extra}` : ''}`)
      }
    }
  }
  if (p.status !== s.status && p.status !== 'running') {
    if (p.status === 'complete') out.push(`${prefix} complete in ${formatDuration(p.elapsed)}${amountsSuffix(p)}`)
    else if (p.status === 'pending') out.push(`${prefix} back in the queue${p.error ? `: ${p.error}` : ''}`)
    else out.push(`${prefix} ${p.status}${p.error ? `: ${p.error}` : ''}`)
  }
  s.status = p.status
  return out
}

function amountsSuffix(c: Counters): string {
  const a = amounts(c)
  return a ? ` (${a})` : ''
}

/** One line summing up a job's latest payload (jobs show, jobs list). */
export function summaryLine(p: ProgressPayload): string {
  const parts: string[] = []
  if (p.percent !== null) parts.push(pct(p.percent))
  if (p.phase) parts.push(p.phase)
  if (p.item) parts.push(p.item)
  const a = amounts(p)
  if (a) parts.push(a)
  const r = rateText(p)
  if (r && p.status === 'running') parts.push(r)
  return parts.join('  ')
}
