// One class per failure kind, each carrying the documented exit code (DESIGN.md, "Exit codes").
// Commands throw these; BaseCommand.catch turns them into a message (or a JSON error document)
// and the exit code. Messages say what happened and what to do next.

export const ExitCode = {
  ok: 0,
  error: 1,
  usage: 2,
  schemaMismatch: 3,
  cancelled: 4,
  timeout: 5,
  connection: 6,
} as const
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

export class SteepError extends Error {
  readonly exitCode: ExitCodeValue = ExitCode.error
  /** A short machine-readable kind for --json consumers. */
  readonly code: string = 'error'
  /** What the user can do about it, printed after the message. */
  readonly hint?: string

  constructor(message: string, options?: {cause?: unknown; hint?: string}) {
    super(message, options?.cause === undefined ? undefined : {cause: options.cause})
    this.name = new.target.name
    this.hint = options?.hint
  }
}

export class UsageError extends SteepError {
  override readonly exitCode = ExitCode.usage
  override readonly code: string = 'usage'
}

/** The configuration file is unreadable or invalid: names the file, the key and the problem. */
export class ConfigError extends SteepError {
  override readonly exitCode = ExitCode.usage
  override readonly code: string = 'config'
}

export class ConnectionError extends SteepError {
  override readonly exitCode = ExitCode.connection
  override readonly code: string = 'connection'
}

export class SchemaMismatchError extends SteepError {
  override readonly exitCode = ExitCode.schemaMismatch
  override readonly code: string = 'schema_mismatch'
}

export class CancelledError extends SteepError {
  override readonly exitCode = ExitCode.cancelled
  override readonly code: string = 'cancelled'
}

export class TimeoutError extends SteepError {
  override readonly exitCode = ExitCode.timeout
  override readonly code: string = 'timeout'
}

/** The steep_repl schema is missing or at another version than this CLI expects. */
export class NotInstalledError extends SteepError {
  override readonly exitCode = ExitCode.schemaMismatch
  override readonly code: string = 'not_installed'
}

/** The server refused because the role lacks a privilege. */
export class PermissionError extends SteepError {
  override readonly code: string = 'permission'
}

/** An operation refused because of the state it found (running jobs, existing objects, ...). */
export class StateError extends SteepError {
  override readonly code: string = 'state'
}

// SQLSTATE classes that mean "could not reach or lost the server" (class 08, plus admin shutdown
// and crash-restart codes in class 57P) and the Node socket errors that go with them.
const CONNECTION_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300'])
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ENOENT',
])

export function isConnectionFailure(err: unknown): boolean {
  if (err instanceof ConnectionError) return true
  const e = err as {code?: unknown; message?: unknown} | null
  if (!e || typeof e !== 'object') return false
  const code = typeof e.code === 'string' ? e.code : ''
  if (code.startsWith('08') || CONNECTION_SQLSTATES.has(code) || SOCKET_CODES.has(code)) return true
  if (code === '28P01' || code === '28000') return true // authentication failed / not authorized
  const msg = typeof e.message === 'string' ? e.message : ''
  return /Connection terminated|timeout expired|connect ETIMEDOUT|The server does not support SSL|has encountered a connection error and is not queryable/i.test(msg)
}
