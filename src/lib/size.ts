// Sizes on the command line, as PostgreSQL writes them: 1024-based units, case-insensitive.

import {UsageError} from './errors.js'

const UNITS: Record<string, number> = {'': 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, t: 1024 ** 4, tb: 1024 ** 4}

/** "512MB", "1.5GB", "8192", "0" → bytes. */
export function parseSize(text: string, flag = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text)
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined
  if (!m || unit === undefined) throw new UsageError(`${flag}: invalid size "${text}": use a number with an optional unit kB, MB, GB or TB (1024-based)`)
  const bytes = Math.round(Number(m[1]) * unit)
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`${flag}: size "${text}" is too large`)
  return bytes
}
