// The node model, pure: init states and their allowed transitions (mirrored by the trigger of
// migration 006), health from the age of last_seen, and the names an init gives what it creates.

export const INIT_STATES = ['uninitialized', 'preparing', 'copying', 'catching_up', 'synchronized', 'diverged', 'failed', 'reinitializing'] as const
export type InitState = (typeof INIT_STATES)[number]

export const NODE_STATUSES = ['unknown', 'healthy', 'degraded', 'unreachable', 'offline'] as const
export type NodeStatus = (typeof NODE_STATUSES)[number]

/** Allowed transitions (reference §4.3, plus reinit from synchronized and cleanup to failed). */
export const TRANSITIONS: Record<InitState, readonly InitState[]> = {
  uninitialized: ['preparing', 'failed'],
  preparing: ['copying', 'catching_up', 'failed'],
  copying: ['catching_up', 'failed'],
  catching_up: ['synchronized', 'failed'],
  synchronized: ['diverged', 'reinitializing', 'uninitialized'],
  diverged: ['reinitializing', 'failed', 'uninitialized'],
  failed: ['uninitialized', 'preparing', 'reinitializing'],
  reinitializing: ['copying', 'catching_up', 'synchronized', 'failed', 'uninitialized'],
}

export function canTransition(from: InitState, to: InitState): boolean {
  return from === to || TRANSITIONS[from].includes(to)
}

/** States in which an init or reinit is running (cancel applies). */
export const RUNNING_STATES: readonly InitState[] = ['preparing', 'copying', 'catching_up', 'reinitializing']

export function isInitState(s: string): s is InitState {
  return (INIT_STATES as readonly string[]).includes(s)
}

export const NODE_ID_RE = /^[A-Za-z0-9_.-]{1,63}$/

/** Lower-case, every character outside [a-z0-9_] replaced by _ (upstream SanitizeSlotName). */
export function sanitizeName(id: string): string {
  return id.toLowerCase().replace(/[^a-z0-9_]/g, '_')
}

/** Names of the slot/subscription and publication of an init of target from source (≤ 63 chars). */
export function initNames(target: string, source: string): {subscription: string; slot: string; publication: string} {
  const base = `steep_sub_${sanitizeName(target)}_from_${sanitizeName(source)}`
  const pub = `steep_pub_${sanitizeName(source)}_to_${sanitizeName(target)}`
  const clip = (s: string) => (s.length <= 63 ? s : s.slice(0, 63))
  return {subscription: clip(base), slot: clip(base), publication: clip(pub)}
}

export interface HealthInput {
  status: NodeStatus | string
  lastSeen: Date | null
  now: Date
  maxAgeSeconds: number
}

/** healthy / stale (seen too long ago) / never seen / the registered status when it says worse. */
export function healthOf(h: HealthInput): {healthy: boolean; reason: string} {
  if (h.status === 'offline') return {healthy: false, reason: 'marked offline'}
  if (h.status === 'unreachable') return {healthy: false, reason: 'unreachable'}
  if (!h.lastSeen) return {healthy: false, reason: 'never seen (no heartbeat yet)'}
  const age = (h.now.getTime() - h.lastSeen.getTime()) / 1000
  if (age > h.maxAgeSeconds) return {healthy: false, reason: `last seen ${Math.round(age)}s ago (more than ${h.maxAgeSeconds}s)`}
  if (h.status === 'degraded') return {healthy: false, reason: 'degraded'}
  return {healthy: true, reason: `seen ${Math.max(0, Math.round(age))}s ago`}
}

/** The lag under which catch-up counts as done, in bytes. */
export const DEFAULT_MAX_LAG_BYTES = 1024 * 1024

/** Overall percent of an init from its phase and the copy's share done (copy 0-90, catch-up 90-100). */
export function overallPercent(phase: 'preparing' | 'copying' | 'catching_up' | 'complete' | 'failed', copyFraction: number, lagBytes: number | null, maxLag: number): number {
  if (phase === 'complete') return 100
  if (phase === 'preparing') return 0
  if (phase === 'copying') return Math.min(90, Math.max(0, copyFraction) * 90)
  if (phase === 'catching_up') {
    if (lagBytes === null) return 90
    if (lagBytes <= maxLag) return 100
    return 90 + Math.max(0, 9 - Math.min(9, Math.log2(lagBytes / maxLag)))
  }
  return 0
}
