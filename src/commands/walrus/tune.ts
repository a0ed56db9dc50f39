import {Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {withClient} from '../../lib/connection/connect.js'
import {parseDuration} from '../../lib/duration.js'
import {ruleFlags, settingsFor} from '../../lib/walrus/flags.js'
import {runTune, type TuneResult} from '../../lib/walrus/tune.js'

export default class WalrusTune extends BaseCommand<typeof WalrusTune> {
  static override summary = 'Recommend a max_wal_size from the checkpoint statistics since their last reset.'
  static override description = `Reads the requested (forced) and timed checkpoint counters since the statistics were last reset, the WAL rate (pg_stat_wal, or LSN movement with --sample), checkpoint_timeout and checkpoint_completion_target, and recommends a max_wal_size with its reasoning: grow when checkpoints are forced at --threshold or more per checkpoint_timeout (current x (rate + 1), or the WAL a checkpoint_timeout needs, whichever is larger, capped at --max), one shrink step when the WAL rate needs well under the current size.

Without --apply nothing changes. With --apply the recommendation is written with ALTER SYSTEM and pg_reload_conf(), read back, recorded in steep_repl.walrus_history when the schema is installed, and starts the watcher's cooldown. It refuses on a standby, and when the role may not ALTER SYSTEM max_wal_size.`

  static override examples = [
    '<%= config.bin %> walrus tune -d postgres://postgres@localhost/postgres',
    '<%= config.bin %> walrus tune -d prod --sample 30s --max 16GB',
    '<%= config.bin %> walrus tune -d prod --apply --json',
  ]

  static override flags = {
    db: dbFlag,
    ...ruleFlags,
    apply: Flags.boolean({summary: 'Write the recommended max_wal_size (ALTER SYSTEM + reload).'}),
    sample: Flags.string({summary: 'Measure the WAL rate from LSN movement over this long, e.g. 30s (default: pg_stat_wal since its reset).', helpValue: 'DURATION'}),
  }

  async run(): Promise<TuneResult> {
    const f = this.flags
    const settings = settingsFor(f, (await this.configFile()).config.walrus, this.argv)
    const sampleMs = f.sample === undefined ? 0 : parseDuration(f.sample, '--sample')
    const conn = await this.connection(f.db)
    if (sampleMs > 0) this.note(`measuring the WAL rate for ${f.sample}...`)
    const r = await withClient(conn, (c) => runTune(c, settings, {apply: f.apply, sampleMs}), {applicationName: 'steep-repl walrus tune'})
    if (!this.jsonEnabled()) {
      this.log(`${r.server}: max_wal_size ${r.currentMb} MB (source: ${r.maxWalSizeSource}), checkpoint_timeout ${r.checkpointTimeoutSec}s`)
      this.log(`statistics: ${r.statsView} since ${r.statsReset ?? 'initdb (no reset time)'}`)
      for (const line of r.reasons) this.log(`  - ${line}`)
      for (const w of r.warnings) this.note(`warning: ${w}`)
      const verdict = r.action === 'none' ? `keep ${r.currentMb} MB` : `${r.action} to ${r.recommendedMb} MB`
      this.log(`recommendation: ${verdict} (confidence ${r.confidence})`)
      if (r.applied) this.log(`applied: max_wal_size is now ${r.apply?.nowMb} MB`)
      else if (r.action !== 'none' && !f.apply) this.log('run again with --apply to write it')
    }
    return r
  }
}
