import path from 'node:path'
import {Args, Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {type CompleteResult, completeNode} from '../../lib/node/complete.js'
import {checkNodeId} from '../../lib/node/registry.js'
import {parseSize} from '../../lib/size.js'

export default class NodeComplete extends BaseCommand<typeof NodeComplete> {
  static override summary = 'Second step of the two-step init: subscribe at the slot of a prepared (and applied) snapshot and catch up.'
  static override description = `The two-step path through files: first steep-repl node prepare (it writes a snapshot of the source and keeps a slot and a publication at its LSN, recorded on the target node), then steep-repl snapshot apply -d TARGET --input DIR, then node complete: it checks that the recorded snapshot is applied to the target, creates the subscription at the snapshot's slot (create_slot = false, copy_data = false, origin = none on 16+; a subscription that snapshot apply --subscribe created at that slot is adopted) and waits for the catch-up. The node goes preparing → catching_up → synchronized in the target's registry, or failed with the reason (the slot stays: run node complete again, or node cancel to drop it).

With --input, node complete applies the snapshot itself when it is not applied yet (verified; --resume continues an apply that stopped). --input also accepts a snapshot made with steep-repl snapshot generate (kept slot) without node prepare.`

  static override examples = [
    '<%= config.bin %> node complete db2 --from db1 -d postgres://postgres@db2/app --source postgres://repl@db1/app',
    '<%= config.bin %> node complete db2 --from db1 -d postgres://postgres@db2/app --source postgres://repl@db1/app --input /backups/app-snap',
    '<%= config.bin %> node complete db2 --from db1 -d db2 --source db1 --input /backups/app-snap --resume --parallel 8 --max-lag 16MB --json',
  ]

  static override args = {id: Args.string({description: 'Id of the node to initialize (registered in -d).', required: true})}

  static override flags = {
    db: dbFlag,
    from: Flags.string({summary: 'Id of the source node.', required: true, helpValue: 'SOURCE_ID'}),
    source: Flags.string({summary: 'Connection to the source database (where the snapshot slot is).', required: true, helpValue: 'CONN'}),
    input: Flags.string({char: 'i', summary: 'The snapshot directory, applied here if not applied yet (default: the snapshot node prepare recorded, applied with snapshot apply).', helpValue: 'DIR'}),
    parallel: Flags.integer({char: 'j', summary: 'Connections loading at once.', default: 4, min: 1, max: 64}),
    resume: Flags.boolean({summary: 'Continue an apply that stopped.'}),
    'max-lag': Flags.string({summary: 'Catch-up ends when the slot lag is under this and what the source had committed then is applied.', default: '1MB', helpValue: 'SIZE'}),
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
      input: f.input ? path.resolve(f.input) : undefined,
      parallel: f.parallel,
      resume: f.resume,
      maxLagBytes: parseSize(f['max-lag'], '--max-lag'),
      catchupTimeoutMs: f['catchup-timeout'] * 1000,
      log: (m) => this.note(m),
    })
    if (!this.jsonEnabled()) this.log(`node ${r.nodeId} synchronized from ${r.fromNodeId}: snapshot ${r.snapshotId}${r.applied ? ` applied (${r.tables} tables, ${r.rows} rows)` : ''}; subscription ${r.subscription} replicates from LSN ${r.lsn}`)
    return r
  }
}
