// Durations as users write them on the command line: "30s", "5min", "1h30m", "250ms", "2d", or a
// bare number of seconds (PostgreSQL's convention for checkpoint_timeout). Pure, no I/O.

import {UsageError} from './errors.js'

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  sec: 1000,
  secs: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  mins: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
}

/**
 * Parses a duration into milliseconds. Accepts one or more number+unit parts ("1h30m"), decimals
 * ("1.5s"), spaces between parts, and a bare number meaning seconds. Throws UsageError otherwise.
 * `what` names the flag in the message (e.g. "--interval").
 */
export function parseDuration(text: string, what = 'duration'): number {
  const input = String(text ?? '').trim().toLowerCase()
  const bad = () =>
    new UsageError(`${what}: "${text}" is not a duration`, {hint: 'Use a number with a unit, e.g. 30s, 5min, 1h30m, 250ms (a bare number is seconds).'})
  if (input === '') throw bad()
  if (/^\d+(\.\d+)?$/.test(input)) return checked(Number(input) * 1000, text, what)
  const re = /(\d+(?:\.\d+)?)\s*([a-z]+)\s*/gy
  let total = 0
  let pos = 0
  let m: RegExpExecArray | null
  while ((m = re.exec(input)) !== null) {
    const unit = UNIT_MS[m[2]!]
    if (unit === undefined) throw bad()
    total += Number(m[1]) * unit
    pos = re.lastIndex
  }
  if (pos !== input.length) throw bad()
  return checked(total, text, what)
}

function checked(ms: number, text: string, what: string): number {
  if (!Number.isFinite(ms) || ms > Number.MAX_SAFE_INTEGER) throw new UsageError(`${what}: "${text}" is too long`)
  return Math.round(ms)
}

/** The shortest readable form: 300000 -> "5min", 90000 -> "1min30s", 1500 -> "1.5s". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms)
  if (ms < 1000) return `${Math.round(ms)}ms`
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(1))}s`
  const parts: string[] = []
  let rest = Math.round(ms / 1000)
  for (const [unit, sec] of [
    ['d', 86_400],
    ['h', 3600],
    ['min', 60],
    ['s', 1],
  ] as const) {
    if (rest >= sec) {
      parts.push(`${Math.floor(rest / sec)}${unit}`)
      rest %= sec
    }
  }
  return parts.join('')
}
