// Health: the facts read from one server (health/gather.ts) judged into checks. Pure: plain values
// in, plain values out, unit-tested without a database.

import type {Status} from '../ui/output.js'

export const MIN_MAJOR = 15
export const MAX_MAJOR = 18

export interface SlotFact {
  slot_name: string
  slot_type: string
  plugin: string | null
  active: boolean
  wal_status: string | null
  retained_bytes: number | null
}

export interface HealthFacts {
  serverVersion: string
  serverVersionNum: number
  inRecovery: boolean
  /** TLS protocol of this connection (e.g. TLSv1.3), null when not encrypted. */
  tls: string | null
  walLevel: string
  maxReplicationSlots: number
  maxWalSenders: number
  maxWalSizeBytes: number
  role: string
  superuser: boolean
  replication: boolean
  canCreateInDatabase: boolean
  canAlterSystemMaxWalSize: boolean
  schemaInstalled: boolean
  /** False when the schema exists but this role may not read it. */
  schemaReadable: boolean
  schemaVersion: number
  expectedSchemaVersion: number
  slots: SlotFact[]
  queue: {pending: number; running: number; failedLastDay: number} | null
  /**
   * The executors (jobs schema version 2+): live workers, running jobs whose lease expired (their
   * executor died; a worker reclaims them), and the age of the oldest pending job. The same facts
   * steep_repl.health() returns, read through it.
   */
  workers?: {live: number; staleLeases: number; oldestPendingSeconds: number | null} | null
}

export interface Check {
  name: string
  status: Status
  detail: string
  hint?: string
}

export interface HealthReport {
  healthy: boolean
  server: {version: string; versionNum: number; major: number; inRecovery: boolean; walLevel: string; tls: string | null}
  schema: {installed: boolean; version: number; expected: number}
  role: {name: string; superuser: boolean; replication: boolean}
  slots: SlotFact[]
  queue: HealthFacts['queue']
  workers: NonNullable<HealthFacts['workers']> | null
  checks: Check[]
}

/** Pending jobs older than this with no live worker are worth a warning. */
const PENDING_WARN_SECONDS = 60

/** A slot retaining more than this many times max_wal_size, and not active, is worth a warning. */
const SLOT_RETAIN_WARN_FACTOR = 2

