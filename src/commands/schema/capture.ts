import {Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {withClient} from '../../lib/connection/connect.js'
import {describeConnection} from '../../lib/connection/resolve.js'
import {renderFingerprints, schemaFilterFlags} from '../../lib/schema/cli.js'
import {captureFingerprints, type CaptureResult} from '../../lib/schema/fingerprint-io.js'

export default class SchemaCapture extends BaseCommand<typeof SchemaCapture> {
  static override summary = 'Store the table fingerprints of a database in steep_repl.schema_fingerprints.'
  static override description = `Computes the fingerprints exactly as schema fingerprint does and stores them under the given node id, in one transaction: every table in scope is upserted (fingerprint, column_count, column_definitions, captured_at) and the node's rows for tables in scope that no longer exist are removed. The database needs the steep_repl schema (steep-repl install).`

  static override examples = [
    '<%= config.bin %> schema capture -d postgres://postgres@node1/app --node node1',
    '<%= config.bin %> schema capture -d postgres://postgres@node1/app --node node1 --schema app --json',
  ]

  static override flags = {
    db: dbFlag,
    ...schemaFilterFlags,
    node: Flags.string({summary: 'The node id to store the fingerprints under.', required: true, helpValue: 'ID'}),
  }

  async run(): Promise<CaptureResult> {
    const conn = await this.connection(this.flags.db)
    const node = this.flags.node.trim()
    if (!node) this.error('--node must not be empty', {exit: 2})
    const result = await withClient(conn, (c) => captureFingerprints(c, node, {schemas: this.flags.schema, excludeSchemas: this.flags['exclude-schema']}))
    if (!this.jsonEnabled()) {
      this.log(`Captured ${result.captured} table fingerprint(s) for node ${node} on ${describeConnection(conn)}`)
      if (result.removed.length) this.log(`Removed ${result.removed.length} stale row(s): ${result.removed.map((r) => `${r.schema}.${r.table}`).join(', ')}`)
      this.log('')
      this.log(renderFingerprints(result.tables))
    }
    return result
  }
}
