// Operation kinds: what a capability registers to become a job. A kind has a name, a zod schema for
// its params, and a handler that receives a JobContext. Built-in and capability kinds are listed
// in operations/catalog.ts (lazily imported, so a command loads only what it runs).

import type {z} from 'zod'
import type {ConnParams} from '../lib/connection/resolve.js'
import {UsageError} from '../lib/errors.js'
import {describeZodError, findSecret} from './params.js'
import type {Amounts, PhaseSpec, Totals} from './progress-model.js'

export const OPERATION_NAME = /^[a-z][a-z0-9_]*$/

/** What a handler reports progress with. Cheap to call often: publishing is throttled. */
export interface ProgressReporter {
  /** Declares the phases (and their weights in the overall percent) before they start. */
  plan(phases: Array<string | PhaseSpec>): void
  /** Starts a phase; the previous one ends as done. */
  phase(name: string, totals?: Totals): void
  /** Sets the totals of the running phase (bytes, rows, items) once known. */
  totals(t: Totals): void
  /** Ends the running phase early (done, failed or skipped). */
  endPhase(state?: 'done' | 'failed' | 'skipped'): void
  skipPhase(name: string): void
  /** Starts an item (a table, a part) of the running phase. */
  item(key: string, opts?: {label?: string; bytesTotal?: number | null; rowsTotal?: number | null}): void
  /** Bytes/rows moved, for the running phase and optionally an item. */
  add(amounts: Amounts, itemKey?: string): void
  itemDone(key: string, state?: 'done' | 'failed' | 'skipped', error?: string): void
  message(text: string | null): void
  /** Sends the current state now (normally not needed: updates go out on their own). */
  flush(): Promise<void>
}

export interface JobInfo {
  id: string
  operation: string
  attempt: number
  maxAttempts: number
  /** 'direct': run by the command that queued it; 'worker': by `steep-repl worker`. */
  executor: 'direct' | 'worker'
  /** Identifies the executor (worker id or direct-run id), as in work_queue.lease_owner. */
  owner: string
}

export interface JobContext<P> {
  job: JobInfo
  params: P
  progress: ProgressReporter
  /** Aborted when the job is cancelled, its lease is lost, or the executor shuts down. */
  signal: AbortSignal
  /** Throws CancelledError when the job should stop: call it at safe points. */
  checkpoint(): void
  /** The queue database (where the job row lives): the handler opens its own connections to it. */
  db: ConnParams
  /**
   * Resolves a server reference from params (connRefSchema: a config connection name, node:<id>, or
   * a connection string without password) with the executor's config file and environment.
   */
  resolveConnection(ref: string): Promise<ConnParams>
  /** A line for the executor's log (the worker's log, or stderr of a direct run). */
  log(message: string): void
}

export interface OperationKind<S extends z.ZodType = z.ZodType, R = unknown> {
  name: string
  summary: string
  params: S
  /** Default max attempts (lease expiries and connection failures retry); default 3. */
  maxAttempts?: number
  /** Lease length in seconds; renewed every third of it. Default 30. */
  leaseSeconds?: number
  /** A short title for progress displays, e.g. "snapshot of app". */
  title?(params: z.infer<S>): string
  handler(ctx: JobContext<z.infer<S>>): Promise<R>
}

export type AnyOperationKind = OperationKind<z.ZodType, unknown>

const registry = new Map<string, AnyOperationKind>()

/** Defines (and registers) an operation kind; returns it for use with runJobCommand/enqueue. */
export function defineOperation<S extends z.ZodType, R>(kind: OperationKind<S, R>): OperationKind<S, R> {
  if (!OPERATION_NAME.test(kind.name)) throw new Error(`invalid operation name ${JSON.stringify(kind.name)}`)
  const existing = registry.get(kind.name)
  if (existing && existing !== (kind as unknown as AnyOperationKind)) throw new Error(`operation ${kind.name} is already registered`)
  registry.set(kind.name, kind as unknown as AnyOperationKind)
  return kind
}

export function registeredOperation(name: string): AnyOperationKind | undefined {
  return registry.get(name)
}

export function registeredOperations(): AnyOperationKind[] {
  return [...registry.values()].sort((a, b) => a.name.localeCompare(b.name))
}

/** Validates params for a kind: the zod schema, then the no-secret rule. Throws UsageError. */
export function validateParams<S extends z.ZodType>(kind: OperationKind<S, unknown>, params: unknown): z.infer<S> {
  const r = kind.params.safeParse(params ?? {})
  if (!r.success) throw new UsageError(`invalid params for ${kind.name}: ${describeZodError(r.error)}`)
  const secret = findSecret(r.data)
  if (secret) {
    throw new UsageError(`invalid params for ${kind.name}: ${secret} looks like a password; job params are stored in the database and must not hold secrets`, {
      hint: 'Name the server instead: a connection name from the config file, node:<id>, or a connection string whose password comes from ~/.pgpass.',
    })
  }
  if (r.data === null || typeof r.data !== 'object' || Array.isArray(r.data)) throw new UsageError(`invalid params for ${kind.name}: must be a JSON object`)
  return r.data
}
