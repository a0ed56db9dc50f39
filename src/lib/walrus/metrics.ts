// The optional Prometheus endpoint of `walrus watch --metrics-port`: GET /metrics in the text
// exposition format (prom-client, its own registry, no default process metrics unless asked).
// Names follow pg_walrus's planned metrics (reference §10.2) where they exist.

import {createServer, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'
import type {Decision} from './rule.js'

export interface WalrusMetrics {
  /** Port actually listened on (useful with port 0). */
  port: number
  observeReading(r: {maxWalSizeMb: number; requested: number | null; maxMb: number; acting: boolean}): void
  observeDecision(d: Decision, applied: boolean): void
  setActing(on: boolean): void
  close(): Promise<void>
}

export async function startMetrics(o: {port: number; host: string; labels?: Record<string, string>}): Promise<WalrusMetrics> {
  // The module's CommonJS exports object: Node.js also offers its names on the namespace, a bundle's
  // chunk (scripts/bundle.mjs) only as default.
  const {default: prom} = await import('prom-client')
  const registry = new prom.Registry()
  if (o.labels) registry.setDefaultLabels(o.labels)
  prom.collectDefaultMetrics({register: registry, prefix: 'walrus_process_'})
  const g = (name: string, help: string, labelNames: string[] = []) => new prom.Gauge({name, help, labelNames, registers: [registry]})
  const c = (name: string, help: string, labelNames: string[] = []) => new prom.Counter({name, help, labelNames, registers: [registry]})
  const size = g('walrus_max_wal_size_bytes', 'Current max_wal_size of the server, in bytes')
  const allowed = g('walrus_max_allowed_bytes', 'The largest max_wal_size walrus will set (--max), in bytes')
  const requested = g('walrus_requested_checkpoints', 'Cumulative requested (forced) checkpoints the server reports since its statistics reset')
  const forced = c('walrus_forced_checkpoints_total', 'Requested checkpoints counted in evaluated intervals by this watcher')
  const lastDelta = g('walrus_forced_checkpoints', 'Requested checkpoints in the last evaluated interval')
  const cycles = c('walrus_analysis_cycles_total', 'Readings evaluated by this watcher')
  const increases = c('walrus_increases_total', 'max_wal_size increases applied (including capped)')
  const decreases = c('walrus_decreases_total', 'max_wal_size decreases applied')
  const decisions = c('walrus_decisions_total', 'Decisions by outcome', ['outcome'])
  const adjustments = c('walrus_adjustments_total', 'Adjustments applied, by action', ['action'])
  const lastTime = g('walrus_last_decision_timestamp_seconds', 'When the last decision with a history row was taken (Unix seconds)')
  const last = g('walrus_last_decision', 'The last decision with a history row (1 on the series of its action)', ['action', 'change'])
  const acting = g('walrus_acting', '1 when this watcher holds the lock and acts, 0 while it waits as a standby')
  const enabled = g('walrus_enabled', 'Always 1 while the watcher runs')
  enabled.set(1)

  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && req.url !== '/')) {
      res.writeHead(404, {'content-type': 'text/plain'}).end('not found; try /metrics\n')
      return
    }
    registry
      .metrics()
      .then((text) => res.writeHead(200, {'content-type': registry.contentType}).end(text))
      .catch((err: Error) => res.writeHead(500, {'content-type': 'text/plain'}).end(err.message))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(o.port, o.host, () => resolve())
  })
  return {
    port: (server.address() as AddressInfo).port,
    observeReading(r) {
      size.set(r.maxWalSizeMb * 1024 * 1024)
      allowed.set(r.maxMb * 1024 * 1024)
      if (r.requested !== null) requested.set(r.requested)
      acting.set(r.acting ? 1 : 0)
    },
    observeDecision(d, applied) {
      cycles.inc()
      decisions.inc({outcome: d.outcome})
      if (d.delta !== null) {
        forced.inc(d.delta)
        lastDelta.set(d.delta)
      }
      if (applied && d.change) {
        adjustments.inc({action: d.change})
        if (d.change === 'decrease') decreases.inc()
        else increases.inc()
        size.set(d.targetMb * 1024 * 1024)
      }
      if (d.action) {
        lastTime.set(Math.floor(d.at / 1000))
        last.reset()
        last.set({action: d.action, change: d.change ?? ''}, 1)
      }
    },
    setActing(on) {
      acting.set(on ? 1 : 0)
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
