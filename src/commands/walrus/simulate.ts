import {readFileSync} from 'node:fs'
import {Flags} from '@oclif/core'
import {BaseCommand} from '../../lib/base-command.js'
import {parseDuration} from '../../lib/duration.js'
import {UsageError} from '../../lib/errors.js'
import {ruleFlags, settingsFor} from '../../lib/walrus/flags.js'
import {decisionJson} from '../../lib/walrus/render.js'
import {describeDecision} from '../../lib/walrus/rule.js'
import {parseSamples} from '../../lib/walrus/samples.js'
import {simulate} from '../../lib/walrus/simulate.js'

export default class WalrusSimulate extends BaseCommand<typeof WalrusSimulate> {
  static override summary = 'Replay recorded readings through the resize rule and print each decision.'
  static override description = `Reads a series of readings — time, the cumulative requested-checkpoint counter, the statistics reset time, and max_wal_size in MB — from FILE or standard input (-), as written by walrus watch --record: one JSON object per line, a JSON array, or CSV with a header (time,requested,stats_reset,max_wal_size_mb[,checkpoint_timeout_sec]). Each reading goes through the same rule and settings as walrus watch, every allowed change counted as applied, and each decision is printed (with --json: one object per decision, in an array). A reading without max_wal_size_mb continues from the simulated size. No server is contacted.`

  static override examples = [
    '<%= config.bin %> walrus simulate --samples readings.jsonl',
    'cat readings.csv | <%= config.bin %> walrus simulate --samples - --threshold 3 --max 16GB --json',
    '<%= config.bin %> walrus simulate --samples readings.jsonl --interval 1min --dry-run',
  ]

  static override flags = {
    samples: Flags.string({summary: 'Readings file, or - for standard input.', required: true, helpValue: 'FILE|-'}),
    ...ruleFlags,
    'dry-run': Flags.boolean({summary: 'Simulate a dry-run watcher (decisions recorded as dry_run).'}),
    interval: Flags.string({summary: 'Interval the readings are meant to be apart (default: their checkpoint_timeout_sec, else 5min).', helpValue: 'DURATION'}),
  }

  async run(): Promise<{decisions: Array<Record<string, unknown>>; finalMb: number; changes: number}> {
    const f = this.flags
    const settings = settingsFor(f, (await this.configFile()).config.walrus, this.argv)
    const intervalMs = f.interval === undefined ? undefined : parseDuration(f.interval, '--interval')
    let text: string
    try {
      text = readFileSync(f.samples === '-' ? 0 : f.samples, 'utf8')
    } catch (err) {
      throw new UsageError(`--samples ${f.samples}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    }
    const samples = parseSamples(text, f.samples === '-' ? 'standard input' : f.samples)
    const sim = simulate(settings, samples, {intervalMs})
    if (!this.jsonEnabled()) {
      for (const d of sim.decisions) this.log(describeDecision(d))
      this.log(`${sim.decisions.length} readings, ${sim.decisions.filter((d) => d.apply).length} changes, final max_wal_size ${sim.finalMb} MB`)
    }
    return {decisions: sim.decisions.map(decisionJson), finalMb: sim.finalMb, changes: sim.decisions.filter((d) => d.apply).length}
  }
}
