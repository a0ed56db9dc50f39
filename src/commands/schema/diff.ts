import {Errors, Flags} from '@oclif/core'
import {BaseCommand} from '../../lib/base-command.js'
import {withClient} from '../../lib/connection/connect.js'
import {describeConnection} from '../../lib/connection/resolve.js'
import {ExitCode} from '../../lib/errors.js'
import {nodeFlags, renderTableDiff} from '../../lib/schema/cli.js'
import type {TableComparison} from '../../lib/schema/compare.js'
import {diffTable} from '../../lib/schema/compare-io.js'
import {parseQualifiedName} from '../../lib/schema/names.js'

export default class SchemaDiff extends BaseCommand<typeof SchemaDiff> {
  static override summary = "Show one table's column differences between two nodes."
  static override description = `Compares one table on node A and node B column by column, with the rules of schema compare: a missing column, a type change, a nullability change or a generated/regular mismatch is blocking; a default, collation, identity or position difference is not. A table that exists on one node only is blocking.

Exit status: 3 when anything blocking was found, 0 otherwise, 1 when the table exists on neither node.`

  static override examples = [
    '<%= config.bin %> schema diff --node-a postgres://postgres@node1/app --node-b postgres://postgres@node2/app --table public.orders',
    '<%= config.bin %> schema diff --node-a node1 --node-b node2 --table \'"Sales"."Order Items"\' --json',
  ]

  static override flags = {
    ...nodeFlags,
    table: Flags.string({char: 't', summary: 'The table, as schema.table (no schema = public).', required: true, helpValue: 'SCHEMA.TABLE'}),
  }

  async run(): Promise<TableComparison & {nodeA: string; nodeB: string}> {
    const table = parseQualifiedName(this.flags.table)
    const a = await this.connection(this.flags['node-a'], '--node-a')
    const b = await this.connection(this.flags['node-b'], '--node-b')
    const t = await withClient(a, (ca) => withClient(b, (cb) => diffTable(ca, cb, table)))
    const result = {...t, nodeA: describeConnection(a), nodeB: describeConnection(b)}
    if (!this.jsonEnabled()) {
      this.log(`Column differences for ${t.key}`)
      this.log(`Comparing: A = ${result.nodeA}, B = ${result.nodeB}`)
      const body = renderTableDiff(t, result.nodeA, result.nodeB)
      if (body) this.log(body)
      const blocking = t.differences.filter((d) => d.blocking).length
      if (t.status === 'LOCAL_ONLY' || t.status === 'REMOTE_ONLY') this.log('✗ The table will not replicate.')
      else if (blocking) this.log(`✗ ${blocking} blocking difference(s) that will break replication.`)
      else if (t.differences.length) this.log(`✓ Compatible for replication (${t.differences.length} non-blocking difference(s)).`)
      else this.log('✓ No differences: the table schemas are identical.')
    }
    if (t.blocking) {
      if (this.jsonEnabled()) this.logJson(this.toSuccessJson(result))
      throw new Errors.ExitError(ExitCode.schemaMismatch)
    }
    return result
  }
}
