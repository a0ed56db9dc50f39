// Shared output conventions: what is a terminal, plain tables, status marks. Human output goes to
// stdout only when it is the command's result; progress and logs go to stderr.

import {redact} from '../redact.js'

/** True when stderr is an interactive terminal and not CI: live bars and cursor movement allowed. */
export function isInteractive(stream: NodeJS.WriteStream = process.stderr): boolean {
  return Boolean(stream.isTTY) && !process.env.CI && process.env.TERM !== 'dumb'
}

/** Colour only on an interactive terminal and when NO_COLOR is not set. */
export function useColor(stream: NodeJS.WriteStream = process.stdout): boolean {
  return isInteractive(stream) && !process.env.NO_COLOR
}

const paint = (code: number, s: string, on: boolean) => (on ? `\u001B[${code}m${s}\u001B[0m` : s)

export type Status = 'ok' | 'warn' | 'fail' | 'info'

export function statusMark(s: Status, color = useColor()): string {
  switch (s) {
    case 'ok':
      return paint(32, 'ok', color)
    case 'warn':
      return paint(33, 'warn', color)
    case 'fail':
      return paint(31, 'FAIL', color)
    default:
      return paint(2, '-', color)
  }
}

// Escape sequences do not take columns on screen.
// eslint-disable-next-line no-control-regex
const visibleLength = (s: string) => s.replace(/\u001B\[[0-9;]*m/g, '').length

/** A plain aligned table; cells are redacted. */
export function renderTable(headers: string[], rows: Array<Array<string | number | null | undefined>>): string {
  const cells = rows.map((r) => r.map((c) => redact(c === null || c === undefined ? '' : String(c))))
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => visibleLength(r[i] ?? ''))))
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat(widths[i]! - visibleLength(c))))
      .join('  ')
      .trimEnd()
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n')
}

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return ''
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB']
  let v = Math.abs(n)
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${n < 0 ? '-' : ''}${u === 0 ? v : v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`
}
