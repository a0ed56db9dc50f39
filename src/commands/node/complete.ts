import path from 'node:path'
import {Args, Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {type CompleteResult, completeNode} from '../../lib/node/complete.js'
import {checkNodeId} from '../../lib/node/registry.js'
import {parseSize} from '../../lib/size.js'

export default class NodeComplete extends BaseCommand<typeof NodeComplete> {
  static override summary = 'Second step of the two-step init: apply a snapshot taken at a kept slot and subscribe at it.'
  static override description = `The two-step path through files: first, on the source, steep-repl snapshot generate (it keeps a slot and a publication); then, where the target can read the directory, node complete applies the snapshot (verified, resumable with --resume), creates the subscription at the snapshot's slot (create_slot = false, copy_data = false, origin = none on 16+) and waits for the catch-up. The node goes preparing → catching_up → synchronized in the target's registry, or failed with the reason.`

  static override examples = [
    '<%= config.bin %> node complete db2 --from db1 -d postgres://postgres@db2/app --source postgres://repl@db1/app --input /backups/app-snap',
    '<%= config.bin %> node complete db2 --from db1 -d db2 --source db1 --input /backups/app-snap --resume --parallel 8 --max-lag 16MB --json',
  ]

  static override args = {id: Args.string({description: 'Id of the node to initialize (registered in -d).', required: true})}

  static override flags = {
    db: dbFlag,
    from: Flags.string({summary: 'Id of the source node.', required: true, helpValue: 'SOURCE_ID'}),
    source: Flags.string({summary: 'Connection to the source database (where the snapshot slot is).', required: true, helpValue: 'CONN'}),
    input: Flags.string({char: 'i', summary: 'The snapshot directory.', required: true, helpValue: 'DIR'}),
    parallel: Flags.integer({char: 'j', summary: 'Connections loading at once.', default: 4, min: 1, max: 64}),
    resume: Flags.boolean({summary: 'Continue an apply that stopped.'}),
    'max-lag': Flags.string({summary: 'Catch-up ends when the slot lag is under this.', default: '1MB', helpValue: 'SIZE'}),
    'catchup-timeout': Flags.integer({summary: 'Seconds to wait for catch-up before failing.', default: 600, min: 1}),
  }

  async run(): Promise<CompleteResult> {
    const f = this.flags
    checkNodeId(this.args.id)
    checkNodeId(f.from, '--from')
    const db = await this.connection(f.db)
    const src = await this.connection(f.source, '--source')
    const r = await completeNode({
      target: db,
      source: src,
      nodeId: this.args.id,
      fromNodeId: f.from,
      input: path.resolve(f.input),
      parallel: f.parallel,
      resume: f.resume,
      maxLagBytes: parseSize(f['max-lag'], '--max-lag'),
      catchupTimeoutMs: f['catchup-timeout'] * 1000,
    })
    if (!this.jsonEnabled()) this.log(`node ${r.nodeId} synchronized from ${r.fromNodeId}: snapshot ${r.snapshotId} applied (${r.tables} tables, ${r.rows} rows); subscription ${r.subscription} replicates from LSN ${r.lsn}`)
    return r
  }
}
