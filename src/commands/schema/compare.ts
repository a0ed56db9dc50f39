import {Errors, Flags} from '@oclif/core'
import {BaseCommand} from '../../lib/base-command.js'
import {withClient} from '../../lib/connection/connect.js'
import {describeConnection} from '../../lib/connection/resolve.js'
import {ExitCode} from '../../lib/errors.js'
import {nodeFlags, renderCompare, schemaFilterFlags} from '../../lib/schema/cli.js'
import type {CompareReport} from '../../lib/schema/compare.js'
import {compareNodes} from '../../lib/schema/compare-io.js'

export default class SchemaCompare extends BaseCommand<typeof SchemaCompare> {
  static override summary = 'Compare the table schemas of two nodes and what else would break logical replication.'
  static override description = `Fingerprints every user table on both nodes and sorts them by schema.table into MATCH, MISMATCH, LOCAL_ONLY (only on node A) and REMOTE_ONLY (only on node B). For tables on both nodes it lists the column differences: a missing column, a type change, a nullability change or a generated/regular mismatch is blocking; a default, collation, identity or position difference is not.

It also checks replication readiness on both nodes: a table without primary key or replica identity (blocking), sequences (their values are not replicated; reported), and publication membership: with --publication, a table missing from that publication is blocking; without it, tables in none of a node's publications are reported.

Exit status: 3 when anything blocking was found, 0 otherwise. --json prints the whole report.`

  static override examples = [
    '<%= config.bin %> schema compare --node-a postgres://postgres@node1/app --node-b postgres://postgres@node2/app',
    '<%= config.bin %> schema compare --node-a node1 --node-b node2 --publication steep_pub --schema app',
    '<%= config.bin %> schema compare --node-a postgres://postgres@node1/app --node-b postgres://postgres@node2/app --json',
  ]

  static override flags = {
    ...nodeFlags,
    ...schemaFilterFlags,
    publication: Flags.string({summary: 'The publication the nodes replicate through: tables missing from it are blocking.', helpValue: 'NAME'}),
  }

  async run(): Promise<CompareReport> {
    const a = await this.connection(this.flags['node-a'], '--node-a')
    const b = await this.connection(this.flags['node-b'], '--node-b')
    const report = await withClient(a, (ca) =>
      withClient(b, (cb) =>
        compareNodes(ca, cb, {
          schemas: this.flags.schema,
          excludeSchemas: this.flags['exclude-schema'],
          publication: this.flags.publication,
          labelA: describeConnection(a),
          labelB: describeConnection(b),
        }),
      ),
    )
    if (!this.jsonEnabled()) this.log(renderCompare(report))
    if (report.blocking) {
      if (this.jsonEnabled()) this.logJson(this.toSuccessJson(report))
      throw new Errors.ExitError(ExitCode.schemaMismatch)
    }
    return report
  }
}
