import {Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {withClient} from '../../lib/connection/connect.js'
import {renderTable} from '../../lib/ui/output.js'
import {readStatus, type WalrusStatus} from '../../lib/walrus/status.js'

export default class WalrusStatusCommand extends BaseCommand<typeof WalrusStatusCommand> {
  static override summary = 'Show max_wal_size, its source, the checkpoint counters, the acting watcher and the last decisions.'
  static override description = `Shows the current max_wal_size and where it is set (a value from the server's command line cannot be changed by ALTER SYSTEM), checkpoint_timeout, the requested and timed checkpoint counters and their reset time, the watcher that holds the walrus lock (any database of the server), the state the watcher keeps (baseline, quiet intervals, cooldown, hourly window) and the last decisions from steep_repl.walrus_history. Read-only; works without the steep_repl schema (then without state and history).`

  static override examples = [
    '<%= config.bin %> walrus status -d postgres://postgres@localhost/postgres',
    '<%= config.bin %> walrus status -d prod --last 20 --json',
  ]

  static override flags = {
    db: dbFlag,
    last: Flags.integer({summary: 'How many recent decisions to show.', default: 5, min: 0, max: 1000}),
  }

  async run(): Promise<WalrusStatus> {
    const conn = await this.connection(this.flags.db)
    const s = await withClient(conn, (c) => readStatus(c, {last: this.flags.last}), {applicationName: 'steep-repl walrus status'})
    if (!this.jsonEnabled()) {
      const rows: Array<[string, string]> = [
        ['server', `${s.server}${s.inRecovery ? ' (standby)' : ''}`],
        ['max_wal_size', `${s.maxWalSize.mb} MB (source: ${s.maxWalSize.source}${s.maxWalSize.sourcefile ? `, ${s.maxWalSize.sourcefile}` : ''}${s.maxWalSize.pendingRestart ? ', pending restart' : ''})`],
        ['checkpoint_timeout', `${s.checkpointTimeoutSec}s`],
        ['checkpoints', `${s.statistics.requested ?? '?'} requested, ${s.statistics.timed ?? '?'} timed (${s.statistics.view}, since ${s.statistics.statsReset ?? 'initdb'})`],
      ]
      if (s.allowAlterSystem === false) rows.push(['allow_alter_system', 'off: ALTER SYSTEM is disabled'])
      const h = s.watcher.holders
      rows.push(['watcher', h.length ? h.map((x) => `pid ${x.pid} on ${x.database ?? '?'}${x.application_name ? ` (${x.application_name})` : ''}${x.backend_start ? ` since ${x.backend_start.toISOString()}` : ''}`).join('; ') : 'none running'])
      if (!s.installed) rows.push(['steep_repl', 'walrus tables not installed, or not readable by this role (steep-repl install; grants: docs/privileges.md)'])
      if (s.state) {
        const st = s.state
        rows.push(['last cycle', s.watcher.lastCycleAt ?? 'never'])
        rows.push(['baseline', st.baselineRequested === null ? 'none (next reading takes one)' : `${st.baselineRequested} at ${st.baselineAt}`])
        rows.push(['quiet intervals', String(st.quietIntervals)])
        rows.push(['cooldown', st.cooldownRemainingSec > 0 ? `${st.cooldownRemainingSec}s remaining` : 'inactive'])
        rows.push(['changes this hour', `${st.changesThisHour}${st.hourlyLimitReached ? ' (limit reached)' : ''}`])
        rows.push(['changes applied', String(st.totalAdjustments)])
      }
      this.log(renderTable(['', ''], rows).split('\n').slice(2).join('\n'))
      if (s.lastDecisions.length) {
        this.log('')
        this.log(renderTable(['time', 'action', 'old MB', 'new MB', 'forced', 'reason'], s.lastDecisions.map((d) => [d.timestamp.toISOString(), d.action, d.old_size_mb, d.new_size_mb, d.forced_checkpoints, d.reason])))
      }
    }
    return s
  }
}
