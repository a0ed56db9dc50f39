// The progress protocol: one JSON document per update on the steep_repl_progress channel, and the
// latest one persisted in work_queue.progress. Checked with zod by the publisher (before sending)
// and by every watcher (on receipt). Pure: no I/O.
//
// A payload carries the job's overall state, the list of phases with their counters, and a bounded
// list of items (tables, parts) that are active or changed since the previous payload. It must stay
// under PostgreSQL's 8000-byte NOTIFY limit: encodeProgress trims items and long texts to fit.

import {z} from 'zod'

export const PROGRESS_CHANNEL = 'steep_repl_progress'
export const WORK_CHANNEL = 'steep_repl_work'
/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; keep a margin. */
export const MAX_PAYLOAD_BYTES = 7900
export const MAX_ITEMS = 32
export const MAX_PHASES = 24
const TEXT_MAX = 200

export const JOB_STATUSES = ['pending', 'running', 'complete', 'failed', 'cancelled'] as const
export type JobStatus = (typeof JOB_STATUSES)[number]
export const TERMINAL_STATUSES: readonly JobStatus[] = ['complete', 'failed', 'cancelled']
export const isTerminal = (s: string): boolean => (TERMINAL_STATUSES as readonly string[]).includes(s)

const count = z.number().int().nonnegative()
const optCount = count.nullable()
const rate = z.number().nonnegative().nullable()

export const STEP_STATES = ['pending', 'running', 'done', 'failed', 'skipped'] as const
export type StepState = (typeof STEP_STATES)[number]

export const phaseSchema = z.object({
  name: z.string().min(1).max(TEXT_MAX),
  state: z.enum(STEP_STATES),
  bytes: count,
  bytesTotal: optCount,
  rows: count,
  rowsTotal: optCount,
  itemsDone: count,
  itemsTotal: optCount,
  /** 0..100 when it can be known, else null. */
  percent: z.number().min(0).max(100).nullable(),
})
export type PhaseProgress = z.infer<typeof phaseSchema>

export const itemSchema = z.object({
  key: z.string().min(1).max(TEXT_MAX),
  phase: z.string().max(TEXT_MAX),
  label: z.string().max(TEXT_MAX),
  state: z.enum(STEP_STATES),
  bytes: count,
  bytesTotal: optCount,
  rows: count,
  rowsTotal: optCount,
  error: z.string().max(TEXT_MAX).nullable(),
})
export type ItemProgress = z.infer<typeof itemSchema>

export const progressSchema = z.object({
  v: z.literal(1),
  job: z.string().regex(/^\d+$/),
  op: z.string().min(1),
  /** Increases with every payload of one execution; a watcher ignores anything not newer. */
  seq: count,
  /** Which execution (attempt) of the job published it. */
  attempt: count,
  /** Publisher's clock, ms since the epoch. */
  at: z.number().nonnegative(),
  status: z.enum(JOB_STATUSES),
  phase: z.string().max(TEXT_MAX).nullable(),
  percent: z.number().min(0).max(100).nullable(),
  /** The item being worked on, for one-line displays. */
  item: z.string().max(TEXT_MAX).nullable(),
  itemsDone: count,
  itemsTotal: optCount,
  rows: count,
  rowsTotal: optCount,
  bytes: count,
  bytesTotal: optCount,
  /** Bytes per second over the last seconds, and rows per second. */
  rate,
  rowRate: rate,
  /** Seconds left, when a total is known and bytes or rows move. */
  eta: z.number().nonnegative().nullable(),
  elapsed: z.number().nonnegative(),
  message: z.string().max(TEXT_MAX).nullable(),
  error: z.string().max(1000).nullable(),
  phases: z.array(phaseSchema).max(MAX_PHASES),
  items: z.array(itemSchema).max(MAX_ITEMS),
  /** How many items were left out of `items` to fit the size limit. */
  itemsOmitted: count,
})
export type ProgressPayload = z.infer<typeof progressSchema>

const clip = (s: string | null, n = TEXT_MAX): string | null => (s === null ? null : s.length > n ? s.slice(0, n - 1) + '…' : s)

/** Bytes of the UTF-8 encoding (what NOTIFY counts). */
export const byteLength = (s: string): number => Buffer.byteLength(s, 'utf8')

/** Whether the UTF-8 encoding of s exceeds limit (without encoding short strings: ≤ 3 bytes a unit). */
const over = (s: string, limit: number): boolean => s.length * 3 > limit && byteLength(s) > limit

