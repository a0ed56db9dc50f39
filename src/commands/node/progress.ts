import {Args} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {withClient} from '../../lib/connection/connect.js'
import {requireInstalled} from '../../lib/node/common.js'
import {type InitProgress, readProgress} from '../../lib/node/progress.js'
import {requireNode} from '../../lib/node/registry.js'
import {formatBytes} from '../../lib/ui/output.js'

export default class NodeProgress extends BaseCommand<typeof NodeProgress> {
  static override summary = 'Where the init (or reinit) of a node stands: state, phase, tables, rows, bytes, lag.'
  static override description = `Reads steep_repl.init_progress in the node's database (-d, the target of the init): the init state, the phase, the percent done, tables completed, the table being copied, rows and bytes copied, rows per second, the estimated time left, and during catch-up the slot lag in bytes; for a failed init, the reason. For live bars, follow the init's job: steep-repl jobs wait JOB_ID.`

  static override examples = ['<%= config.bin %> node progress db2 -d postgres://postgres@db2/app', '<%= config.bin %> node progress db2 -d db2 --json']

  static override args = {id: Args.string({description: 'Node id.', required: true})}

  static override flags = {db: dbFlag}

  async run(): Promise<InitProgress | {nodeId: string; state: string; phase: null}> {
    const db = await this.connection(this.flags.db)
    const res = await withClient(db, async (c) => {
      await requireInstalled(c)
      const node = await requireNode(c, this.args.id)
      return (await readProgress(c, this.args.id)) ?? {nodeId: node.nodeId, state: node.initState, phase: null}
    })
    if (!this.jsonEnabled()) {
      if (res.phase === null) {
        this.log(`No initialization recorded for node ${res.nodeId} (state ${res.state})`)
        return res
      }
      const p = res as InitProgress
      const lines = [
        `Node:     ${p.nodeId}${p.sourceNode ? ` (from ${p.sourceNode})` : ''}`,
        `State:    ${p.state}`,
        `Phase:    ${p.phase}`,
        `Progress: ${p.overallPercent.toFixed(1)}%`,
        `Tables:   ${p.tablesCompleted}/${p.tablesTotal} completed`,
      ]
      if (p.currentTable) lines.push(`Current:  ${p.currentTable}`)
      lines.push(`Rows:     ${p.rowsCopied} copied`, `Bytes:    ${formatBytes(p.bytesCopied)} copied`)
      if (p.rowsPerSecond) lines.push(`Speed:    ${p.rowsPerSecond} rows/sec`)
      if (p.etaSeconds !== null && p.phase === 'copying') lines.push(`ETA:      ${p.etaSeconds} seconds`)
      if (p.lagBytes !== null) lines.push(`Lag:      ${formatBytes(p.lagBytes)}`)
      if (p.lsn) lines.push(`LSN:      ${p.lsn} (slot ${p.slot})`)
      if (p.snapshotId) lines.push(`Snapshot: ${p.snapshotId}${p.snapshotPath ? ` in ${p.snapshotPath}` : ''}`)
      if (p.jobId) lines.push(`Job:      ${p.jobId}`)
      if (p.error) lines.push(`Error:    ${p.error}`)
      this.log(lines.join('\n'))
    }
    return res
  }
}
