import {appendFileSync} from 'node:fs'
import {Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {parseDuration} from '../../lib/duration.js'
import {UsageError} from '../../lib/errors.js'
import {redact} from '../../lib/redact.js'
import {ruleFlags, settingsFor} from '../../lib/walrus/flags.js'
import type {WalrusMetrics} from '../../lib/walrus/metrics.js'
import {eventJson, eventText} from '../../lib/walrus/render.js'
import {Watcher, type WatchSummary} from '../../lib/walrus/watcher.js'

export default class WalrusWatch extends BaseCommand<typeof WalrusWatch> {
  static override summary = 'Keep max_wal_size sized to the checkpoint load, like pg_walrus, from outside the server.'
  static override description = `Every interval (default: the server's checkpoint_timeout, re-read each cycle) it reads the requested-checkpoint counter (pg_stat_checkpointer.num_requested on PostgreSQL 17+, pg_stat_bgwriter.checkpoints_req on 15-16). When at least --threshold checkpoints were requested in the interval it grows max_wal_size to current x (requested + 1), capped at --max; after --shrink-intervals quiet intervals it shrinks by --shrink-factor, never below --min; --cooldown and --max-changes-per-hour limit how often it changes anything.

A change is written with ALTER SYSTEM and pg_reload_conf(), then read back. When it does not take effect (max_wal_size set on the server's command line, allow_alter_system = off) the watcher says so and from then on only records recommendations. --dry-run never changes anything.

Each cycle prints one line on stderr (a JSON object per line with --json); each decision is also a row in steep_repl.walrus_history (kept for --retention) and a NOTIFY on the steep_repl_walrus channel. Only one watcher per server acts: a second one waits as a standby and takes over when the first stops. It refuses to run on a standby server, reconnects with backoff when the server restarts, and stops cleanly on SIGTERM or Ctrl-C. Needs the steep_repl schema (steep-repl install) and a role that may ALTER SYSTEM max_wal_size and run pg_reload_conf().`

  static override examples = [
    '<%= config.bin %> walrus watch -d postgres://postgres@localhost/postgres',
    '<%= config.bin %> walrus watch -d prod --interval 1min --max 16GB --min 2GB --dry-run',
    '<%= config.bin %> walrus watch -d prod --metrics-port 9187 --record /var/lib/steep/walrus-readings.jsonl --json',
  ]

  static override flags = {
    db: dbFlag,
    ...ruleFlags,
    'dry-run': Flags.boolean({summary: 'Decide and record, never change max_wal_size.', env: 'STEEP_REPL_WALRUS_DRY_RUN'}),
    interval: Flags.string({summary: "Time between readings, e.g. 30s or 5min (default: the server's checkpoint_timeout).", helpValue: 'DURATION'}),
    retention: Flags.string({summary: 'Keep history rows this long (default 7d).', default: '7d', helpValue: 'DURATION'}),
    'metrics-port': Flags.integer({summary: 'Serve Prometheus metrics on this port (GET /metrics).', min: 0, max: 65_535}),
    'metrics-host': Flags.string({summary: 'Address the metrics endpoint listens on (default 127.0.0.1; 0.0.0.0 for every interface).', dependsOn: ['metrics-port']}),
    record: Flags.string({summary: 'Append every reading to FILE, in the format walrus simulate --samples reads.', helpValue: 'FILE'}),
  }

  async run(): Promise<WatchSummary & {metricsPort?: number}> {
    const f = this.flags
    const settings = settingsFor(f, (await this.configFile()).config.walrus, this.argv)
    const intervalMs = f.interval === undefined ? undefined : parseDuration(f.interval, '--interval')
    if (intervalMs !== undefined && intervalMs < 100) throw new UsageError(`--interval: ${f.interval} is too short (at least 100ms)`)
    const retentionSec = parseDuration(f.retention, '--retention') / 1000
    if (f.record !== undefined) {
      try {
        appendFileSync(f.record, '')
      } catch (err) {
        throw new UsageError(`--record ${f.record}: cannot write: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
      }
    }
    const conn = await this.connection(f.db)
    const json = this.jsonEnabled()
    const emit = (line: string) => process.stderr.write(redact(line) + '\n')
    let metrics: WalrusMetrics | undefined
    if (f['metrics-port'] !== undefined) {
      const {startMetrics} = await import('../../lib/walrus/metrics.js')
      try {
        metrics = await startMetrics({port: f['metrics-port'], host: f['metrics-host'] ?? '127.0.0.1'})
      } catch (err) {
        throw new UsageError(`--metrics-port ${f['metrics-port']}: cannot listen: ${(err as Error).message}`)
      }
      emit(json ? JSON.stringify({time: new Date().toISOString(), event: 'metrics', port: metrics.port}) : `metrics on http://${f['metrics-host'] ?? '127.0.0.1'}:${metrics.port}/metrics`)
    }
    const ac = new AbortController()
    const stop = () => ac.abort()
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
    try {
      const watcher = new Watcher({
        conn,
        settings,
        intervalMs,
        retentionSec,
        recordFile: f.record,
        metrics,
        signal: ac.signal,
        onEvent: (e) => emit(json ? JSON.stringify(eventJson(e)) : eventText(e)),
      })
      const summary = await watcher.run()
      return {...summary, ...(metrics ? {metricsPort: metrics.port} : {})}
    } finally {
      process.off('SIGTERM', stop)
      process.off('SIGINT', stop)
      await metrics?.close()
    }
  }
}
