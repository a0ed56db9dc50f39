import {setTimeout as sleep} from 'node:timers/promises'
import {Args, Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {openClient} from '../../lib/connection/connect.js'
import {parseDuration} from '../../lib/duration.js'
import {requireInstalled} from '../../lib/node/common.js'
import {heartbeat} from '../../lib/node/registry.js'

export default class NodeHeartbeat extends BaseCommand<typeof NodeHeartbeat> {
  static override summary = "Record that a node is alive (last_seen = now, status healthy); with --watch, again every --interval."
  static override description = `Calls steep_repl.heartbeat(id) in the database given with -d. With --watch it keeps doing so every --interval until interrupted (Ctrl-C), reconnecting when the connection drops; run it beside each node (a systemd timer or a sidecar) so node status can tell live nodes from dead ones.`

  static override examples = [
    '<%= config.bin %> node heartbeat db2 -d postgres://postgres@db1/app',
    '<%= config.bin %> node heartbeat db2 -d app --watch --interval 10s',
  ]

  static override args = {id: Args.string({description: 'Node id.', required: true})}

  static override flags = {
    db: dbFlag,
    watch: Flags.boolean({summary: 'Keep sending heartbeats until interrupted.'}),
    interval: Flags.string({summary: 'Time between heartbeats with --watch.', default: '10s', helpValue: 'DURATION'}),
  }

  async run(): Promise<{nodeId: string; lastSeen: string; beats: number}> {
    const db = await this.connection(this.flags.db)
    const every = parseDuration(this.flags.interval, '--interval')
    let stop = false
    const onSig = () => {
      stop = true
    }
    process.once('SIGINT', onSig)
    process.once('SIGTERM', onSig)
    let beats = 0
    let last = ''
    try {
      for (;;) {
        const c = await openClient(db, {applicationName: 'steep-repl heartbeat'})
        c.on('error', () => {})
        try {
          await requireInstalled(c)
          while (!stop) {
            last = await heartbeat(c, this.args.id)
            beats++
            if (this.flags.watch && !this.jsonEnabled()) this.note(`heartbeat ${this.args.id} at ${last}`)
            if (!this.flags.watch) break
            const until = Date.now() + every
            while (!stop && Date.now() < until) await sleep(Math.min(200, until - Date.now()))
          }
        } finally {
          await c.end().catch(() => {})
        }
        if (!this.flags.watch || stop) break
      }
    } finally {
      process.off('SIGINT', onSig)
      process.off('SIGTERM', onSig)
    }
    if (!this.jsonEnabled() && !this.flags.watch) this.log(`node ${this.args.id} seen at ${last}`)
    return {nodeId: this.args.id, lastSeen: last, beats}
  }
}
