// What the demo prints, pure: the command a user would type for each step, the step headers, the
// walrus tune lines and the final summary.

import type {TuneResult} from '../walrus/tune.js'

/** Quotes one argument for a POSIX shell when it needs it. */
export function shellQuote(arg: string): string {
  if (arg !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg
  return `'${arg.replace(/'/g, `'\\''`)}'`
}

/** `$ steep-repl a b c`, arguments quoted for a shell. */
export function commandLine(bin: string, args: string[]): string {
  return `$ ${[bin, ...args].map(shellQuote).join(' ')}`
}

/** A password-free URL of a loopback server (the password comes from PGPASSFILE). */
export function demoUrl(port: number, user = 'postgres', dbname = 'postgres'): string {
  return `postgresql://${encodeURIComponent(user)}@127.0.0.1:${port}/${encodeURIComponent(dbname)}`
}

export function stepHeader(n: number, total: number, title: string): string {
  const head = `── ${n}/${total} ${title} `
  return `\n${head}${'─'.repeat(Math.max(3, 78 - head.length))}`
}

/** The lines `walrus tune` prints (as the command does). */
export function tuneLines(r: TuneResult): string[] {
  const out = [
    `${r.server}: max_wal_size ${r.currentMb} MB (source: ${r.maxWalSizeSource}), checkpoint_timeout ${r.checkpointTimeoutSec}s`,
    `statistics: ${r.statsView} since ${r.statsReset ?? 'initdb (no reset time)'}`,
    ...r.reasons.map((l) => `  - ${l}`),
    ...r.warnings.map((w) => `warning: ${w}`),
    `recommendation: ${r.action === 'none' ? `keep ${r.currentMb} MB` : `${r.action} to ${r.recommendedMb} MB`} (confidence ${r.confidence})`,
  ]
  if (r.applied) out.push(`applied: max_wal_size is now ${r.apply?.nowMb} MB`)
  return out
}

export interface Check {
  name: string
  ok: boolean
  detail: string
}

export interface TableCount {
  table: string
  source: number
  target: number
}

/** The closing summary: the checks, then what to do next. */
export function summaryLines(o: {checks: Check[]; seconds: number; counts: TableCount[]}): string[] {
  const failed = o.checks.filter((c) => !c.ok)
  const rows = o.counts.reduce((s, c) => s + c.source, 0)
  const out = ['', `Summary (${o.seconds.toFixed(1)} s, ${rows} rows in ${o.counts.length} tables on each server):`]
  for (const c of o.checks) out.push(`  ${c.ok ? '✓' : '✗'} ${c.name}: ${c.detail}`)
  out.push(failed.length === 0 ? 'Every check passed.' : `${failed.length} check(s) failed.`)
  return out
}
