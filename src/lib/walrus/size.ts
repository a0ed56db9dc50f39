// Sizes as PostgreSQL writes max_wal_size: "4096" (MB), "512MB", "4GB", "1TB", "65536kB". Pure.

import {UsageError} from '../errors.js'
import {INT32_MAX} from './rule.js'

const UNIT_MB: Record<string, number> = {kb: 1 / 1024, mb: 1, gb: 1024, tb: 1024 * 1024}

/** Parses a size into whole MB (2..2147483647). A bare number is MB, as for max_wal_size. */
export function parseSizeMb(text: string, what = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]b)?\s*$/i.exec(String(text ?? ''))
  if (!m) throw new UsageError(`${what}: "${text}" is not a size`, {hint: 'Use MB (a bare number), or a unit: 512MB, 4GB, 1TB.'})
  const mb = Number(m[1]) * UNIT_MB[(m[2] ?? 'mb').toLowerCase()]!
  if (!Number.isInteger(mb)) throw new UsageError(`${what}: "${text}" is not a whole number of MB`)
  if (mb < 2 || mb > INT32_MAX) throw new UsageError(`${what}: "${text}" must be from 2 MB to ${INT32_MAX} MB`)
  return mb
}

/** 4096 -> "4096 MB (4 GB)". */
export function describeMb(mb: number): string {
  if (mb >= 1024 && mb % 1024 === 0) return `${mb} MB (${mb / 1024} GB)`
  if (mb >= 1024) return `${mb} MB (${(mb / 1024).toFixed(1)} GB)`
  return `${mb} MB`
}
