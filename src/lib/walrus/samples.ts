// The readings file shared by `walrus watch --record FILE` (writes) and `walrus simulate --samples
// FILE|-` (reads): one JSON object per line,
//
//   {"time":"2026-01-01T00:05:00.000Z","requested":14,"stats_reset":"2026-01-01T00:00:00Z","max_wal_size_mb":1024,"checkpoint_timeout_sec":300}
//
// time: ISO-8601 text or a number of seconds since the epoch; requested: the cumulative
// requested-checkpoint counter (num_requested on 17+, checkpoints_req before); stats_reset: the
// statistics' reset time or null; max_wal_size_mb: the setting at that time (optional after the
// first line: the simulated value carries on); checkpoint_timeout_sec: optional. A CSV file with a
// header line naming those columns is read too. Blank lines and lines starting with # are skipped.
// Pure: text in, values out.

import {UsageError} from '../errors.js'
import {INT32_MAX} from './rule.js'

export interface Sample {
  /** ms since the epoch */
  at: number
  requested: number | null
  statsReset: string | null
  maxWalSizeMb: number | null
  checkpointTimeoutSec: number | null
}

export const SAMPLE_FIELDS = ['time', 'requested', 'stats_reset', 'max_wal_size_mb', 'checkpoint_timeout_sec'] as const

export function formatSample(s: Sample): string {
  return JSON.stringify({
    time: new Date(s.at).toISOString(),
    requested: s.requested,
    stats_reset: s.statsReset,
    max_wal_size_mb: s.maxWalSizeMb,
    checkpoint_timeout_sec: s.checkpointTimeoutSec,
  })
}

function parseTime(v: unknown, where: string): number {
  if (typeof v === 'number' && Number.isFinite(v)) return Math.round(v * 1000)
  if (typeof v === 'string' && v.trim() !== '') {
    if (/^\d+(\.\d+)?$/.test(v.trim())) return Math.round(Number(v) * 1000)
    const t = Date.parse(v)
    if (!Number.isNaN(t)) return t
  }
  throw new UsageError(`${where}: "time" must be ISO-8601 text or seconds since the epoch, got ${JSON.stringify(v)}`)
}

function parseInteger(v: unknown, name: string, where: string, opts: {min: number; max: number; optional: boolean}): number | null {
  if (v === undefined || v === null || v === '') {
    if (opts.optional) return null
    throw new UsageError(`${where}: "${name}" is missing`)
  }
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : Number.NaN
  if (!Number.isSafeInteger(n) || n < opts.min || n > opts.max) {
    throw new UsageError(`${where}: "${name}" must be an integer from ${opts.min} to ${opts.max}, got ${JSON.stringify(v)}`)
  }
  return n
}

function toSample(o: Record<string, unknown>, where: string): Sample {
  const unknown = Object.keys(o).filter((k) => !(SAMPLE_FIELDS as readonly string[]).includes(k))
  if (unknown.length) throw new UsageError(`${where}: unknown field(s) ${unknown.map((k) => `"${k}"`).join(', ')}; expected ${SAMPLE_FIELDS.join(', ')}`)
  let statsReset: string | null = null
  if (o.stats_reset !== undefined && o.stats_reset !== null && o.stats_reset !== '') {
    if (typeof o.stats_reset !== 'string' || Number.isNaN(Date.parse(o.stats_reset))) {
      throw new UsageError(`${where}: "stats_reset" must be ISO-8601 text or null, got ${JSON.stringify(o.stats_reset)}`)
    }
    statsReset = o.stats_reset
  }
  return {
    at: parseTime(o.time, where),
    // null requested = statistics unavailable at that reading (the rule skips it)
    requested: o.requested === null ? null : parseInteger(o.requested, 'requested', where, {min: 0, max: Number.MAX_SAFE_INTEGER, optional: false}),
    statsReset,
    maxWalSizeMb: parseInteger(o.max_wal_size_mb, 'max_wal_size_mb', where, {min: 2, max: INT32_MAX, optional: true}),
    checkpointTimeoutSec: parseInteger(o.checkpoint_timeout_sec, 'checkpoint_timeout_sec', where, {min: 1, max: 86_400, optional: true}),
  }
}

function splitCsvLine(line: string): string[] {
  const out: string[] = []
  let cur = ''
  let quoted = false
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"'
        i++
      } else if (ch === '"') quoted = false
      else cur += ch
    } else if (ch === '"') quoted = true
    else if (ch === ',') {
      out.push(cur)
      cur = ''
    } else cur += ch
  }
  out.push(cur)
  return out.map((c) => c.trim())
}

/** Parses a readings file (JSON lines, a JSON array, or CSV with a header). `name` is used in messages. */
export function parseSamples(text: string, name = 'samples'): Sample[] {
  const trimmed = text.trim()
  if (trimmed === '') throw new UsageError(`${name}: no readings (the file is empty)`)
  const samples: Sample[] = []
  if (trimmed.startsWith('[')) {
    let arr: unknown
    try {
      arr = JSON.parse(trimmed)
    } catch (err) {
      throw new UsageError(`${name}: not valid JSON: ${(err as Error).message}`)
    }
    if (!Array.isArray(arr)) throw new UsageError(`${name}: expected a JSON array of readings`)
    arr.forEach((o, i) => {
      if (!o || typeof o !== 'object' || Array.isArray(o)) throw new UsageError(`${name}: item ${i + 1} is not an object`)
      samples.push(toSample(o as Record<string, unknown>, `${name} item ${i + 1}`))
    })
  } else {
    const lines = text.split(/\r?\n/)
    let header: string[] | null = null
    lines.forEach((raw, i) => {
      const line = raw.trim()
      const where = `${name} line ${i + 1}`
      if (line === '' || line.startsWith('#')) return
      if (line.startsWith('{')) {
        let o: unknown
        try {
          o = JSON.parse(line)
        } catch (err) {
          throw new UsageError(`${where}: not valid JSON: ${(err as Error).message}`)
        }
        samples.push(toSample(o as Record<string, unknown>, where))
        return
      }
      if (!header) {
        header = splitCsvLine(line)
        if (!header.includes('time') || !header.includes('requested')) {
          throw new UsageError(`${where}: expected a JSON object per line, or a CSV header naming ${SAMPLE_FIELDS.join(', ')}`)
        }
        return
      }
      const cells = splitCsvLine(line)
      if (cells.length !== header.length) throw new UsageError(`${where}: ${cells.length} columns, the header has ${header.length}`)
      const o: Record<string, unknown> = {}
      header.forEach((h, j) => (o[h] = cells[j] === '' || cells[j] === 'null' ? null : cells[j]))
      samples.push(toSample(o, where))
    })
  }
  if (samples.length === 0) throw new UsageError(`${name}: no readings`)
  if (samples[0]!.maxWalSizeMb === null) throw new UsageError(`${name}: the first reading must give max_wal_size_mb`)
  for (let i = 1; i < samples.length; i++) {
    if (samples[i]!.at < samples[i - 1]!.at) throw new UsageError(`${name}: reading ${i + 1} is earlier than reading ${i} (readings must be in time order)`)
  }
  return samples
}
