// Pure decisions of job commands: how to run (direct, follow a worker, only queue), durations given
// on the command line, and the exit code a finished job maps to.

import {ExitCode, UsageError} from '../lib/errors.js'

export type RunPlan = {run: 'direct'; why: 'flag' | 'no-worker'} | {run: 'follow'} | {run: 'queue'; workers: number}

/**
 * --direct runs here; --no-wait only queues; otherwise follow a live worker that takes the
 * operation, and run here when there is none (saying so).
 */
export function decideRun(o: {direct: boolean; noWait: boolean; liveWorkers: number}): RunPlan {
  if (o.direct && o.noWait) throw new UsageError('--direct and --no-wait do not go together: a direct run needs this process until the job ends')
  if (o.noWait) return {run: 'queue', workers: o.liveWorkers}
  if (o.direct) return {run: 'direct', why: 'flag'}
  return o.liveWorkers > 0 ? {run: 'follow'} : {run: 'direct', why: 'no-worker'}
}

const UNITS: Record<string, number> = {ms: 0.001, s: 1, sec: 1, m: 60, min: 60, h: 3600, d: 86400}

/** "90", "90s", "15m", "2h", "1h30m" → seconds. */
export function parseDuration(text: string, flag = '--timeout'): number {
  const t = text.trim().toLowerCase()
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t)
  const re = /(\d+(?:\.\d+)?)(ms|sec|min|s|m|h|d)/gy
  let total = 0
  let m: RegExpExecArray | null
  let end = 0
  while ((m = re.exec(t))) {
    total += Number(m[1]) * UNITS[m[2]!]!
    end = re.lastIndex
  }
  if (end !== t.length || end === 0) throw new UsageError(`${flag}: "${text}" is not a duration`, {hint: 'Give seconds (90) or a duration such as 90s, 15m, 2h, 1h30m.'})
  return total
}

/** The exit code of a command that waited for a job that ended with this status. */
export function exitCodeForStatus(status: string): number {
  if (status === 'complete') return ExitCode.ok
  if (status === 'cancelled') return ExitCode.cancelled
  return ExitCode.error
}