export function judge(f: HealthFacts): HealthReport {
  const checks: Check[] = []
  const major = Math.floor(f.serverVersionNum / 10000)
  checks.push(
    major >= MIN_MAJOR && major <= MAX_MAJOR
      ? {name: 'server version', status: 'ok', detail: `PostgreSQL ${f.serverVersion}${f.tls ? ` (connected with ${f.tls})` : ''}`}
      : {
          name: 'server version',
          status: 'fail',
          detail: `PostgreSQL ${f.serverVersion} is not supported`,
          hint: `steep-repl supports PostgreSQL ${MIN_MAJOR} to ${MAX_MAJOR}.`,
        },
  )
  if (f.schemaInstalled && !f.schemaReadable) {
    checks.push({
      name: 'steep_repl schema',
      status: 'fail',
      detail: `installed, but ${f.role} may not use it`,
      hint: `As its owner: GRANT USAGE ON SCHEMA steep_repl TO ${f.role}; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA steep_repl TO ${f.role}; (or only what its commands need: docs/privileges.md)`,
    })
  } else if (!f.schemaInstalled) {
    checks.push({name: 'steep_repl schema', status: 'fail', detail: 'not installed', hint: 'Run: steep-repl install -d <this connection>'})
  } else if (f.schemaVersion < f.expectedSchemaVersion) {
    checks.push({
      name: 'steep_repl schema',
      status: 'fail',
      detail: `version ${f.schemaVersion}, this steep-repl expects ${f.expectedSchemaVersion}`,
      hint: 'Run: steep-repl install -d <this connection> (upgrades in place)',
    })
  } else if (f.schemaVersion > f.expectedSchemaVersion) {
    checks.push({
      name: 'steep_repl schema',
      status: 'fail',
      detail: `version ${f.schemaVersion} is newer than this steep-repl (${f.expectedSchemaVersion})`,
      hint: 'Upgrade steep-repl.',
    })
  } else {
    checks.push({name: 'steep_repl schema', status: 'ok', detail: `version ${f.schemaVersion}`})
  }
  checks.push(
    f.walLevel === 'logical'
      ? {name: 'wal_level', status: 'ok', detail: 'logical'}
      : {
          name: 'wal_level',
          status: 'fail',
          detail: `${f.walLevel} (logical replication needs logical)`,
          hint: "ALTER SYSTEM SET wal_level = 'logical'; then restart the server.",
        },
  )
  const used = f.slots.length
  checks.push(
    f.maxReplicationSlots > used && f.maxWalSenders > 0
      ? {name: 'replication capacity', status: 'ok', detail: `${used}/${f.maxReplicationSlots} slots used, ${f.maxWalSenders} WAL senders`}
      : {
          name: 'replication capacity',
          status: 'fail',
          detail: `${used}/${f.maxReplicationSlots} slots used, ${f.maxWalSenders} WAL senders`,
          hint: 'Raise max_replication_slots and max_wal_senders (needs a restart).',
        },
  )
  for (const s of f.slots) {
    const retained = s.retained_bytes ?? 0
    if (s.wal_status === 'lost') {
      checks.push({
        name: `slot ${s.slot_name}`,
        status: 'fail',
        detail: 'WAL it needs was removed (wal_status lost)',
        hint: `Drop it: SELECT pg_drop_replication_slot('${s.slot_name.replace(/'/g, "''")}'); and re-seed its subscriber.`,
      })
    } else if (!s.active && retained > SLOT_RETAIN_WARN_FACTOR * f.maxWalSizeBytes) {
      checks.push({
        name: `slot ${s.slot_name}`,
        status: 'warn',
        detail: `inactive and retaining ${retained} bytes of WAL`,
        hint: 'If nothing will consume it any more, drop it so the server stops keeping WAL.',
      })
    }
  }
  const missing: string[] = []
  if (!f.superuser) {
    if (!f.replication) missing.push('REPLICATION (slots, snapshots)')
    if (!f.canCreateInDatabase) missing.push('CREATE on the database (install, publications)')
  }
  checks.push(
    missing.length === 0
      ? {
          name: 'privileges',
          status: 'ok',
          detail: f.superuser
            ? `${f.role} is superuser`
            : `${f.role} has REPLICATION and CREATE${f.canAlterSystemMaxWalSize ? ', ALTER SYSTEM max_wal_size' : ''}`,
        }
      : {
          name: 'privileges',
          status: 'fail',
          detail: `${f.role} lacks ${missing.join(', ')}`,
          hint: `As a superuser: ALTER ROLE ${f.role} REPLICATION; GRANT CREATE ON DATABASE <db> TO ${f.role}; (docs/privileges.md lists the grants each command needs)`,
        },
  )
  if (!f.superuser && !f.canAlterSystemMaxWalSize) {
    checks.push({
      name: 'walrus privileges',
      status: 'info',
      detail: 'cannot ALTER SYSTEM SET max_wal_size (walrus can only recommend)',
      hint: `GRANT ALTER SYSTEM ON PARAMETER max_wal_size TO ${f.role};`,
    })
  }
  if (f.inRecovery) {
    checks.push({name: 'role in cluster', status: 'info', detail: 'standby (in recovery): usable as a snapshot source only on 16+'})
  }
  if (f.queue) {
    checks.push({
      name: 'job queue',
      status: f.queue.failedLastDay > 0 ? 'warn' : 'ok',
      detail: `${f.queue.pending} pending, ${f.queue.running} running, ${f.queue.failedLastDay} failed in the last 24 h`,
      hint: f.queue.failedLastDay > 0 ? 'See: steep-repl jobs list --status failed' : undefined,
    })
  }
  if (f.workers) {
    const w = f.workers
    const waiting = f.queue !== null && f.queue.pending > 0 && w.live === 0 && (w.oldestPendingSeconds ?? 0) > PENDING_WARN_SECONDS
    const problems: string[] = []
    if (waiting) problems.push(`${f.queue!.pending} pending job(s) and no live worker`)
    if (w.staleLeases > 0) problems.push(`${w.staleLeases} running job(s) whose executor stopped renewing its lease`)
    checks.push({
      name: 'workers',
      status: problems.length ? 'warn' : 'ok',
      detail: problems.length ? problems.join('; ') : `${w.live} live`,
      hint: waiting
        ? 'Start one: steep-repl worker -d <this connection> (or run job commands with --direct).'
        : w.staleLeases > 0
          ? 'A running worker reclaims them after the lease; otherwise start one: steep-repl worker -d <this connection>'
          : undefined,
    })
  }
  return {
    healthy: checks.every((c) => c.status !== 'fail'),
    server: {version: f.serverVersion, versionNum: f.serverVersionNum, major, inRecovery: f.inRecovery, walLevel: f.walLevel, tls: f.tls},
    schema: {installed: f.schemaInstalled, version: f.schemaVersion, expected: f.expectedSchemaVersion},
    role: {name: f.role, superuser: f.superuser, replication: f.replication},
    slots: f.slots,
    queue: f.queue,
    workers: f.workers ?? null,
    checks,
  }
}