/**
 * Validates and serialises a payload, dropping items (changed-and-finished first, then the last
 * active ones) until it fits MAX_PAYLOAD_BYTES. Throws when the payload is not valid.
 */
export function encodeProgress(p: ProgressPayload, limit = MAX_PAYLOAD_BYTES): string {
  const fixed: ProgressPayload = {
    ...p,
    phase: clip(p.phase),
    item: clip(p.item),
    message: clip(p.message),
    error: clip(p.error, 1000),
    phases: p.phases.length ? p.phases.slice(-MAX_PHASES).map((ph) => ({...ph, name: clip(ph.name)!})) : [],
    items: [],
  }
  // Running items matter most; finished ones only tell the watcher that they ended.
  let items: ProgressPayload['items'] = []
  if (p.items.length) {
    const clipped = p.items.map((it) => ({...it, key: clip(it.key)!, label: clip(it.label)!, phase: clip(it.phase)!, error: clip(it.error)}))
    items = [...clipped.filter((i) => i.state === 'running'), ...clipped.filter((i) => i.state !== 'running')]
  }
  let omitted = fixed.itemsOmitted + Math.max(0, items.length - MAX_ITEMS)
  items = items.slice(0, MAX_ITEMS)
  fixed.items = items
  fixed.itemsOmitted = omitted
  let doc: ProgressPayload = progressSchema.parse(fixed)
  let text = JSON.stringify(doc)
  while (over(text, limit) && items.length > 0) {
    items = items.slice(0, -1)
    omitted++
    doc = {...doc, items, itemsOmitted: omitted}
    text = JSON.stringify(doc)
  }
  if (over(text, limit)) {
    // Only pathological phase lists get here: keep the current phase and its neighbours.
    const at = Math.max(0, doc.phases.findIndex((ph) => ph.state === 'running'))
    doc = {...doc, phases: doc.phases.slice(Math.max(0, at - 2), at + 3), message: clip(doc.message, 60), error: clip(doc.error, 200)}
    text = JSON.stringify(doc)
  }
  return text
}

export type DecodeResult = {ok: true; payload: ProgressPayload} | {ok: false; error: string}

/** Parses and checks a payload received on the channel or read from a row. */
export function decodeProgress(text: string | unknown): DecodeResult {
  let raw: unknown = text
  if (typeof text === 'string') {
    try {
      raw = JSON.parse(text)
    } catch {
      return {ok: false, error: 'not JSON'}
    }
  }
  const r = progressSchema.safeParse(raw)
  if (!r.success) {
    const i = r.error.issues[0]!
    return {ok: false, error: `${i.path.join('.') || '(root)'}: ${i.message}`}
  }
  return {ok: true, payload: r.data}
}

/**
 * The end of jobs, on steep_repl_progress: `ended:<id>,<id>,...` — one message per statement that
 * ends jobs (a worker records many finished jobs at once), instead of one payload per job. The final
 * progress document of each is on its row (work_queue.progress): a watcher of one of these jobs
 * reads the row. ENDED_MAX_IDS ids of at most 20 characters keep it under MAX_PAYLOAD_BYTES.
 */
export const ENDED_PREFIX = 'ended:'
export const ENDED_MAX_IDS = 300

/** The job ids of an `ended:` message; null for any other payload (or a malformed one). */
export function parseEndedMessage(payload: string | undefined): string[] | null {
  if (!payload?.startsWith(ENDED_PREFIX)) return null
  const ids = payload.slice(ENDED_PREFIX.length).split(',')
  return ids.length > 0 && ids.every((id) => /^\d{1,20}$/.test(id)) ? ids : null
}

/** Whether an `ended:` message names this job (without splitting the whole list). */
export function endedMessageNames(payload: string, id: string): boolean {
  if (!payload.startsWith(ENDED_PREFIX)) return false
  const list = `,${payload.slice(ENDED_PREFIX.length)},`
  return list.includes(`,${id},`)
}

/** Messages on steep_repl_work: `job:<id>:<operation>` wakes workers, `cancel:<id>` asks an executor to stop. */
export type WorkMessage = {kind: 'job'; id: string; operation: string} | {kind: 'cancel'; id: string} | {kind: 'other'}

export function parseWorkMessage(payload: string | undefined): WorkMessage {
  const m = /^job:(\d+):([a-z][a-z0-9_]*)$/.exec(payload ?? '')
  if (m) return {kind: 'job', id: m[1]!, operation: m[2]!}
  const c = /^cancel:(\d+)$/.exec(payload ?? '')
  if (c) return {kind: 'cancel', id: c[1]!}
  return {kind: 'other'}
}
