// Shared by the walrus integration tests: a dedicated server per test group (they ALTER SYSTEM,
// so never the shared server), a watcher run in-process with its events collected, NOTIFY capture.

import pg from 'pg'
import {resolveConnection} from '../../src/lib/connection/resolve.js'
import {install} from '../../src/lib/install/migrations.js'
import {validateSettings, type RuleSettings} from '../../src/lib/walrus/rule.js'
import {Watcher, type WatchEvent, type WatchOptions, type WatchSummary} from '../../src/lib/walrus/watcher.js'
import type {PgMajor} from '../../src/lib/embedded/server.js'
import {adminClient, startTestServer} from '../helpers/pg.js'
import type {ServerHandle} from '../helpers/servers.js'

export const SMALL = {max_wal_size: '32MB', checkpoint_timeout: '30s'}

export async function walrusServer(major?: PgMajor, settings: Record<string, string | number> = {}): Promise<ServerHandle> {
  const h = await startTestServer({major, settings: {...SMALL, ...settings}})
  const c = await adminClient(h.url())
  try {
    await install(c)
  } finally {
    await c.end()
  }
  return h
}

export async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

export interface RunningWatcher {
  events: WatchEvent[]
  decisions(): Array<Extract<WatchEvent, {event: 'decision'}>>
  stop(): Promise<WatchSummary>
  done: Promise<WatchSummary>
}

export function startWatcher(url: string, settings: Partial<RuleSettings>, o: Partial<WatchOptions> = {}): RunningWatcher {
  const ac = new AbortController()
  const events: WatchEvent[] = []
  const w = new Watcher({
    conn: resolveConnection({db: url, env: {}}),
    settings: validateSettings({cooldownSec: 0, minMb: 16, maxMb: 1024, ...settings}),
    intervalMs: 500,
    retentionSec: 7 * 86_400,
    signal: ac.signal,
    onEvent: (e) => events.push(e),
    maxBackoffMs: 1000,
    ...o,
  })
  const done = w.run()
  done.catch(() => {})
  return {
    events,
    decisions: () => events.filter((e): e is Extract<WatchEvent, {event: 'decision'}> => e.event === 'decision'),
    stop: async () => {
      ac.abort()
      return done
    },
    done,
  }
}

export async function showMaxWalSizeMb(url: string): Promise<number> {
  const c = await adminClient(url)
  try {
    return (await c.query(`SELECT setting::int AS mb FROM pg_settings WHERE name = 'max_wal_size'`)).rows[0].mb
  } finally {
    await c.end()
  }
}

export async function checkpoints(url: string, n: number): Promise<void> {
  const c = await adminClient(url)
  try {
    for (let i = 0; i < n; i++) await c.query('CHECKPOINT')
  } finally {
    await c.end()
  }
}

export async function listen(url: string, channel: string): Promise<{payloads: Array<Record<string, unknown>>; close: () => Promise<void>}> {
  const c = await adminClient(url)
  const payloads: Array<Record<string, unknown>> = []
  c.on('notification', (n: pg.Notification) => {
    if (n.channel === channel && n.payload) payloads.push(JSON.parse(n.payload))
  })
  await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`)
  return {payloads, close: () => c.end()}
}
